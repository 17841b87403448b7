"""The Vercel target: production is a project's production deployment; a release promotes a
deployment that CI built (staged with ``--skip-domain``, not yet serving) after gating it on
its own URL, and undoes by rolling production back to the deployment that served before.

What serves is always read from Vercel, never assumed: promote and rollback are asynchronous
(followed through ``lastAliasRequest`` and ``targets.production`` until production serves the
deployment, within ``vercel.promote_timeout``), and after any ambiguous answer (a 409, an
error, an answer lost with its connection) the project is read again and that decides.
Every move is idempotent: a move whose goal already holds is done, so an undo of a promote
that never happened never fails, and ``recover`` can always finish. Semantics follow
Vercel's docs (docs/instant-rollback, docs/deployments/promoting-a-deployment,
docs/rolling-releases) and its CLI (packages/cli/src/commands/{promote,rollback}/status.ts).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import deployer.targets.vercel_rolling as vercel_rolling
from deployer.adapters.vercel import FAILED, WAITING, ApiError, Deployment, VercelApi
from deployer.engine.hosts import HostPool
from deployer.errors import AbortedError, DeployerError, HostError, InputError, printable
from deployer.gates import Expectation
from deployer.plan import Commit, Context, DrillVerdict, Gate, Observed, Step, TargetAction
from deployer.plan import migrate_step as _migrate_step
from deployer.playbook.variables import check_deployment, render_value
from deployer.playbook.vercel_model import VercelPlaybook
from deployer.targets.vercel_actions import Promote, RollBack, WaitReady
from deployer.values import Secret, Shell, Token

POLL = 0.5  # seconds between two looks at an asynchronous job
PENDING = ("pending", "in-progress")
UNPIN = "a promote un-pins it (the next `deployer release`, or `vercel promote`)"


class VercelTarget:
    api: VercelApi
    pb: VercelPlaybook
    project_id: str

    def __init__(self, ctx: Context, hosts: HostPool):
        self.ctx, self.hosts = ctx, hosts
        pb = ctx.pb
        assert isinstance(pb, VercelPlaybook)
        self.pb = pb
        v = pb.vercel
        token = self._plain(v.token)
        if not token.strip():
            raise InputError(
                "vercel.token is empty (the environment variable it names is set but empty)"
            )
        self.api = VercelApi(v.api_url, token, team=v.team, budget=v.api_budget)
        self.project_id = v.project
        self.account: str | None = None
        self.facts: dict[str, Any] = {"kind": "vercel", "project": v.project}
        self.op: dict[str, Any] = {}

    def begin(self, op: dict[str, Any]) -> None:
        self.op = dict(op)

    def _plain(self, template: str) -> str:
        value = render_value(template, self.ctx.values(self.pb.LOCAL), self.ctx.env)
        return value.value if isinstance(value, Secret) else value

    def _headers(self) -> tuple[tuple[str, Token], ...]:
        """The protection bypass, for a deployment's own URL (``*.vercel.app``) only: a custom
        production domain is public and must never receive the secret."""
        bypass = self.pb.vercel.protection_bypass
        if not bypass:
            return ()
        value = render_value(bypass, self.ctx.values(self.pb.LOCAL), self.ctx.env)
        return (("x-vercel-protection-bypass", value),)

    def _plain_headers(self) -> dict[str, str]:
        return {k: v.value if isinstance(v, Secret) else v for k, v in self._headers()}

    @staticmethod
    def _vercel_host(url: str) -> bool:
        return (urlsplit(url).hostname or "").endswith(".vercel.app")

    # ----- what serves -----
    def _read(self) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
        """(the project, the deployment production serves, the last alias job)."""
        project = self.api.project(self.project_id)
        self.project_id = str(project.get("id") or self.project_id)
        account = project.get("accountId")
        self.account = str(account) if account else self.account
        prod = (project.get("targets") or {}).get("production")
        prod_id = str(prod.get("id")) if isinstance(prod, dict) and prod.get("id") else None
        job = project.get("lastAliasRequest")
        return project, prod_id, job if isinstance(job, dict) else {}

    def observe(self, *, tolerant: bool = False) -> Observed:
        project, _, job = self._read()
        prod_doc = (project.get("targets") or {}).get("production") or None
        prod = Deployment.from_api(prod_doc) if isinstance(prod_doc, dict) else None
        # pinned: a rollback took the domains off auto-assignment until a promote
        # (docs/instant-rollback); Vercel records it as lastRollbackTarget (rollbackInfo)
        pinned = bool(project.get("lastRollbackTarget"))
        rolling = self.api.rolling_config(self.project_id) or {}
        auto = project.get("autoAssignCustomDomains")
        extra: dict[str, Any] = {
            "project_id": self.project_id,
            "production": _brief(prod, self.api) if prod else None,
            "alias_job": job or None,
            "pinned": pinned,
            "auto_assign": auto if isinstance(auto, bool) else None,
            "rolling_releases": bool(rolling.get("enabled")),
            "warnings": [],
        }
        if pinned:
            extra["warnings"].append(
                "production is pinned by an earlier rollback: Vercel assigns the production "
                f"domains to no new deployment until one is promoted; {UNPIN}"
            )
        return Observed(prod.id if prod else None, prod.version if prod else None, "", extra=extra)

    def serving(self, live: str, version: str) -> tuple[str, Expectation, dict[str, Any]]:
        post = self.pb.gates.post_switch
        url = self.pb.vercel.production_url.rstrip("/") + post.path
        return url, self.ctx.expectation(post, self.pb.LOCAL, "", version), {}

    # ----- plans -----
    def release_plan(
        self, observed: Observed, version: str, candidate: str | None
    ) -> tuple[str, Observed, list[Step]]:
        if candidate is None:
            candidate = self._deploy(version)
        d = self.api.deployment(candidate)
        self._releasable(d, observed)
        version = version or d.version
        extra = {**observed.extra, "candidate": _brief(d, self.api)}
        seen = replace(observed, idle=d.id, extra=extra)
        steps = [Step("wait-ready", None, WaitReady(d.id))]
        if self.pb.migrate is not None:
            post = self.pb.gates.post_switch
            live = (
                (
                    (
                        self.pb.vercel.production_url.rstrip("/") + post.path,
                        self.ctx.expectation(post, self.pb.LOCAL, "", observed.live_version or ""),
                    ),
                )
                if observed.live_color
                else ()
            )
            running = (observed.live_version,) if observed.live_version else ()
            # Vercel keeps every deployment: the window is time (migrate.contract_after)
            steps.append(_migrate_step(self.ctx, "", version, live, running, 1800.0))
        switch = self._switch_steps(observed, Promote(d.id, d.url, version), d, version)
        rolling = vercel_rolling.rolling_steps(self, observed, d, version)
        if rolling is not None:  # strategy: canary: a rolling release instead of the promote
            at = next(i for i, s in enumerate(switch) if s.name == "promote")
            switch[at : at + 1] = rolling
            previous = rolling[0].undo
            assert previous is not None
            switch.append(Step("rolling-config-back", None, previous, after_pivot=True))
        steps += switch
        return version, seen, steps

    def _releasable(self, d: Deployment, observed: Observed) -> None:
        """Refused up front (exit 2), before anything changes: a deployment of another
        project or team, a preview (Vercel cannot promote it: promote/request-promote.ts
        builds a new one instead), a candidate that would go live by itself when READY (the
        project auto-assigns production domains and it was not staged), and a plain promote
        on a project with Rolling Releases on (it would start a rolling release)."""
        extra = observed.extra
        if d.project_id and d.project_id != self.project_id:
            raise InputError(
                f"--deployment {d.id} belongs to project {printable(d.project_id)}, not "
                f"{self.project_id} ({self.pb.vercel.project})"
            )
        if d.owner and self.account and d.owner != self.account:
            raise InputError(
                f"--deployment {d.id} belongs to another team ({printable(d.owner)}), not "
                f"{self.account}"
            )
        if d.target != "production":
            raise InputError(
                f"--deployment {d.id} is a preview deployment: Vercel promotes production "
                "builds only; stage one with `vercel deploy --prebuilt --prod --skip-domain`"
            )
        staged = d.auto_assign is False
        project_assigns = extra.get("auto_assign") is not False
        if not staged and project_assigns and not extra.get("pinned"):
            if not self.pb.vercel.accept_auto_assign:
                raise InputError(
                    f"project {self.pb.vercel.project} auto-assigns its production domains to "
                    f"new production deployments and {d.id} was not staged (--skip-domain): "
                    "it goes live by itself when READY, before any gate. Turn off "
                    "auto-assignment of custom production domains (project settings), stage "
                    "builds with `vercel deploy --prod --skip-domain`, or accept it with "
                    "vercel.accept_auto_assign: true"
                )
            extra["warnings"].append(
                f"{d.id} may go live by itself when READY (auto-assignment is on and accepted): "
                "the pre-switch gate may run after users already reach it"
            )
        if extra.get("rolling_releases") and self.pb.strategy.kind != "canary":
            raise InputError(
                f"project {self.pb.vercel.project} has Rolling Releases on: a promote would "
                "start a rolling release (part of production on the ungated candidate while a "
                "blue-green release waits). Use strategy: canary (deployer runs and judges "
                "each stage) or turn Rolling Releases off"
            )

    def _deploy(self, version: str) -> str:
        """Run ``vercel.deploy_command`` for ``version``: the last line it prints that looks
        like a URL is the staged deployment to release."""
        command = self.pb.vercel.deploy_command
        if not command:
            raise InputError(
                "the vercel target releases a deployment CI built: give --deployment "
                "ID_OR_URL (e.g. from `vercel deploy --prebuilt --prod --skip-domain`), or "
                "set vercel.deploy_command"
            )
        shell = self.ctx.shell(command, self.pb.LOCAL, "", version)
        out = self.hosts.runner(self.pb.LOCAL.name).run(shell, timeout=1800).stdout
        for line in reversed(out.splitlines()):
            ref = line.strip()
            if ref.startswith(("https://", "http://")) and " " not in ref:
                return check_deployment(ref)
        raise DeployerError(
            "vercel.deploy_command printed no deployment URL on its last lines "
            f"(got {printable(out.strip()[-200:])!r})"
        )

    def _switch_steps(
        self,
        observed: Observed,
        do: TargetAction,
        to: Deployment,
        version: str,
        back: TargetAction | None = None,
    ) -> list[Step]:
        pre, post = self.pb.gates.pre_switch, self.pb.gates.post_switch
        local = self.pb.LOCAL
        prod = observed.extra.get("production")
        undo = back
        if undo is None and prod:
            kind = RollBack if isinstance(do, Promote) else Promote
            undo = kind(prod["id"], prod["url"], observed.live_version or prod["id"])
        name = "promote" if isinstance(do, Promote) else "rollback"
        own = self.api.url_of(to) + pre.path
        return [
            Step(
                "pre-switch-gate",
                None,
                Gate(
                    "pre_switch",
                    (own,),
                    self.ctx.expectation(pre, local, "", version),
                    headers=self._headers() if self._vercel_host(own) else (),
                ),
            ),
            Step(name, None, do, undo=undo),
            Step(
                "post-switch-gate",
                None,
                Gate(
                    "post_switch",
                    (self.pb.vercel.production_url.rstrip("/") + post.path,),
                    self.ctx.expectation(post, local, "", version),
                ),
            ),
            Step("commit", None, Commit(False)),
        ]

    def rollback_plan(self, observed: Observed) -> tuple[str, Observed, list[Step]]:
        current = observed.live_color
        if current is None:
            raise AbortedError("the project has no production deployment: nothing to roll back")
        previous = self._previous(observed)
        if previous is None:
            raise AbortedError(
                f"no deployment served production before {current} (none of the project's "
                "rollback candidates was older): nothing to roll back to"
            )
        seen = replace(
            observed,
            idle=previous.id,
            extra={**observed.extra, "candidate": _brief(previous, self.api)},
        )
        do = RollBack(previous.id, previous.url, previous.version)
        return previous.version, seen, self._switch_steps(observed, do, previous, previous.version)

    def _previous(self, observed: Observed) -> Deployment | None:
        """The deployment that served production before the current one, from Vercel's own
        record: the one the last promote moved production away from, when that promote
        made the current deployment live; otherwise (the current one came back through a
        rollback) the newest rollback candidate (``isRollbackCandidate``: it served
        production) created before the current deployment, never the one a rollback just
        moved away from (a release the gates rejected)."""
        job = observed.extra.get("alias_job") or {}
        current = observed.live_color
        if current is None:
            return None
        moved_from = job.get("fromDeploymentId")
        if (
            job.get("type") == "promote"
            and job.get("toDeploymentId") == current
            and job.get("jobStatus") == "succeeded"
            and moved_from
            and moved_from != current
        ):
            found = self.api.deployment(str(moved_from))
            if found.state == "READY":
                return found
        skip = {current}
        if job.get("type") == "rollback" and job.get("toDeploymentId") == current and moved_from:
            skip.add(str(moved_from))
        created = self.api.deployment(current).created
        for d in self.api.rollback_candidates(self.project_id):
            if d.id in skip or d.rollback_candidate is False:
                continue
            if created and d.created and d.created > created:
                continue  # newer than what serves: served once, then rolled away from
            return d
        return None

    def drill_plan(
        self, observed: Observed, version: str | None, broken: Context | None
    ) -> tuple[str, Observed, list[Step]]:
        """Production to the previous production deployment (Vercel's rollback), gated like
        a release, then back to the current one as a failing gate would: proves both moves
        work on this project and measures the way back. A pinned project comes back by a
        rollback (it stays pinned), any other by a promote: the drill leaves it as it was."""
        self.check_drill(broken=broken is not None, version=version)
        if observed.live_color is None:
            raise AbortedError("the project has no production deployment: nothing to drill")
        previous = self._previous(observed)
        if previous is None:
            raise AbortedError(
                f"no production deployment before {observed.live_color} to drill with"
            )
        extra = {**observed.extra, "candidate": _brief(previous, self.api)}
        seen = replace(observed, idle=previous.id, extra=extra)
        prod = observed.extra["production"]
        kind = RollBack if observed.extra.get("pinned") else Promote
        back = kind(prod["id"], prod["url"], observed.live_version or prod["id"])
        do = RollBack(previous.id, previous.url, previous.version)
        steps = self._switch_steps(observed, do, previous, previous.version, back)
        steps = [s for s in steps if not isinstance(s.do, Commit)]
        steps.append(Step("drill-verdict", None, DrillVerdict(False)))
        return previous.version, seen, steps

    def check_drill(self, *, broken: bool, version: str | None) -> None:
        if broken:
            raise InputError(
                "--broken is not available for the vercel target: a drill there moves "
                "production to the previous deployment and back (no build is made to fail)"
            )
        if version is not None:
            raise InputError("--version: a vercel drill uses the previous production deployment")

    def op_record(self, observed: Observed) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "previous": observed.extra.get("production"),
            "candidate": observed.extra.get("candidate"),
            "pinned_before": bool(observed.extra.get("pinned")),
        }

    def recovery_plan(self, op: dict[str, Any]) -> tuple[Observed, list[Step]]:
        prev, cand = op.get("previous"), op.get("candidate")
        self.project_id = str(op.get("project_id") or self.project_id)
        observed = Observed(
            op.get("from_color"), op.get("from_version"), "", extra={"production": prev}
        )
        if not isinstance(cand, dict):
            return observed, []
        version = str(op.get("version") or cand["id"])
        undo: TargetAction | None = None
        if isinstance(prev, dict):
            back = RollBack if op.get("kind") != "rollback" or op.get("pinned_before") else Promote
            undo = back(prev["id"], prev["url"], prev.get("version", ""))
        forward: TargetAction = (
            RollBack(cand["id"], cand["url"], version)
            if op.get("kind") in ("rollback", "drill")
            else Promote(cand["id"], cand["url"], version)
        )
        name = "promote" if isinstance(forward, Promote) else "rollback"
        return observed, [Step(name, None, forward, undo=undo), Step("commit", None, Commit(False))]

    # ----- actions -----
    def execute(self, action: Any) -> str | None:
        match action:
            case WaitReady(deployment=deployment):
                return self._wait_ready(deployment)
            case Promote(deployment=deployment):
                return self._move("promote", deployment)
            case RollBack(deployment=deployment):
                return self._move("rollback", deployment)
        return vercel_rolling.execute(self, action)

    def _wait_ready(self, deployment: str) -> str:
        started = time.monotonic()
        while True:
            d = self.api.deployment(deployment)
            if d.state == "READY":
                return f"{deployment} is READY after {time.monotonic() - started:.1f}s"
            if d.state in FAILED:
                err = AbortedError(f"deployment {deployment} is {d.state}: nothing to release")
                err.not_applied = True
                raise err
            if time.monotonic() - started > self.pb.vercel.ready_timeout:
                err = AbortedError(
                    f"deployment {deployment} still {d.state or 'not ready'} after "
                    f"{self.pb.vercel.ready_timeout:g}s (vercel.ready_timeout)"
                )
                err.not_applied = True
                raise err
            if d.state not in WAITING:
                raise AbortedError(f"deployment {deployment} is in an unknown state {d.state!r}")
            time.sleep(min(2.0, POLL * 4))

    def _move(self, kind: str, deployment: str) -> str:
        """Production to ``deployment`` by a promote or a rollback, followed until it
        serves. Idempotent: when production already serves it there is nothing to do (an
        undo of a move that never happened, a recover run twice). After an error the
        project is read again: production serving the deployment is a success whatever the
        answer said; production unmoved with no job for it is a refusal that changed
        nothing (``not_applied``: the saga does not count a switch)."""
        started = time.monotonic()
        limit = self.pb.vercel.promote_timeout
        try:
            project, before, job = self._read()
            rolling = self._rolling_canary(project)
        except DeployerError as exc:
            exc.not_applied = True  # nothing was asked of Vercel yet
            raise
        if before == deployment and rolling not in (None, deployment) and kind == "rollback":
            pass  # a rolling release sends part of production elsewhere: the rollback ends it
        elif before == deployment:
            waited = self._settle_other(job, deployment, limit)
            if waited is None:
                return f"production already serves {deployment}; nothing to move"
            before = waited
            if before == deployment:
                return f"production serves {deployment} (a pending job settled there)"
        try:
            if kind == "promote":
                self.api.promote(self.project_id, deployment)
            else:
                self.api.rollback(self.project_id, deployment)
        except (ApiError, HostError) as exc:
            self._after_refusal(kind, deployment, before, exc)
        while True:
            project, now, job = self._read()
            mine = job.get("toDeploymentId") == deployment
            status = job.get("jobStatus")
            ended = kind == "promote" or self._rolling_canary(project) in (None, deployment)
            if now == deployment and (not mine or status in (None, "succeeded")) and ended:
                seconds = round(time.monotonic() - started, 3)
                self.facts.setdefault("moves", []).append(
                    {"kind": kind, "to": deployment, "seconds": seconds}
                )
                return f"production serves {deployment} after {seconds:.2f}s"
            if mine and status in ("failed", "skipped"):
                err = DeployerError(
                    f"Vercel's {kind} to {deployment} ended {status}; production still serves "
                    f"{now or 'nothing'}"
                )
                err.not_applied = now == before
                raise err
            if kind == "promote" and self._rolling_started(project, deployment):
                raise DeployerError(
                    f"Vercel started a rolling release for {deployment} instead of promoting "
                    "it (the project has Rolling Releases on): part of production reaches it"
                )
            if time.monotonic() - started > limit:
                err = DeployerError(
                    f"Vercel accepted the {kind} to {deployment}, but production does not serve "
                    f"it after {limit:g}s (vercel.promote_timeout; its job is "
                    f"{status or 'unknown'}); production still serves {now or 'nothing'}"
                    + (
                        ": if Vercel completes it later, production will serve an ungated "
                        "deployment; check `deployer status`"
                        if mine and status in PENDING
                        else ""
                    )
                )
                err.not_applied = now == before
                raise err
            time.sleep(POLL)

    def _after_refusal(
        self, kind: str, deployment: str, before: str | None, exc: Exception
    ) -> None:
        """An error from a move: read again. Production serves the deployment (a 409 for a
        retry whose first try landed, a lost answer): go on as a success. A job for it is
        under way: follow it. Otherwise it changed nothing: raise, not applied."""
        try:
            _, now, job = self._read()
        except DeployerError:
            raise exc from None  # cannot tell: the saga treats it as possibly applied
        if now == deployment:
            return
        if job.get("toDeploymentId") == deployment and job.get("jobStatus") in PENDING:
            return
        err = DeployerError(f"{exc}; production still serves {now or 'nothing'}")
        err.not_applied = now == before
        raise err from None

    def _settle_other(self, job: dict[str, Any], goal: str, limit: float) -> str | None:
        """The goal already serves; if a job towards another deployment is still pending
        (a promote that timed out), wait (bounded) for it to settle, then say what serves.
        None: nothing pending, the goal holds."""
        if job.get("toDeploymentId") in (None, goal) or job.get("jobStatus") not in PENDING:
            return None
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            time.sleep(POLL)
            _, now, job = self._read()
            if job.get("jobStatus") not in PENDING:
                return now
        return None

    def _rolling_started(self, project: dict[str, Any], deployment: str) -> bool:
        return self._rolling_canary(project) == deployment

    def _rolling_canary(self, project: dict[str, Any]) -> str | None:
        """The canary of an active rolling release (part of production goes to it), if any;
        only asked when the project has Rolling Releases configured."""
        if not project.get("rollingRelease"):
            return None
        rr = self.api.rolling_release(self.project_id) or {}
        canary = (rr.get("canaryDeployment") or {}).get("id")
        return str(canary) if rr.get("state") == "ACTIVE" and canary else None

    def leave_out(self, hosts: dict[str, str]) -> None:
        pass  # no hosts: a deployment is one unit

    def take_out(self, hosts: dict[str, str]) -> str:
        raise DeployerError("a Vercel project has no hosts to take out")

    def dead_man_off(self) -> Shell | None:
        return None

    # ----- status -----
    def status(self, observed: Observed) -> dict[str, Any]:
        previous = None
        if observed.live_color:
            try:
                prev = self._previous(observed)
                previous = _brief(prev, self.api) if prev else None
            except DeployerError:
                previous = None
        self.facts["api_calls"] = self.api.calls
        lines = []
        for label, d in (("production", observed.extra.get("production")), ("previous", previous)):
            lines.append(
                f"{label}: {d['id']} {d['url']} ({d['version']})" if d else f"{label}: none"
            )
        pinned = bool(observed.extra.get("pinned"))
        if pinned:
            lines.append(
                "pinned: an earlier rollback pinned production; new production deployments "
                f"do not take the domains until one is promoted ({UNPIN})"
            )
        if observed.extra.get("rolling_releases"):
            lines.append("rolling releases: on for this project (strategy: canary runs them)")
        return {
            # a project has no colors: what serves and what came before are deployments
            "live_color": None,
            "idle_color": None,
            "idle_version": previous["version"] if previous else None,
            "hosts": [],
            "lines": lines,
            "vercel": {
                "project": self.pb.vercel.project,
                "production": observed.extra.get("production"),
                "previous": previous,
                "pinned": pinned,
                "unpinned_by": UNPIN if pinned else None,
                "auto_assign": observed.extra.get("auto_assign"),
                "rolling_releases": observed.extra.get("rolling_releases", False),
                "alias_job": observed.extra.get("alias_job"),
            },
        }

    def changes(self, before: Observed, after: Observed) -> list[str]:
        out = []
        if after.live_color != before.live_color:
            out.append(f"production serves {after.live_color}, not {before.live_color}")
        was, now = bool(before.extra.get("pinned")), bool(after.extra.get("pinned"))
        if was != now:
            out.append(
                f"production is {'pinned' if now else 'not pinned'} now, "
                f"{'pinned' if was else 'not pinned'} before"
            )
        return out

    def result_facts(self, observed: Observed | None) -> dict[str, Any]:
        facts = dict(self.facts, api_calls=self.api.calls)
        if observed is not None:
            facts["from"] = observed.extra.get("production")
            facts["to"] = observed.extra.get("candidate")
        try:  # what serves now, read again: the result never guesses
            project, now, _ = self._read()
            facts["serves_now"] = now
            facts["pinned_now"] = bool(project.get("lastRollbackTarget"))
            was = bool(observed is not None and observed.extra.get("pinned"))
            if facts["pinned_now"] and not was:
                facts["warnings"] = [
                    "production is pinned now (the rollback took the domains off "
                    f"auto-assignment); {UNPIN}"
                ]
        except DeployerError as exc:
            facts["serves_now"] = None
            facts["serves_now_error"] = str(exc)
        facts["api_calls"] = self.api.calls
        return facts

    def close(self) -> None:
        self.api.close()


def _brief(d: Deployment, api: VercelApi) -> dict[str, Any]:
    return {
        "id": d.id,
        "url": api.url_of(d),
        "version": d.version,
        "state": d.state,
        "commit": d.commit,  # what it was built from: the evidence's in-toto subject
    }
