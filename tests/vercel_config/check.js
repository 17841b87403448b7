#!/usr/bin/env node
// Validate a vercel.json with Vercel's own code, as its CLI does before a deployment:
// the JSON Schemas @vercel/routing-utils and @vercel/build-utils export (routes, rewrites,
// redirects, headers, cleanUrls, trailingSlash, functions, builds), checked with ajv, then
// getTransformedRoutes(), which compiles every source pattern the way Vercel routes them.
// Exit 0: valid; 1: invalid (each problem on stderr); 2: usage.
'use strict';
const fs = require('fs');
const Ajv = require('ajv');
const routing = require('@vercel/routing-utils');
const build = require('@vercel/build-utils');

const file = process.argv[2];
if (!file) {
  console.error('usage: check.js vercel.json');
  process.exit(2);
}
let config;
try {
  config = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`${file}: not JSON: ${err.message}`);
  process.exit(1);
}
const schemas = {
  routes: routing.routesSchema,
  rewrites: routing.rewritesSchema,
  redirects: routing.redirectsSchema,
  headers: routing.headersSchema,
  cleanUrls: routing.cleanUrlsSchema,
  trailingSlash: routing.trailingSlashSchema,
  functions: build.functionsSchema,
  builds: build.buildsSchema,
};
const ajv = new Ajv({ allErrors: true });
const problems = [];
for (const [key, schema] of Object.entries(schemas)) {
  if (!(key in config)) continue;
  if (!ajv.validate(schema, config[key])) {
    for (const e of ajv.errors) problems.push(`${key}${e.dataPath}: ${e.message}`);
  }
}
const { error } = routing.getTransformedRoutes(config);
if (error) problems.push(`routes: ${error.message}`);
if (problems.length) {
  for (const p of problems) console.error(`${file}: ${p}`);
  process.exit(1);
}
console.log(`${file}: valid (${Object.keys(schemas).filter(k => k in config).join(', ')})`);
