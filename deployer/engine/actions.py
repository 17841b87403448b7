"""Carry out one plan action on the hosts, the router or over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from deployer.adapters import http
from deployer.commands import files
from deployer.engine.hosts import HostPool
from deployer.engine.signals import SignalGuard
from deployer.errors import DeployerError, GateFailed
from deployer.errors import DrillVerdict as DrillVerdictError
from deployer.gates import GateResult
from deployer.plan import (
    Action,
    CheckDatabase,
    Commit,
    DrillVerdict,
    Gate,
    Migrate,
    Run,
)
from deployer.playbook.models import Playbook
from deployer.ports import Target
from deployer.values import Secret, Shell


class Actions:
    def __init__(
        self, pb: Playbook, hosts: HostPool, guard: SignalGuard, target: Target | None = None
    ):
        self.pb, self.hosts, self.guard, self.target = pb, hosts, guard, target
        fleet = getattr(pb, "fleet", None)  # a platform target's playbook has none
        self._step_timeout: float = fleet.step_timeout if fleet is not None else 600.0
        self.gates: list[GateResult] = []
        self.migrations: dict[str, Any] | None = None
        self.warnings: list[str] = []
        #: set by the operation: records the commit on the router host (calling the dead-man
        #: timer off first when one is armed); returns what the timer printed if it fired
        self.on_commit: Callable[[bool], str | None] = lambda dead_man: None

    def __call__(self, action: Action) -> str:
        match action:
            case Run(host=host, commands=commands, best_effort=best_effort):
                runner = self.hosts.runner(host)
                try:
                    if commands:  # one session for all: sessions are what costs
                        runner.run(in_order(commands), timeout=self._step_timeout)
                except DeployerError as exc:
                    if not best_effort:
                        raise
                    what = f"{host}: not done ({exc})"
                    self.warnings.append(what)
                    return what
                return ""
            case Gate():
                if threading.current_thread() is not threading.main_thread():
                    # a host's lane: the signal handler cannot reach this thread; the gate
                    # looks for a pending signal between its probes instead
                    return self._gate(action, cancel=self.guard.check)
                with self.guard.interruptible():  # a gate changes nothing: stop at once
                    return self._gate(action)
            case Migrate():
                return self._migrate(action)
            case CheckDatabase():
                return self._check_database(action)
            case DrillVerdict(broken=broken):
                raise DrillVerdictError(broken_passed=broken)
            case Commit(dead_man=dead_man):
                fired = self.on_commit(dead_man)
                if fired is not None:
                    from deployer.commands.nginx import fired_text

                    raise DeployerError(f"{fired_text(fired)} before the release could stand")
                timer = "; dead-man timer called off" if dead_man else ""
                return f"the release stands (recorded in the operation record){timer}"
            case _:
                done = self.target.execute(action) if self.target is not None else None
                if done is not None:
                    return done
        raise DeployerError(f"unknown action {action!r}")

    def _migrate(self, m: Migrate) -> str:
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

        from deployer.commands.alembic import is_lock_timeout, parse_current
        from deployer.errors import CommandFailed
        from deployer.lint.gate import lint_pending

        runner = self.hosts.runner(m.host)
        current = parse_current(runner.run(m.current, timeout=120).stdout)
        gate = lint_pending(m.scripts, current, list(m.acknowledge))
        record: dict[str, Any] = {
            "from": current,
            "lint": gate.to_dict(),
            "applied": [],
            "attempts": 0,
        }
        self.migrations = record
        if gate.blocking:
            raise GateFailed(f"migration lint gate: {gate.message()}")
        if not gate.pending:
            record["to"] = current
            self._remember_revision(m, current)
            return f"database at {current or 'base'}: nothing to apply"
        if m.prove is not None:
            self._prove(m, gate, current, record)

        def upgrade() -> None:
            record["attempts"] += 1
            runner.run(m.upgrade, timeout=3600)

        retrying = Retrying(
            retry=retry_if_exception(
                lambda e: isinstance(e, CommandFailed) and is_lock_timeout(e.stderr)
            ),
            stop=stop_after_attempt(m.retries),
            wait=wait_exponential(multiplier=0.5, max=15),
            reraise=True,
        )
        try:
            retrying(upgrade)
        finally:
            after = parse_current(runner.run(m.current, timeout=120).stdout)
            record["to"] = after
            if after in gate.pending:
                record["applied"] = gate.pending[: gate.pending.index(after) + 1]
        self._remember_revision(m, after)
        acks = f", {len(gate.acknowledged)} acknowledged" if gate.acknowledged else ""
        return (
            f"{current or 'base'} -> {after}: {len(record['applied'])} revision(s) in "
            f"{record['attempts']} attempt(s){acks}"
        )

    def _prove(self, m: Migrate, gate: Any, current: str | None, record: dict[str, Any]) -> None:
        """`migrate.prove`: the pending revisions in a scratch database first; a rewrite,
        a long ACCESS EXCLUSIVE or a failing revision stops the release before it migrates."""
        from deployer.lint.rules import load_rules
        from deployer.prove.run import ProveOptions, prove
        from deployer.prove.verdict import judge

        assert m.prove is not None
        url = m.prove.url.value if isinstance(m.prove.url, Secret) else str(m.prove.url)
        options = ProveOptions(
            rows=m.prove.rows,
            lock_bound_s=m.prove.lock_bound,
            schema_from=m.prove.schema_from,
            start_after=current,
            i_know=m.prove.i_know,
        )
        try:
            run = prove(gate.migrations, url, options)
        except DeployerError as exc:
            raise GateFailed(f"migration prove: {exc}") from exc
        verdict = judge(gate.result, run, load_rules(), m.prove.lock_bound)
        doc = verdict.to_dict()
        record["prove"] = {k: doc[k] for k in ("passed", "rows", "lock_bound_ms", "hazards")}
        record["prove"]["revisions"] = [
            {
                "revision": r["revision"],
                "duration_ms": r["duration_ms"],
                "access_exclusive_ms": r["access_exclusive_ms"],
                "error": r["error"],
            }
            for r in doc["revisions"]
        ]
        if verdict.failed:
            raise GateFailed("migration prove: " + "; ".join(verdict.hazards[:5]))

    def _remember_revision(self, m: Migrate, revision: str | None) -> None:
        if m.state_dir and m.version:
            cmd = files.write_db_revision(m.state_dir, m.version, revision)
            self.hosts.runner(m.host).run(cmd, timeout=60)

    def _check_database(self, c: CheckDatabase) -> str:
        from deployer.commands.alembic import parse_current
        from deployer.lint.gate import revisions_ahead

        runner = self.hosts.runner(c.host)
        try:
            current = parse_current(runner.run(c.current, timeout=120).stdout)
            recorded = runner.run(files.read_db_revision(c.state_dir, c.version)).stdout.strip()
            if recorded and recorded != "base":  # read back from the host: input
                from deployer import trust

                trust.revision(recorded, f"{c.host}: {c.state_dir}/db-revision.{c.version}")
        except DeployerError as exc:
            what = f"could not read the database's revision: {exc}"
            self.warnings.append(f"check-database: {what}")
            self.migrations = {"rollback_to": c.version, "unknown": what}
            return what
        if not recorded:
            what = (
                f"database at {current or 'base'}; no revision was recorded for {c.version} "
                "(released before deployer recorded it): cannot say what it is ahead by"
            )
            self.migrations = {"rollback_to": c.version, "database": current, "unknown": what}
            return what
        older = None if recorded == "base" else recorded
        ahead = revisions_ahead(c.scripts, current, older)
        self.migrations = {"rollback_to": c.version, **ahead.to_dict()}
        if ahead.unknown:
            self.warnings.append(f"check-database: {ahead.unknown}")
            return ahead.unknown
        if not ahead.revisions:
            return f"database at {current or 'base'}, as when {c.version} went live"
        text = (
            f"database at {current}, ahead of {c.version} ({recorded}) by "
            f"{len(ahead.revisions)} revision(s): {', '.join(ahead.revisions)}; not migrated back"
        )
        for k in ahead.contract:
            self.warnings.append(
                f"revision {k['revision']} contracts the schema ({k['rule']}: {k['message']}) "
                f"since {c.version} went live: {c.version} may fail against it"
            )
        return text

    def _alive(self, host: str, status: Shell) -> Callable[[], bool]:
        def check() -> bool:
            try:
                return self.hosts.runner(host).run(status, check=False, timeout=20).ok
            except DeployerError:
                return True  # cannot tell: let the probes decide

        return check

    def _diagnose(self, gate: Gate) -> str:
        """After a gate through the router failed: which hosts answer badly on their own."""
        if not gate.diagnose:
            return ""
        timeout = min(self.pb.gates.post_switch.timeout, 3.0)
        seen = http.probe_each(dict(gate.diagnose), gate.expect, timeout)
        bad = [f"{h}: {why}" for h, why in seen.items() if why != "ok"]
        return f" (hosts failing on their own: {'; '.join(bad)})" if bad else ""

    def _gate(self, gate: Gate, cancel: Callable[[], None] | None = None) -> str:
        results = []
        headers = {k: v.value if isinstance(v, Secret) else v for k, v in gate.headers}
        for i, url in enumerate(gate.urls):
            if gate.kind == "pre_switch":
                alive = self._alive(*gate.alive[i]) if i < len(gate.alive) else None
                res = http.pre_switch(
                    url,
                    self.pb.gates.pre_switch,
                    gate.expect,
                    alive=alive,
                    headers=headers,
                    cancel=cancel,
                )
                self.gates.append(res)
            else:  # appended before it runs: an interrupted gate keeps its samples
                res = http.post_switch(
                    url, self.pb.gates.post_switch, gate.expect, sink=self.gates, headers=headers
                )
            results.append(res)
            if not res.passed:
                about = f" {gate.about}" if gate.about else ""
                raise GateFailed(
                    f"{gate.kind.replace('_', '-')} gate failed{about} on {url}: {res.reason}"
                    + self._diagnose(gate)
                )
        if gate.kind == "post_switch" and len(gate.diagnose) > 1:
            self._each_host(gate)
        return "; ".join(r.summary() for r in results)

    def _each_host(self, gate: Gate) -> None:
        """A fleet's post-switch gate passed through the router; each host is then probed
        once directly. The router's samples need not reach every host (round robin in step
        with other clients sent all 60 of a gate's probes to one host of three in a test),
        and nginx's passive health routes around a host that refuses connections: a host
        broken by the release must fail it all the same."""
        out = set(getattr(self.target, "left_out", {}) or {})
        targets = {h: u for h, u in gate.diagnose if h not in out}
        timeout = min(self.pb.gates.post_switch.timeout, 3.0)
        seen = http.probe_each(targets, gate.expect, timeout)
        bad = [f"{h}: {why}" for h, why in seen.items() if why != "ok"]
        if bad:
            about = f" {gate.about}" if gate.about else ""
            raise GateFailed(
                f"post-switch gate{about}: the router's samples passed, but probed directly "
                f"{len(bad)} host(s) fail: {'; '.join(bad)}"
            )


def in_order(commands: tuple[Shell, ...]) -> Shell:
    """Commands run one after another in one shell, stopping at the first that fails; each
    in a group of its own ending on a new line, so one that ends in ``&`` or a comment
    keeps its meaning."""
    if len(commands) == 1:
        return commands[0]
    text = " && ".join(f"{{ {c.text}\n}}" for c in commands)
    return Shell.around(text, " && ".join(c.shown for c in commands), *commands)
