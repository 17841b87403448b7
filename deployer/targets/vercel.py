"""The Vercel target: production is a project's production deployment; a release promotes a
deployment that CI built (staged) after gating it on its own URL, and undoes by rolling
production back to the deployment that served before.

Promote and rollback are asynchronous on Vercel: each is followed (the project's
``lastAliasRequest`` and ``targets.production``) until production really serves the
deployment, within ``vercel.promote_timeout``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import deployer.targets.vercel_rolling as vercel_rolling
from deployer.adapters.vercel import FAILED, WAITING, ApiError, Deployment, VercelApi
from deployer.engine.hosts import HostPool
from deployer.errors import AbortedError, DeployerError, InputError, printable
from deployer.gates import Expectation
from deployer.plan import Commit, Context, DrillVerdict, Gate, Observed, Step, TargetAction
from deployer.plan import migrate_step as _migrate_step
from deployer.playbook.variables import check_deployment, render_value
from deployer.playbook.vercel_model import VercelPlaybook
from deployer.targets.vercel_actions import Promote, RollBack, WaitReady
from deployer.values import Secret, Shell, Token

POLL = 0.5  # seconds between two looks at an asynchronous job


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
        self.api = VercelApi(v.api_url, self._plain(v.token), team=v.team, budget=v.api_budget)
        self.project_id = v.project
        self.facts: dict[str, Any] = {"kind": "vercel", "project": v.project}

    def _plain(self, template: str) -> str:
        value = render_value(template, self.ctx.values(self.pb.LOCAL), self.ctx.env)
        return value.value if isinstance(value, Secret) else value

    def _headers(self) -> tuple[tuple[str, Token], ...]:
        bypass = self.pb.vercel.protection_bypass
        if not bypass:
            return ()
        value = render_value(bypass, self.ctx.values(self.pb.LOCAL), self.ctx.env)
        return (("x-vercel-protection-bypass", value),)

    def _plain_headers(self) -> dict[str, str]:
        return {k: v.value if isinstance(v, Secret) else v for k, v in self._headers()}

    # ----- what serves -----
    def observe(self, *, tolerant: bool = False) -> Observed:
        project = self.api.project(self.pb.vercel.project)
        self.project_id = str(project.get("id") or self.pb.vercel.project)
        prod_doc = (project.get("targets") or {}).get("production") or None
        prod = Deployment.from_api(prod_doc) if isinstance(prod_doc, dict) else None
        job = (
            project.get("lastAliasRequest")
            if isinstance(project.get("lastAliasRequest"), dict)
            else None
        )
        pinned = bool(job and job.get("type") == "rollback" and job.get("jobStatus") == "succeeded")
        extra: dict[str, Any] = {
            "project_id": self.project_id,
            "production": _brief(prod, self.api) if prod else None,
            "alias_job": job,
            "pinned": pinned,
            "warnings": [],
        }
        if pinned:
            extra["warnings"].append(
                "the project is pinned by an earlier rollback: Vercel does not give new "
                "production deployments the domains until one is promoted (a release does)"
            )
        return Observed(prod.id if prod else None, prod.version if prod else None, "", extra=extra)

    def serving(self, live: str, version: str) -> tuple[str, Expectation, dict[str, Any]]:
        post = self.pb.gates.post_switch
        url = self.pb.vercel.production_url.rstrip("/") + post.path
        return url, self.ctx.expectation(post, self.pb.LOCAL, "", version), self._plain_headers()

    # ----- plans -----
    def release_plan(
        self, observed: Observed, version: str, candidate: str | None
    ) -> tuple[str, Observed, list[Step]]:
        if candidate is None:
            candidate = self._deploy(version)
        d = self.api.deployment(candidate)
        version = version or d.version
        extra = {**observed.extra, "candidate": _brief(d, self.api)}
        seen = replace(observed, idle=d.id, extra=extra)
        steps = [Step("wait-ready", None, WaitReady(d.id))]
        if self.pb.migrate is not None:
            steps.append(_migrate_step(self.ctx, "", version))
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
        self, observed: Observed, do: TargetAction, to: Deployment, version: str
    ) -> list[Step]:
        pre, post = self.pb.gates.pre_switch, self.pb.gates.post_switch
        local = self.pb.LOCAL
        prod = observed.extra.get("production")
        undo: TargetAction | None = None
        if prod:
            back = RollBack if isinstance(do, Promote) else Promote
            undo = back(prod["id"], prod["url"], observed.live_version or prod["id"])
        name = "promote" if isinstance(do, Promote) else "rollback"
        return [
            Step(
                "pre-switch-gate",
                None,
                Gate(
                    "pre_switch",
                    (self.api.url_of(to) + pre.path,),
                    self.ctx.expectation(pre, local, "", version),
                    headers=self._headers(),
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
                    headers=self._headers(),
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
            raise AbortedError(f"no earlier production deployment than {current} to roll back to")
        seen = replace(
            observed,
            idle=previous.id,
            extra={**observed.extra, "candidate": _brief(previous, self.api)},
        )
        do = RollBack(previous.id, previous.url, previous.version)
        return previous.version, seen, self._switch_steps(observed, do, previous, previous.version)

    def _previous(self, observed: Observed) -> Deployment | None:
        job = observed.extra.get("alias_job") or {}
        current = observed.live_color
        if job.get("toDeploymentId") == current and job.get("fromDeploymentId"):
            return self.api.deployment(str(job["fromDeploymentId"]))
        for d in self.api.production_deployments(self.project_id):
            if d.id != current:
                return d
        return None

    def drill_plan(
        self, observed: Observed, version: str | None, broken: Context | None
    ) -> tuple[str, Observed, list[Step]]:
        """Production to the previous production deployment (Vercel's rollback), gated like
        a release, then back to the current one (a promote) as a failing gate would: proves
        both moves work on this project and measures the way back."""
        if broken is not None:
            raise InputError(
                "--broken is not available for the vercel target: a drill there moves "
                "production to the previous deployment and back"
            )
        if version is not None:
            raise InputError("--version: a vercel drill uses the previous production deployment")
        if observed.live_color is None:
            raise AbortedError("the project has no production deployment: nothing to drill")
        previous = self._previous(observed)
        if previous is None:
            raise AbortedError(
                f"no production deployment before {observed.live_color} to drill with"
            )
        extra = {**observed.extra, "candidate": _brief(previous, self.api)}
        seen = replace(observed, idle=previous.id, extra=extra)
        do = RollBack(previous.id, previous.url, previous.version)
        steps = self._switch_steps(observed, do, previous, previous.version)
        steps = [s for s in steps if not isinstance(s.do, Commit)]
        steps.append(Step("drill-verdict", None, DrillVerdict(False)))
        return previous.version, seen, steps

    def begin(self, op: dict[str, Any]) -> None:
        pass

    def op_record(self, observed: Observed) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "previous": observed.extra.get("production"),
            "candidate": observed.extra.get("candidate"),
        }

    def recovery_plan(self, op: dict[str, Any]) -> tuple[Observed, list[Step]]:
        prev, cand = op.get("previous"), op.get("candidate")
        self.project_id = str(op.get("project_id") or self.project_id)
        observed = Observed(
            op.get("from_color"), op.get("from_version"), "", extra={"production": prev}
        )
        if not cand:
            return observed, []
        undo = RollBack(prev["id"], prev["url"], prev.get("version", "")) if prev else None
        version = str(op.get("version") or cand["id"])
        steps = [
            Step("promote", None, Promote(cand["id"], cand["url"], version), undo=undo),
            Step("commit", None, Commit(False)),
        ]
        if op.get("kind") == "rollback" and prev:
            steps[0] = Step(
                "rollback",
                None,
                RollBack(cand["id"], cand["url"], version),
                undo=Promote(prev["id"], prev["url"], prev.get("version", "")),
            )
        return observed, steps

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
        started = time.monotonic()
        try:
            if kind == "promote":
                self.api.promote(self.project_id, deployment)
            else:
                self.api.rollback(self.project_id, deployment)
        except ApiError as exc:
            if exc.status == 409:
                exc.not_applied = True  # refused: production did not move
            raise
        limit = self.pb.vercel.promote_timeout
        while True:
            project = self.api.project(self.project_id)
            job = project.get("lastAliasRequest") or {}
            prod = ((project.get("targets") or {}).get("production") or {}).get("id")
            if job.get("toDeploymentId") == deployment and job.get("jobStatus") == "failed":
                raise DeployerError(f"Vercel's {kind} to {deployment} failed (jobStatus failed)")
            if prod == deployment and job.get("jobStatus") in (None, "succeeded"):
                self.facts.setdefault("moves", []).append(
                    {
                        "kind": kind,
                        "to": deployment,
                        "seconds": round(time.monotonic() - started, 3),
                    }
                )
                return f"production serves {deployment} after {time.monotonic() - started:.2f}s"
            if time.monotonic() - started > limit:
                raise DeployerError(
                    f"Vercel accepted the {kind} to {deployment}, but production does not serve "
                    f"it after {limit:g}s (vercel.promote_timeout; job "
                    f"{job.get('jobStatus') or 'unknown'})"
                )
            time.sleep(POLL)

    def leave_out(self, hosts: dict[str, str]) -> None:
        pass  # no hosts: a deployment is one unit

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
        if observed.extra.get("pinned"):
            lines.append(
                "pinned: an earlier rollback pinned production; new production deployments "
                "do not take the domains until one is promoted"
            )
        return {
            "hosts": [],
            "lines": lines,
            "vercel": {
                "project": self.pb.vercel.project,
                "production": observed.extra.get("production"),
                "previous": previous,
                "pinned": observed.extra.get("pinned", False),
                "alias_job": observed.extra.get("alias_job"),
            },
        }

    def changes(self, before: Observed, after: Observed) -> list[str]:
        if after.live_color != before.live_color:
            return [f"production serves {after.live_color}, not {before.live_color}"]
        return []

    def result_facts(self, observed: Observed | None) -> dict[str, Any]:
        facts = dict(self.facts, api_calls=self.api.calls)
        if observed is not None:
            facts["from"] = observed.extra.get("production")
            facts["to"] = observed.extra.get("candidate")
        return facts

    def close(self) -> None:
        self.api.close()


def _brief(d: Deployment, api: VercelApi) -> dict[str, Any]:
    return {"id": d.id, "url": api.url_of(d), "version": d.version, "state": d.state}
