"""Vercel's REST API, the calls a release needs, through httpx with bounded tenacity retries.

Retried: 429 (waiting what ``Retry-After`` or ``X-RateLimit-Reset`` says) and 5xx and
connection errors, within ``budget`` seconds: a wait that would end past the budget is not
started (a ``Retry-After`` longer than what is left gives up at once). Never retried: a 4xx
that says the request is wrong; 401/403 (token, team), 404 (project, deployment) and 409 (a
conflicting promote) are named. A write whose answer was lost (a dropped connection, a 5xx)
may have happened: the caller reads the project again before deciding anything. The token is
sent as a bearer header only; it never enters a message.

Semantics follow Vercel's REST reference and its CLI (github.com/vercel/vercel,
packages/cli/src/commands/{promote,rollback}/, util/projects/get-project-by-id-or-name.ts,
util/deploy/get-deployments-by-project-id.ts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception

from deployer.adapters import resolve
from deployer.errors import DeployerError, HostError, InputError, printable

#: deployment states (``readyState``): what a release waits through, and where it stops
WAITING = ("QUEUED", "INITIALIZING", "BUILDING")
FAILED = ("ERROR", "CANCELED", "DELETED")


class ApiError(DeployerError):
    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        self.status, self.code, self.retry_after = status, code, retry_after
        super().__init__(f"Vercel API {status} {code}: {message}")


class _Retry(Exception):
    """A response worth another try (429, 5xx, a dropped connection)."""

    def __init__(self, why: str, wait: float | None = None):
        self.why, self.wait = why, wait
        super().__init__(why)


@dataclass(frozen=True)
class Deployment:
    id: str
    url: str
    state: str
    target: str | None
    meta: dict[str, Any]
    project_id: str | None = None
    owner: str | None = None
    #: the deployment's own autoAssignCustomDomains (False: staged, e.g. `--skip-domain`);
    #: None when the API does not say
    auto_assign: bool | None = None
    #: from the deployments list (`isRollbackCandidate`): it served production before
    rollback_candidate: bool | None = None
    created: float = 0.0

    @classmethod
    def from_api(cls, doc: dict[str, Any]) -> Deployment:
        auto = doc.get("autoAssignCustomDomains")
        cand = doc.get("isRollbackCandidate")
        created = doc.get("createdAt") or doc.get("created") or 0
        return cls(
            str(doc.get("id") or doc.get("uid") or ""),
            str(doc.get("url") or ""),
            str(doc.get("readyState") or doc.get("state") or ""),
            doc.get("target") if isinstance(doc.get("target"), str) else None,
            dict(doc.get("meta") or {}) if isinstance(doc.get("meta"), dict) else {},
            str(doc["projectId"]) if doc.get("projectId") else None,
            str(doc["ownerId"]) if doc.get("ownerId") else None,
            auto if isinstance(auto, bool) else None,
            cand if isinstance(cand, bool) else None,
            float(created) if isinstance(created, int | float) else 0.0,
        )

    @property
    def commit(self) -> str | None:
        """The full commit SHA it was built from (what ``VERCEL_GIT_COMMIT_SHA`` holds in
        the deployment), when the API says."""
        sha = self.meta.get("githubCommitSha") or self.meta.get("gitCommitSha")
        return str(sha) if sha else None

    @property
    def version(self) -> str:
        """The commit it was built from when known (all 40 characters: a health route that
        reports ``VERCEL_GIT_COMMIT_SHA`` matches it exactly), else its id."""
        return self.commit or self.id


class VercelApi:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        team: str | None = None,
        timeout: float = 10.0,
        budget: float = 60.0,
        attempts: int = 12,
    ):
        self.base_url = base_url.rstrip("/")
        self.scheme = httpx.URL(self.base_url).scheme
        self.params: dict[str, str] = {}
        if team:
            self.params["teamId" if team.startswith("team_") else "slug"] = team
        self.budget, self.attempts = budget, attempts
        self.calls = 0  # requests sent, retries included
        self.client = resolve.client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "deployer"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.client.close()

    # ----- one request, retried -----
    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, **params: str
    ) -> dict[str, Any]:
        started = time.monotonic()

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            asked = exc.wait if isinstance(exc, _Retry) else None
            return asked if asked is not None else min(8.0, 0.25 * 2 ** (state.attempt_number - 1))

        def stop(state: RetryCallState) -> bool:
            """No attempt past ``attempts``, and no wait that would end past the budget."""
            late = time.monotonic() - started + wait(state) > self.budget
            return state.attempt_number >= self.attempts or late

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Retry)),
            stop=stop,
            wait=wait,
            reraise=True,
        )
        try:
            out: dict[str, Any] = retrying(
                self._once, method, path, {**self.params, **params}, body
            )
            return out
        except _Retry as exc:
            spent = time.monotonic() - started
            asked = f"; it asked to wait {exc.wait:g}s more" if exc.wait else ""
            raise HostError(
                f"Vercel API: {method} {path} still failing after {spent:.1f}s of retries "
                f"({exc.why}{asked}), giving up within vercel.api_budget {self.budget:g}s"
            ) from None

    def _once(
        self, method: str, path: str, params: dict[str, str], body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self.calls += 1
        try:
            resp = self.client.request(method, path, params=params, json=body)
        except httpx.TransportError as exc:
            raise _Retry(f"{type(exc).__name__}") from None
        if resp.status_code == 429:
            raise _Retry("429 rate limited", _retry_after(resp))
        if resp.status_code >= 500:
            raise _Retry(f"{resp.status_code} from Vercel")
        body = _json(resp)
        if resp.status_code >= 400:
            raw = body.get("error")
            err: dict[str, Any] = raw if isinstance(raw, dict) else {}
            code = printable(err.get("code") or "error", 60)
            message = printable(err.get("message") or resp.reason_phrase, 200)
            if resp.status_code in (401, 403):
                raise HostError(
                    f"Vercel refused the request ({resp.status_code} {code}: {message}): check "
                    "vercel.token and vercel.team"
                )
            if resp.status_code == 404:
                raise InputError(f"Vercel: not found ({code}: {message}): check {path}")
            raise ApiError(resp.status_code, code, message)
        return body

    # ----- the calls a release makes -----
    def project(self, project: str) -> dict[str, Any]:
        """The project with ``rollbackInfo`` (``lastRollbackTarget``), as the CLI asks it
        (get-project-by-id-or-name.ts)."""
        return self.request("GET", f"/v9/projects/{project}", rollbackInfo="true")

    def deployment(self, id_or_url: str) -> Deployment:
        ref = id_or_url.removeprefix("https://").removeprefix("http://").rstrip("/")
        return Deployment.from_api(self.request("GET", f"/v13/deployments/{ref}"))

    def promote(self, project_id: str, deployment_id: str) -> None:
        self.request("POST", f"/v10/projects/{project_id}/promote/{deployment_id}")

    def rollback(self, project_id: str, deployment_id: str) -> None:
        self.request("POST", f"/v1/projects/{project_id}/rollback/{deployment_id}")

    # ----- rolling releases (strategy: canary) -----
    def rolling_config(self, project_id: str) -> dict[str, Any] | None:
        doc = self.request("GET", f"/v1/projects/{project_id}/rolling-release/config")
        cfg = doc.get("rollingRelease")
        return cfg if isinstance(cfg, dict) else None

    def set_rolling_config(self, project_id: str, config: dict[str, Any] | None) -> None:
        path = f"/v1/projects/{project_id}/rolling-release/config"
        if config is None:
            self.request("DELETE", path)
        else:
            self.request("PATCH", path, config)

    def rolling_release(self, project_id: str) -> dict[str, Any] | None:
        rr = self.request("GET", f"/v1/projects/{project_id}/rolling-release").get("rollingRelease")
        return rr if isinstance(rr, dict) else None

    def rolling_start(self, project_id: str, canary: str) -> dict[str, Any]:
        return self.request(
            "POST",
            f"/v1/projects/{project_id}/rolling-release/start",
            {"canaryDeploymentId": canary},
        )

    def rolling_approve(self, project_id: str, canary: str, next_index: int) -> None:
        self.request(
            "POST",
            f"/v1/projects/{project_id}/rolling-release/approve-stage",
            {"nextStageIndex": next_index, "canaryDeploymentId": canary},
        )

    def rolling_complete(self, project_id: str, canary: str) -> None:
        self.request(
            "POST",
            f"/v1/projects/{project_id}/rolling-release/complete",
            {"canaryDeploymentId": canary},
        )

    def rollback_candidates(self, project_id: str, limit: int = 20) -> list[Deployment]:
        """READY production deployments that served production before (Vercel's
        ``rollbackCandidate`` filter and ``isRollbackCandidate`` field), newest first."""
        doc = self.request(
            "GET",
            "/v6/deployments",
            projectId=project_id,
            target="production",
            state="READY",
            rollbackCandidate="true",
            limit=str(limit),
        )
        found = [
            Deployment.from_api(d) for d in doc.get("deployments") or [] if isinstance(d, dict)
        ]
        return sorted(found, key=lambda d: -d.created)

    def url_of(self, deployment: Deployment) -> str:
        """A deployment's own URL, reached with the API's scheme."""
        return f"{self.scheme}://{deployment.url}"


def _json(resp: httpx.Response) -> dict[str, Any]:
    if not resp.content:
        return {}
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(resp: httpx.Response) -> float:
    """Seconds the API asks to wait: ``Retry-After`` (seconds), or ``X-RateLimit-Reset``
    (epoch seconds); 1 s when it says neither."""
    after = resp.headers.get("retry-after", "")
    if after.strip().isdigit():
        return float(after.strip())
    reset = resp.headers.get("x-ratelimit-reset", "")
    if reset.strip().isdigit():
        return max(0.0, float(reset.strip()) - time.time())
    return 1.0
