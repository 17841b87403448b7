// src/app/api/health/route.ts: the health route deployer's gates probe on Vercel.
//
// - `dynamic = 'force-dynamic'`: in Next.js 14 a GET route handler is static by default, so
//   without it both gates would probe an answer computed once at build time (and cached),
//   never the running deployment.
// - It reports the commit the deployment was built from (VERCEL_GIT_COMMIT_SHA, all 40
//   characters, set by Vercel in every deployment): deployer's pre-switch gate expects it
//   (`expect_json: {commit: "${version}"}`), and a canary (a Vercel rolling release)
//   attributes each answer to the candidate or to production by it.
// - It checks the database with a query that takes no lock and returns at once, with a
//   short timeout: a health route that hangs on a slow database fails the gate by timeout,
//   which is what you want, but it must not pile up connections.
// - Never cached: examples/vercel.json sets `Cache-Control: no-store` for /api/health.
import { NextResponse } from 'next/server';
import { Pool } from 'pg';

export const dynamic = 'force-dynamic';
export const revalidate = 0;

const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: 1,
  connectionTimeoutMillis: 2000,
  statement_timeout: 2000,
});

export async function GET() {
  const commit = process.env.VERCEL_GIT_COMMIT_SHA ?? 'unknown';
  try {
    await pool.query('SELECT 1');
    return NextResponse.json({ status: 'ok', database: 'ok', commit });
  } catch {
    return NextResponse.json({ status: 'error', database: 'unreachable', commit }, { status: 503 });
  }
}
