"""A local Vercel: the REST endpoints deployer's Vercel target uses, with the documented
shapes, plus each deployment's URL and the production domain, and injectable faults.

Endpoints (bearer auth; ``teamId``/``slug`` checked when the fake has a team; errors as
``{"error": {"code", "message"}}``):

    GET  /v9/projects/{idOrName}             id, name, targets.production, lastAliasRequest
    GET  /v13/deployments/{idOrUrl}          id, url, readyState, target, meta
    GET  /v6/deployments?projectId&target... deployments (uid, url, state, created)
    POST /v10/projects/{projectId}/promote/{id}  201; asynchronous (lastAliasRequest)
    POST /v1/projects/{projectId}/rollback/{id}  201; asynchronous; pins production
    GET|PATCH|DELETE /v1/projects/{idOrName}/rolling-release/config   the project's template
    POST /v1/projects/{idOrName}/rolling-release/start            {canaryDeploymentId}
    GET  /v1/projects/{idOrName}/rolling-release                  state, stages, activeStage
    POST /v1/projects/{idOrName}/rolling-release/approve-stage    {nextStageIndex,
                                                                   canaryDeploymentId}
    POST /v1/projects/{idOrName}/rolling-release/complete         {canaryDeploymentId}

During an ACTIVE rolling release the production domain sends the active stage's percentage
of requests to the canary (deterministically: every 100/pct-th); a rollback aborts it.

Serving: ``/_d/{id}/...`` is a deployment's own URL (its ``url`` field is
``127.0.0.1:PORT/_d/{id}``, reached with the API's scheme), ``/_prod/...`` the production
domain. A deployment's health route answers ``{"status": "ok", "version": ...}``, or 500
when it is broken there (``broken_own``, ``broken_in_production``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeDeployment:
    id: str
    sha: str
    state: str = "READY"
    target: str | None = "production"
    created: float = field(default_factory=lambda: time.time() * 1000)
    broken_own: bool = False
    broken_in_production: bool = False
    polls_until_ready: int = 0  # BUILDING for this many reads, then READY
    stuck: bool = False  # BUILDING forever

    @property
    def version(self) -> str:
        return self.sha[:12]


class FakeVercel:
    def __init__(self, token: str, *, team: str | None = None):
        self.token, self.team = token, team
        self.project = {"id": "prj_fake1", "name": "shop", "accountId": "acc_1"}
        self.deployments: dict[str, FakeDeployment] = {}
        self.production: str | None = None
        self.alias_job: dict[str, Any] | None = None
        self.promote_delay = 0.3
        self.promote_never = False
        self.rate_limited = 0  # this many API requests get 429 first
        self.retry_after = 1
        self.server_errors = 0  # then this many get 500
        self.calls: list[tuple[str, str]] = []
        self.rolling_config: dict[str, Any] | None = None
        self.rolling: dict[str, Any] | None = None
        self.bodies: list[tuple[str, dict[str, Any]]] = []  # (path, JSON body) of writes
        self._split = 0
        self.served_429 = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    # ----- documents -----
    def dep_doc(self, d: FakeDeployment) -> dict[str, Any]:
        return {
            "id": d.id,
            "url": f"127.0.0.1:{self.port}/_d/{d.id}",
            "name": self.project["name"],
            "projectId": self.project["id"],
            "readyState": d.state,
            "target": d.target,
            "createdAt": d.created,
            "meta": {"githubCommitSha": d.sha},
        }

    def project_doc(self) -> dict[str, Any]:
        self._settle()
        prod = self.deployments.get(self.production or "")
        pinned = bool(
            self.alias_job
            and self.alias_job["type"] == "rollback"
            and self.alias_job["jobStatus"] == "succeeded"
        )
        return {
            **self.project,
            "nodeVersion": "20.x",
            "directoryListing": False,
            "targets": {"production": self.dep_doc(prod)} if prod else {},
            "lastAliasRequest": dict(self.alias_job) if self.alias_job else None,
            "live": not pinned,
        }

    def _settle(self) -> None:
        """An accepted promote or rollback takes effect after ``promote_delay``."""
        job = self.alias_job
        due = job and time.time() * 1000 - job["requestedAt"] >= self.promote_delay * 1000
        if job and due and job["jobStatus"] == "in-progress" and not self.promote_never:
            self.production = job["toDeploymentId"]
            job["jobStatus"] = "succeeded"

    def _move(self, kind: str, dep_id: str) -> tuple[int, dict[str, Any]]:
        d = self.deployments.get(dep_id)
        if d is None:
            return 404, _error("not_found", "Deployment not found")
        if d.state != "READY":
            return 400, _error("deployment_not_ready", f"Deployment is {d.state}")
        if self.alias_job and self.alias_job["jobStatus"] == "in-progress" and kind == "promote":
            return 409, _error("conflict", "Another promote or rollback is in progress")
        self.alias_job = {
            "type": kind,
            "fromDeploymentId": self.production,
            "toDeploymentId": dep_id,
            "jobStatus": "in-progress",
            "requestedAt": time.time() * 1000,
        }
        if kind == "rollback":  # a rollback never waits for a stuck promote
            self.promote_never = False
        return 201, {}

    # ----- HTTP -----
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
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = None
                with fake.lock:
                    if path.startswith(("/_d/", "/_prod")):
                        return self._serve(path)
                    fake.calls.append((method, path))
                    if method in ("POST", "PATCH") and isinstance(body, dict):
                        fake.bodies.append((path, body))
                    status, doc, headers = fake._api(method, path, query, self.headers, body)
                self._send(status, doc, headers)

            def _serve(self, path: str) -> None:
                fake._settle()
                if path.startswith("/_prod"):
                    d = fake.deployments.get(fake._production_for_this_request() or "")
                    broken = d is None or d.broken_in_production
                else:
                    d = fake.deployments.get(path.split("/")[2])
                    broken = d is None or d.broken_own or d.state != "READY"
                if d is None:
                    return self._send(500, {"status": "error"})
                if broken:  # a health route that fails still says which version it is
                    return self._send(500, {"status": "error", "version": d.version})
                self._send(200, {"status": "ok", "version": d.version, "database": "ok"})

        return Handler

    def _production_for_this_request(self) -> str | None:
        rr = self.rolling
        if rr and rr["state"] == "ACTIVE":
            pct = rr["activeStage"]["targetPercentage"]
            self._split += pct
            if self._split >= 100:
                self._split -= 100
                return str(rr["canaryDeployment"]["id"])
        return self.production

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
        return 200, {"rollingRelease": rr}

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
            return 200, self.project_doc(), {}
        if method == "GET" and seg[:2] == ["v13", "deployments"] and len(seg) >= 3:
            ref = "/".join(seg[2:])
            found = self.deployments.get(ref) or next(
                (d for d in self.deployments.values() if self.dep_doc(d)["url"] == ref),
                None,
            )
            if found is None:
                return 404, _error("not_found", "Deployment not found"), {}
            if found.state == "BUILDING" and not found.stuck:
                if found.polls_until_ready <= 0:
                    found.state = "READY"
                found.polls_until_ready -= 1
            return 200, self.dep_doc(found), {}
        if method == "GET" and seg == ["v6", "deployments"]:
            deps = sorted(
                (
                    d
                    for d in self.deployments.values()
                    if d.target == "production" and d.state == "READY"
                ),
                key=lambda d: -d.created,
            )[: int((query.get("limit") or ["20"])[0])]
            listed = [
                {
                    "uid": d.id,
                    "url": self.dep_doc(d)["url"],
                    "state": d.state,
                    "target": d.target,
                    "created": d.created,
                    "meta": {"githubCommitSha": d.sha},
                }
                for d in deps
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
            if seg[0] == "v1" and seg[3] == "rollback":
                status, doc = self._move("rollback", seg[4])
                if status == 201 and self.rolling and self.rolling["state"] == "ACTIVE":
                    self.rolling["state"] = "ABORTED"  # production stays where it is
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
            "production_url": f"{fake.url}/_prod",
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
