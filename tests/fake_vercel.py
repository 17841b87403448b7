"""A local Vercel that follows Vercel's documentation and its own CLI, not deployer.

Each behaviour cites where it comes from: Vercel's REST API reference (vercel.com/docs/rest-api),
its guides (vercel.com/docs/instant-rollback, /docs/rolling-releases,
/docs/deployments/promoting-a-deployment, /docs/deployment-protection) and the Vercel CLI's
source (github.com/vercel/vercel, packages/cli/src/commands/{promote,rollback,rolling-release},
packages/cli/src/util/projects/get-project-by-id-or-name.ts,
packages/cli/src/util/deploy/get-deployments-by-project-id.ts, internals/types/index.d.ts).
Where those say nothing, the fake chooses the stricter reading and says so.

One HTTP server; what a request reaches depends on its Host header, as at Vercel:

- the API (any other host, e.g. ``127.0.0.1:PORT`` as ``vercel.api_url``);
- a deployment's own URL, ``<project>-<hash>-<team slug>.vercel.app`` (the ``url`` field of a
  deployment; Deployment Protection applies there: 401 without the bypass header when the
  project has a bypass secret);
- the custom production domain (``production_domain``: public, never protected), serving
  the production deployment, or during an active rolling release one side per client,
  sticky (a cookie), and forceable per request (``vcrrForceCanary=1`` / ``vcrrForceStable=1``,
  the query parameters Vercel documents for checking each side of a rolling release).

Tests reach the hostnames through deployer's resolver override (``DEPLOYER_RESOLVE``, like
curl's ``--resolve``), see :meth:`FakeVercel.resolve_env`.

Endpoints (bearer auth; ``teamId``/``slug`` checked when the fake has a team; errors are
``{"error": {"code", "message"}}``):

    GET  /v9/projects/{idOrName}[?rollbackInfo=true]   id, name, accountId, targets.production,
         lastAliasRequest, autoAssignCustomDomains; with rollbackInfo: lastRollbackTarget
    GET  /v13/deployments/{idOrUrl}                    id, url, readyState, target, projectId,
                                                       ownerId, meta.githubCommitSha,
                                                       autoAssignCustomDomains
    GET  /v6/deployments?projectId&target&state&rollbackCandidate&limit
                                                       uid, url, state, target, created, meta,
                                                       isRollbackCandidate
    POST /v10/projects/{id}/promote/{deploymentId}     201; asynchronous (lastAliasRequest)
    POST /v1/projects/{id}/rollback/{deploymentId}     201; asynchronous; pins production
         (also /v9/..., the path the CLI's request-rollback.ts uses)
    GET|PATCH|DELETE /v1/projects/{idOrName}/rolling-release/config
    GET  /v1/projects/{idOrName}/rolling-release
    POST /v1/projects/{idOrName}/rolling-release/{start,approve-stage,complete}
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PRODUCTION_DOMAIN = "shop.example.test"


@dataclass
class FakeDeployment:
    id: str
    sha: str  # 40 hex characters: what VERCEL_GIT_COMMIT_SHA holds in the deployment
    state: str = "READY"
    #: "production" for a production build (`vercel deploy --prod`), None for a preview
    target: str | None = "production"
    created: float = field(default_factory=lambda: time.time() * 1000)
    broken_own: bool = False
    broken_in_production: bool = False
    polls_until_ready: int = 0  # BUILDING for this many reads, then READY
    stuck: bool = False  # BUILDING forever
    #: it was aliased to production at some point: Vercel's rollback candidates are the
    #: deployments "previously aliased to a production domain" (docs/instant-rollback)
    served: bool = False
    project_id: str = "prj_fake1"
    owner: str = "team_fake1"
    #: the deployment's own setting (`vercel deploy --prod --skip-domain` stages it: False);
    #: None: not set, the project's setting decides
    auto_assign: bool | None = False


class FakeVercel:
    def __init__(self, token: str, *, team: str | None = None, team_slug: str = "acme"):
        self.token, self.team, self.team_slug = token, team, team_slug
        self.project = {"id": "prj_fake1", "name": "shop", "accountId": "team_fake1"}
        #: the project's "Auto-assign Custom Production Domains" (Vercel's default is on;
        #: docs/deployments/promoting-a-deployment, "staging and promoting a production
        #: deployment", says to turn it off to stage production builds)
        self.auto_assign = False
        self.production_domain = PRODUCTION_DOMAIN
        self.bypass: str | None = None  # Protection Bypass for Automation secret
        self.deployments: dict[str, FakeDeployment] = {}
        self.production: str | None = None
        self.alias_job: dict[str, Any] | None = None  # lastAliasRequest
        self.rollback_target: dict[str, Any] | None = None  # lastRollbackTarget (pinned)
        self.promote_delay = 0.3
        self.promote_never = False  # an accepted move stays in-progress
        self.promote_fails = False  # an accepted move ends jobStatus "failed"
        self.drop_next_move = False  # apply the next move, then drop the connection
        self.refuse_moves = 0  # this many promotes/rollbacks get 409 (a conflicting job)
        self.storm_on_move = 0  # a 429 storm of this many answers, starting with a move
        #: a pending job older than this no longer blocks a move (the CLI's status.ts treats
        #: a request older than 3 minutes as no longer in progress)
        self.job_stale_after = 180.0
        self.rate_limited = 0  # this many API requests get 429 first
        self.retry_after = 1
        self.server_errors = 0  # then this many get 500
        self.calls: list[tuple[str, str]] = []
        self.rolling_config: dict[str, Any] | None = None
        self.rolling: dict[str, Any] | None = None
        self.bodies: list[tuple[str, dict[str, Any]]] = []  # (path, JSON body) of writes
        self.bypass_sent_to: set[str] = set()  # hosts that received the bypass header
        self.served_429 = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The API's base URL (``vercel.api_url``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def production_url(self) -> str:
        return f"http://{self.production_domain}"

    def resolve_env(self) -> dict[str, str]:
        """``DEPLOYER_RESOLVE`` for a deployer run: the hostnames to this server."""
        here = f"127.0.0.1:{self.port}"
        return {"DEPLOYER_RESOLVE": f"*.vercel.app={here},{self.production_domain}={here}"}

    def __enter__(self) -> FakeVercel:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, dep_id: str, sha: str, **kw: Any) -> FakeDeployment:
        d = FakeDeployment(dep_id, sha, **kw)
        self.deployments[dep_id] = d
        return d

    def serve(self, dep_id: str) -> None:
        """Production serves ``dep_id`` (a test's starting point)."""
        self.production = dep_id
        self.deployments[dep_id].served = True

    def host_of(self, d: FakeDeployment) -> str:
        """A deployment's generated URL: ``<project>-<unique hash>-<scope slug>.vercel.app``
        (docs/deployments/generated-urls)."""
        digest = hashlib.sha256(d.id.encode()).hexdigest()[:9]
        return f"{self.project['name']}-{digest}-{self.team_slug}.vercel.app"

    # ----- documents -----
    def dep_doc(self, d: FakeDeployment) -> dict[str, Any]:
        doc = {
            "id": d.id,
            "url": self.host_of(d),
            "name": self.project["name"],
            "projectId": d.project_id,
            "ownerId": d.owner,
            "readyState": d.state,
            "target": d.target,
            "createdAt": d.created,
            "meta": {"githubCommitSha": d.sha},
        }
        if d.auto_assign is not None:
            doc["autoAssignCustomDomains"] = d.auto_assign
        return doc

    @property
    def pinned(self) -> bool:
        return self.rollback_target is not None

    def project_doc(self, rollback_info: bool) -> dict[str, Any]:
        self._settle()
        prod = self.deployments.get(self.production or "")
        doc: dict[str, Any] = {
            **self.project,
            "autoAssignCustomDomains": self.auto_assign,
            "targets": {"production": self.dep_doc(prod)} if prod else {},
            "lastAliasRequest": dict(self.alias_job) if self.alias_job else None,
        }
        if self.rolling_config and self.rolling_config.get("enabled"):
            # the CLI's promote/status.ts reads `projectCheck.rollingRelease`
            doc["rollingRelease"] = dict(self.rolling_config)
        if rollback_info:  # get-project-by-id-or-name.ts asks `?rollbackInfo=true`
            doc["lastRollbackTarget"] = dict(self.rollback_target) if self.rollback_target else None
        return doc

    def _settle(self) -> None:
        """An accepted promote or rollback takes effect after ``promote_delay``, or fails
        (``jobStatus: failed``, production unchanged: promote/status.ts renderJobFailed)."""
        job = self.alias_job
        due = job and time.time() * 1000 - job["requestedAt"] >= self.promote_delay * 1000
        if not (job and due and job["jobStatus"] == "in-progress"):
            self._auto_assign()
            return
        if self.promote_never:
            return
        if self.promote_fails:
            job["jobStatus"] = "failed"
            return
        self.production = job["toDeploymentId"]
        self.deployments[self.production].served = True
        job["jobStatus"] = "succeeded"
        if job["type"] == "promote":  # a promote that completed un-pins (docs/instant-rollback)
            self.rollback_target = None

    def _auto_assign(self) -> None:
        """A production build that becomes READY takes the production domains by itself,
        unless it was staged (its own autoAssignCustomDomains false) or the project does not
        auto-assign, or production is pinned by a rollback (docs/instant-rollback: new
        production deployments are not assigned the domains until one is promoted)."""
        if self.pinned:
            return
        newest = None
        for d in self.deployments.values():
            assign = self.auto_assign if d.auto_assign is None else d.auto_assign
            ready = d.target == "production" and d.state == "READY" and assign and not d.served
            if ready and (newest is None or d.created > newest.created):
                newest = d
        if newest is not None:
            self.production = newest.id
            newest.served = True

    def _move(self, kind: str, dep_id: str) -> tuple[int, dict[str, Any]]:
        self._settle()
        d = self.deployments.get(dep_id)
        if d is None or d.project_id != self.project["id"]:
            return 404, _error("not_found", "Deployment not found")
        if d.state != "READY":
            return 400, _error("deployment_not_ready", f"Deployment is {d.state}")
        if self.refuse_moves > 0:
            self.refuse_moves -= 1
            return 409, _error("conflict", "Another promote or rollback is in progress")
        job = self.alias_job
        fresh = job and time.time() * 1000 - job["requestedAt"] < self.job_stale_after * 1000
        if job and fresh and job["jobStatus"] in ("pending", "in-progress"):
            return 409, _error("conflict", "Another promote or rollback is in progress")
        if kind == "promote":
            if d.target != "production":
                # promote/request-promote.ts: a preview "cannot be directly promoted" (the
                # CLI builds a new production deployment instead)
                return 400, _error("not_production", "Deployment is not a production deployment")
            if dep_id == self.production and not self.pinned:
                return 409, _error("conflict", "Deployment is already the current production")
            if self.rolling_config and self.rolling_config.get("enabled"):
                # promote/status.ts: on a project with rolling releases a promote starts one
                status, doc = self._rolling("POST", "start", {"canaryDeploymentId": dep_id})
                return (201, {}) if status == 200 else (status, doc)
        else:
            aborting = bool(self.rolling and self.rolling["state"] == "ACTIVE")
            if dep_id == self.production and not aborting:
                # a rollback to the current production while a rolling release is active
                # aborts it (rolling-release/abort-rolling-release.ts does exactly that)
                return 409, _error("conflict", "Deployment is already the current production")
            if not d.served:
                # docs/instant-rollback "eligible deployments": previously aliased to a
                # production domain; anything else is refused
                return 400, _error("not_rollback_candidate", "Deployment is not eligible")
        self.alias_job = {
            "type": kind,
            "fromDeploymentId": self.production,
            "toDeploymentId": dep_id,
            "jobStatus": "in-progress",
            "requestedAt": time.time() * 1000,
        }
        if kind == "rollback":  # pinned until a promote (docs/instant-rollback)
            self.rollback_target = {
                "fromDeploymentId": self.production,
                "toDeploymentId": dep_id,
                "jobStatus": "in-progress",
                "requestedAt": self.alias_job["requestedAt"],
            }
            if self.rolling and self.rolling["state"] == "ACTIVE":
                self.rolling["state"] = "ABORTED"
        return 201, {}

    # ----- serving -----
    def _side(self, query: dict[str, list[str]], cookie: str, client: str) -> tuple[str, str]:
        """During an active rolling release: which side serves this request, and the
        cookie that keeps the client there. Forced by ``vcrrForceCanary`` /
        ``vcrrForceStable``; else sticky by cookie; else assigned by client identity (one
        prober from one address always lands on the same side)."""
        rr = self.rolling
        assert rr is not None
        canary, stable = str(rr["canaryDeployment"]["id"]), str(self.production)
        if query.get("vcrrForceCanary", [""])[0] in ("1", "true"):
            return canary, ""
        if query.get("vcrrForceStable", [""])[0] in ("1", "true"):
            return stable, ""
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "_vcrr" and value in ("canary", "stable"):
                return (canary if value == "canary" else stable), ""
        pct = rr["activeStage"]["targetPercentage"]
        bucket = int(hashlib.sha256(client.encode()).hexdigest(), 16) % 100
        side = "canary" if bucket < pct else "stable"
        return (canary if side == "canary" else stable), f"_vcrr={side}; Path=/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def do_DELETE(self) -> None:
                self._route("DELETE")

            def _route(self, method: str) -> None:
                parts = urlsplit(self.path)
                path, query = parts.path, parse_qs(parts.query)
                host = (self.headers.get("Host") or "").split(":")[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = None
                with fake.lock:
                    if host == fake.production_domain or host.endswith(".vercel.app"):
                        return self._serve(host, query)
                    fake.calls.append((method, path))
                    if method in ("POST", "PATCH") and isinstance(body, dict):
                        fake.bodies.append((path, body))
                    status, doc, headers = fake._api(method, path, query, self.headers, body)
                    if status == 201 and fake.drop_next_move and "/rollback/" not in path:
                        fake.drop_next_move = False  # applied; the answer is lost
                        self.close_connection = True
                        return
                self._send(status, doc, headers)

            def _serve(self, host: str, query: dict[str, list[str]]) -> None:
                fake._settle()
                if self.headers.get("x-vercel-protection-bypass"):
                    fake.bypass_sent_to.add(host)
                cookie = ""
                if host == fake.production_domain:
                    dep_id = fake.production
                    if fake.rolling and fake.rolling["state"] == "ACTIVE":
                        client = self.client_address[0]
                        dep_id, cookie = fake._side(query, self.headers.get("Cookie") or "", client)
                    d = fake.deployments.get(dep_id or "")
                    broken = d is None or d.broken_in_production
                else:
                    d = next(
                        (x for x in fake.deployments.values() if fake.host_of(x) == host), None
                    )
                    given = self.headers.get("x-vercel-protection-bypass")
                    if d is not None and fake.bypass is not None and given != fake.bypass:
                        return self._send(401, {"error": "authentication required"})
                    broken = d is None or d.broken_own or d.state != "READY"
                headers = {"Set-Cookie": cookie} if cookie else None
                if d is None:
                    return self._send(404, {"error": "DEPLOYMENT_NOT_FOUND"})
                # the example health route (examples/vercel/health-route.ts) reports the
                # commit it was built from (VERCEL_GIT_COMMIT_SHA, 40 characters)
                if broken:
                    return self._send(500, {"status": "error", "commit": d.sha}, headers)
                self._send(200, {"status": "ok", "commit": d.sha, "database": "ok"}, headers)

        return Handler

    # ----- rolling releases -----
    def _rolling(
        self, method: str, action: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        rr = self.rolling
        if action == "config":
            if method == "PATCH":
                if not isinstance(body, dict) or (body.get("enabled") and not body.get("stages")):
                    return 400, _error("bad_request", "stages are required when enabled")
                self.rolling_config = dict(body)
            elif method == "DELETE":
                self.rolling_config = None
            return 200, {"rollingRelease": self.rolling_config}
        if method == "GET" and action == "":
            return 200, {"rollingRelease": rr}
        canary = (body or {}).get("canaryDeploymentId")
        if action == "start":
            cfg = self.rolling_config
            if not cfg or not cfg.get("enabled"):
                return 400, _error("rolling_release_disabled", "Rolling releases are off")
            if canary not in self.deployments:
                return 404, _error("not_found", "Deployment not found")
            # docs/rest-api "start a rolling release": already active for the same canary:
            # the current state, without side effects
            if rr and rr["state"] == "ACTIVE" and rr["canaryDeployment"]["id"] == canary:
                return 200, {"rollingRelease": rr}
            stages = [
                {"index": i, "targetPercentage": st["targetPercentage"], "isFinalStage": i ==
                 len(cfg["stages"]) - 1} for i, st in enumerate(cfg["stages"])
            ]  # fmt: skip
            self.rolling = {
                "state": "ACTIVE",
                "currentDeployment": {"id": self.production},
                "canaryDeployment": {"id": canary},
                "stages": stages,
                "activeStage": stages[0],
                "advancementType": cfg.get("advancementType"),
            }
            self.deployments[canary].served = True
            return 200, {"rollingRelease": self.rolling}
        if not rr or rr["state"] != "ACTIVE":
            return 400, _error("no_active_rolling_release", "No active rolling release")
        if canary != rr["canaryDeployment"]["id"]:
            return 400, _error("bad_request", "canaryDeploymentId is not the active canary")
        if action == "approve-stage":
            nxt = (body or {}).get("nextStageIndex")
            if nxt != rr["activeStage"]["index"] + 1 or nxt >= len(rr["stages"]):
                return 400, _error("bad_request", f"nextStageIndex {nxt} is not the next stage")
            rr["activeStage"] = rr["stages"][nxt]
            if rr["activeStage"]["isFinalStage"]:
                action = "complete"
        if action == "complete":
            rr["state"] = "COMPLETE"
            self.production = canary
            self.alias_job = None
            self.rollback_target = None
        return 200, {"rollingRelease": rr}

    # ----- the API -----
    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 403, _error("forbidden", "Not authorized"), {}
        if self.team is not None:
            asked = (query.get("teamId") or query.get("slug") or [""])[0]
            if asked != self.team:
                return 403, _error("forbidden", "You don't have permission to the team"), {}
        is_move = method == "POST" and ("/promote/" in path or "/rollback/" in path)
        if self.storm_on_move and is_move:
            self.rate_limited, self.storm_on_move = self.storm_on_move, 0
        if self.rate_limited > 0:
            self.rate_limited -= 1
            self.served_429 += 1
            reset = str(int(time.time()) + self.retry_after)
            hdrs = {"Retry-After": str(self.retry_after), "X-RateLimit-Reset": reset}
            return 429, _error("rate_limited", "Rate limited"), hdrs
        if self.server_errors > 0:
            self.server_errors -= 1
            return 500, _error("internal_server_error", "An unexpected error happened"), {}
        seg = path.strip("/").split("/")
        project_ok = len(seg) > 2 and seg[2] in (self.project["id"], self.project["name"])
        if method == "GET" and seg[:2] == ["v9", "projects"] and len(seg) == 3:
            if not project_ok:
                return 404, _error("not_found", "Project not found"), {}
            info = (query.get("rollbackInfo") or [""])[0] == "true"
            return 200, self.project_doc(info), {}
        if method == "GET" and seg[:2] == ["v13", "deployments"] and len(seg) >= 3:
            ref = "/".join(seg[2:])
            found = self.deployments.get(ref) or next(
                (d for d in self.deployments.values() if self.host_of(d) == ref), None
            )
            if found is None:
                return 404, _error("not_found", "Deployment not found"), {}
            if found.state == "BUILDING" and not found.stuck:
                if found.polls_until_ready <= 0:
                    found.state = "READY"
                    self._auto_assign()
                found.polls_until_ready -= 1
            return 200, self.dep_doc(found), {}
        if method == "GET" and seg == ["v6", "deployments"]:
            self._settle()
            want = {k: (v or [""])[0] for k, v in query.items()}
            deps = [
                d
                for d in self.deployments.values()
                if d.project_id == want.get("projectId", d.project_id)
                and (want.get("target") in (None, "", d.target))
                and (want.get("state") in (None, "", d.state))
                and (want.get("rollbackCandidate") != "true" or d.served)
            ]
            deps.sort(key=lambda d: -d.created)
            listed = [
                {
                    "uid": d.id,
                    "url": self.host_of(d),
                    "state": d.state,
                    "target": d.target,
                    "created": d.created,
                    "meta": {"githubCommitSha": d.sha},
                    # get-deployments-by-project-id.ts: LegacyDeployment.isRollbackCandidate
                    "isRollbackCandidate": d.served and d.id != self.production,
                }
                for d in deps[: int(want.get("limit") or "20")]
            ]
            return 200, {"deployments": listed, "pagination": {"count": len(listed)}}, {}
        if seg[:2] == ["v1", "projects"] and len(seg) >= 4 and seg[3] == "rolling-release":
            if not project_ok:
                return 404, _error("not_found", "Project not found"), {}
            status, doc = self._rolling(method, seg[4] if len(seg) > 4 else "", body)
            return status, doc, {}
        if method == "POST" and len(seg) == 5 and seg[1] == "projects" and project_ok:
            if seg[0] == "v10" and seg[3] == "promote":
                status, doc = self._move("promote", seg[4])
                return status, doc, {}
            if seg[0] in ("v1", "v9") and seg[3] == "rollback":
                status, doc = self._move("rollback", seg[4])
                return status, doc, {}
        return 404, _error("not_found", f"No route {method} {path}"), {}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def playbook_doc(fake: FakeVercel, state: Path, **extra: Any) -> dict[str, Any]:
    """A `target: vercel` playbook pointed at ``fake`` (the token from $VERCEL_TOKEN),
    its journal and lock under ``state``; ``extra`` replaces top-level sections."""
    doc: dict[str, Any] = {
        "target": "vercel",
        "app": "shop",
        "vercel": {
            "project": "shop",
            "token": "${env:VERCEL_TOKEN}",
            "production_url": fake.production_url,
            "api_url": fake.url,
        },
        "gates": {
            "pre_switch": {"path": "/api/health", "interval": "100ms", "successes": 3},
            "post_switch": {"path": "/api/health", "window": "1s", "rate": 20},
        },
        "journal_dir": str(state / "journal"),
        "state_dir": str(state / "state"),
    }
    doc.update(extra)
    return doc
