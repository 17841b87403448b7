"""Carry out one plan action on the hosts, the router or over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from deployer.adapters import http
from deployer.engine.hosts import HostPool
from deployer.engine.migrations import MigrationSteps
from deployer.engine.signals import SignalGuard
from deployer.errors import DeployerError, GateFailed, HostsFailed
from deployer.errors import DrillVerdict as DrillVerdictError
from deployer.gates import GateResult
from deployer.plan import (
    Action,
    CheckDatabase,
    Commit,
    DrillVerdict,
    ForgetDeferred,
    Gate,
    Migrate,
    Run,
    Step,
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
        self.warnings: list[str] = []
        #: the migrate step, the rollback's database check, deferred contracts
        self.mig = MigrationSteps(hosts, self.warnings)
        #: set by the operation: records the commit on the router host (calling the dead-man
        #: timer off first when one is armed); returns what the timer printed if it fired
        self.on_commit: Callable[[bool], str | None] = lambda dead_man: None

    @property
    def migrations(self) -> dict[str, Any] | None:
        return self.mig.migrations

    def preflight(self, steps: list[Step]) -> None:
        """Read-only checks of the planned steps that refuse (exit 2) before anything runs."""
        self.mig.preflight(steps)

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
                return self.mig.run(action)
            case CheckDatabase():
                return self.mig.check_database(action)
            case ForgetDeferred():
                return self.mig.forget()
            case DrillVerdict(broken=broken):
                raise DrillVerdictError(broken_passed=broken)
            case Commit(dead_man=dead_man):
                fired = self.on_commit(dead_man)
                if fired is not None:
                    from deployer.commands.dead_man import fired_text

                    raise DeployerError(f"{fired_text(fired)} before the release could stand")
                timer = "; dead-man watchdog called off" if dead_man else ""
                return f"the release stands (recorded in the operation record){timer}"
            case _:
                done = self.target.execute(action) if self.target is not None else None
                if done is not None:
                    return done
        raise DeployerError(f"unknown action {action!r}")

    def _alive(self, host: str, status: Shell) -> Callable[[], bool | str]:
        """For a pre-switch gate: is the new process running (True/False)? A host whose
        connection is lost (dead-peer detection: ~15 s without an answer) is a reason to
        end the gate at once; anything else that prevents an answer lets the probes decide."""

        def check() -> bool | str:
            runner = self.hosts.runner(host)
            try:
                return runner.run(status, check=False, timeout=20).ok
            except DeployerError as exc:
                lost = getattr(runner, "lost", None)
                return str(exc) if lost else True

        return check

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
                failed = f"{gate.kind.replace('_', '-')} gate failed{about} on {url}: {res.reason}"
                raise GateFailed(failed + self._each_host(gate, "", failed))
        passed = "; ".join(r.summary() for r in results)
        if gate.kind == "post_switch" and len(self._probed(gate)) > 1:
            self._each_host(gate, passed)
        return passed

    def _probed(self, gate: Gate) -> dict[str, str]:
        """The hosts a fleet's post-switch gate probes directly: those not left out."""
        out = set(getattr(self.target, "left_out", {}) or {})
        return {h: u for h, u in gate.diagnose if h not in out}

    def _each_host(self, gate: Gate, passed: str, failed: str = "") -> str:
        """Each host of a fleet probed once directly, after its post-switch gate through the
        router passed (``passed``: what it saw) or failed (``failed``: why). The router's
        samples need not reach every host (round robin in step with other clients sent all
        60 of a gate's probes to one host of three in a test), and nginx's passive health
        routes around a host that refuses connections: a host broken by the release must
        fail all the same. Some hosts failing while the others pass raises HostsFailed (the
        saga may take them out within max_failures); otherwise, after a failure, what the
        hosts said is returned for the error message."""
        targets = self._probed(gate)
        if not targets:
            return ""
        timeout = min(self.pb.gates.post_switch.timeout, 3.0)
        seen = http.probe_each(targets, gate.expect, timeout)
        failing = {h: why for h, why in seen.items() if why != "ok"}
        if not failing:
            return ""
        named = "; ".join(f"{h}: {why}" for h, why in failing.items())
        about = f" {gate.about}" if gate.about else ""
        message = (
            f"{failed} (hosts failing on their own: {named})"
            if failed
            else f"post-switch gate{about}: the router's samples passed, but probed "
            f"directly {len(failing)} host(s) fail: {named}"
        )
        if len(failing) < len(seen):
            raise HostsFailed(message, failing, len(seen) - len(failing), passed)
        if not failed:
            raise GateFailed(message)
        return f" (hosts failing on their own: {named})"


def in_order(commands: tuple[Shell, ...]) -> Shell:
    """Commands run one after another in one shell, stopping at the first that fails; each
    in a group of its own ending on a new line, so one that ends in ``&`` or a comment
    keeps its meaning."""
    if len(commands) == 1:
        return commands[0]
    text = " && ".join(f"{{ {c.text}\n}}" for c in commands)
    return Shell.around(text, " && ".join(c.shown for c in commands), *commands)
