"""Release, rollback, status and recover: lock, observe, plan, run the saga, report."""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from deployer.adapters import http
from deployer.adapters.hosts import upload
from deployer.adapters.journal import FileJournal
from deployer.commands import files, lock, nginx
from deployer.engine.hosts import HostPool
from deployer.engine.saga import Saga, SagaOutcome
from deployer.errors import (
    AbortedError,
    DeployerError,
    ExitCode,
    GateFailed,
    LockHeldError,
    RecoveryNeededError,
    RolledBackError,
)
from deployer.gates import GateResult
from deployer.plan import (
    COLORS,
    Action,
    Context,
    Gate,
    Migrate,
    Observed,
    Run,
    ScheduleStop,
    StopColor,
    Switch,
    Upload,
    release_plan,
    rollback_plan,
)
from deployer.ports import NullReporter, Reporter


@dataclass
class OperationResult:
    kind: str
    app: str
    environment: str
    id: str
    version: str | None = None
    from_version: str | None = None
    from_color: str | None = None
    to_color: str | None = None
    outcome: str = "pending"  # succeeded | aborted | rolled_back | failed | interrupted
    exit_code: int = 0
    message: str = ""
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    restore_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    migrations: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["duration_s"] = round((self.ended_at or time.time()) - self.started_at, 3)
        return d


class Engine:
    def __init__(
        self, ctx: Context, *, reporter: Reporter | None = None, accept_new_host_key: bool = False
    ):
        self.ctx = ctx
        self.pb = ctx.pb
        self.reporter = reporter or NullReporter()
        self.hosts = HostPool(ctx, accept_new_host_key=accept_new_host_key)
        journal_dir = ctx.loaded.local_path(self.pb.journal_dir)
        self.journal = FileJournal(journal_dir / f"{self.pb.app}-{self.pb.environment}.journal")
        self.gates: list[GateResult] = []
        self.migrations: dict[str, Any] | None = None

    # ----- observe -----
    def observe(self) -> Observed:
        text = self.hosts.router.read()
        live = nginx.parse_live(text)
        versions: dict[str, dict[str, str]] = {}
        running: dict[str, dict[str, bool]] = {}
        for host in self.pb.app_hosts:
            statuses = {c: self.ctx.shell(self.pb.service.status, host, c) for c in COLORS}
            cmd = files.observe_host(self.ctx.state_dir(host), statuses)
            lines = self.hosts.runner(host.name).run(cmd).stdout.splitlines()
            pairs = [line.split(" ", 1) for line in lines if " " in line]
            versions[host.name] = {k: v for k, v in pairs if k in COLORS}
            running[host.name] = {c: ["up", c] in pairs for c in COLORS}
        return Observed(
            live[0] if live else None, live[1] if live else None, text, versions, running
        )

    # ----- lock -----
    def _lock_path(self) -> str:
        return self.ctx.value(self.pb.lock.path, self.pb.router_host)

    def read_lock(self) -> lock.LockInfo | None:
        runner = self.hosts.runner(self.pb.router_host.name)
        return lock.LockInfo.from_json(runner.run(lock.read(self._lock_path())).stdout)

    def acquire_lock(self, op_id: str) -> None:
        runner = self.hosts.runner(self.pb.router_host.name)
        info = lock.LockInfo(
            op_id,
            getpass.getuser(),
            socket.gethostname(),
            os.getpid(),
            time.time(),
            self.pb.lock.ttl,
        )
        path = self._lock_path()
        for _ in range(2):
            if runner.run(lock.acquire(path, info), check=False).ok:
                return
            holder = self.read_lock()
            if holder is None:
                raise LockHeldError(f"lock {path} is held (no holder recorded)")
            if not holder.expired(time.time()):
                age = int(time.time() - holder.acquired_at)
                raise LockHeldError(
                    f"locked by {holder.describe()} for {age}s; "
                    f"lock {path} expires after {holder.ttl:g}s"
                )
            self.reporter.note(f"taking over stale lock of {holder.describe()}")
            runner.run(lock.break_stale(path, holder.release_id))
        raise LockHeldError(f"lock {path} could not be taken")

    def release_lock(self, op_id: str) -> None:
        runner = self.hosts.runner(self.pb.router_host.name)
        runner.run(lock.release(self._lock_path(), op_id), check=False)

    # ----- execute one action -----
    def execute(self, action: Action) -> str:
        match action:
            case Run(host=host, commands=commands):
                runner = self.hosts.runner(host)
                for cmd in commands:
                    runner.run(cmd, timeout=600)
                return ""
            case Upload(host=host, src=src, dest=dest):
                upload(self.hosts.runner(host), src, dest)
                return dest
            case Gate():
                return self._gate(action)
            case Migrate():
                return self._migrate(action)
            case Switch(conf=conf, color=color, version=version):
                if not conf:
                    return "no previous upstream to restore"
                seconds = self.hosts.router.switch(conf)
                return f"traffic on {color or 'previous'} ({version or '-'}) after {seconds:.3f}s"
            case StopColor(host=host, command=command):
                drained = self.hosts.router.wait_drained()
                self.hosts.runner(host).run(command, timeout=120)
                return f"old nginx workers drained in {drained:.2f}s"
            case ScheduleStop(host=host, color=color, seconds=seconds, command=command):
                drained = self.hosts.router.wait_drained()
                self.hosts.runner(host).run(command)
                return (
                    f"old nginx workers drained in {drained:.2f}s; {color} stays warm "
                    f"for {seconds:g}s"
                )
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
            return f"database at {current or 'base'}: nothing to apply"

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
        acks = f", {len(gate.acknowledged)} acknowledged" if gate.acknowledged else ""
        return (
            f"{current or 'base'} -> {after}: {len(record['applied'])} revision(s) in "
            f"{record['attempts']} attempt(s){acks}"
        )

    def _gate(self, gate: Gate) -> str:
        results = []
        for url in gate.urls:
            if gate.kind == "pre_switch":
                res = http.pre_switch(url, self.pb.gates.pre_switch, gate.expect)
            else:
                res = http.post_switch(url, self.pb.gates.post_switch, gate.expect)
            self.gates.append(res)
            results.append(res)
            if not res.passed:
                raise GateFailed(
                    f"{gate.kind.replace('_', '-')} gate failed on {url}: {res.reason}"
                )
        return "; ".join(r.summary() for r in results)

    # ----- operations -----
    def _check_journal(self) -> None:
        pending = self.journal.unfinished()
        if pending:
            raise RecoveryNeededError(
                f"{pending.get('kind', 'operation')} {pending.get('id')} did not finish "
                f"(journal {self.journal.path}); run `deployer recover` first"
            )

    def release(self, version: str) -> OperationResult:
        return self._run("release", version)

    def rollback(self) -> OperationResult:
        return self._run("rollback", None)

    def _run(self, kind: str, version: str | None) -> OperationResult:
        self._check_journal()
        started_at = time.time()
        op_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        try:
            self.acquire_lock(op_id)
        except BaseException:
            self.hosts.close()
            raise
        result: OperationResult | None = None
        try:
            observed = self.observe()
            if kind == "release":
                assert version is not None
                steps = release_plan(self.ctx, observed, version)
            else:
                version, steps = rollback_plan(self.ctx, observed)
            result = OperationResult(
                kind,
                self.pb.app,
                self.pb.environment,
                op_id,
                version,
                observed.live_version,
                observed.live_color,
                observed.idle_color,
                started_at=started_at,
            )
            self.journal.append(
                {
                    "id": op_id,
                    "event": "begin",
                    "kind": kind,
                    "ts": time.time(),
                    "version": version,
                    "from_color": observed.live_color,
                    "from_version": observed.live_version,
                    "to_color": observed.idle_color,
                    "upstream_before": observed.upstream_text,
                    "versions_before": {h: dict(v) for h, v in observed.versions.items()},
                }
            )
            self.reporter.note(
                f"{kind} {self.pb.app} {version}: live {observed.live_color or 'none'} "
                f"({observed.live_version or '-'}) -> {observed.idle_color}"
            )
            outcome = Saga(op_id, steps, self.execute, self.journal, self.reporter).run()
            self._conclude(result, outcome)
        finally:
            if result is not None:
                result.ended_at = time.time()
                self.journal.append(
                    {"id": op_id, "event": "end", "outcome": result.outcome, "ts": result.ended_at}
                )
            self.release_lock(op_id)
            self.hosts.close()
        return result

    def _conclude(self, result: OperationResult, out: SagaOutcome) -> None:
        result.steps = [r.to_dict() for r in out.records]
        result.gates = [g.to_dict() for g in self.gates]
        result.warnings = out.warnings
        result.restore_seconds = out.restore_seconds
        result.migrations = self.migrations
        if out.failed is None:
            result.outcome, result.exit_code = "succeeded", ExitCode.OK
            result.message = f"{result.version} is live on {result.to_color}"
            return
        cause = str(out.error) or type(out.error).__name__
        interrupted = isinstance(out.error, KeyboardInterrupt)
        if out.undo_errors:
            result.outcome, result.exit_code = "failed", ExitCode.NEEDS_RECOVERY
            result.message = (
                f"{cause}; undo failed ({'; '.join(out.undo_errors)}): "
                "check the hosts, then run `deployer recover`"
            )
            return
        if out.switched:
            result.outcome = "interrupted" if interrupted else "rolled_back"
            result.exit_code = RolledBackError.exit_code
            restored = (
                f"; traffic restored to {result.from_color} in {out.restore_seconds:.2f}s"
                if out.restore_seconds is not None
                else ""
            )
            result.message = f"{cause}; rolled back{restored}"
            self._verify_restored(result)
        else:
            result.outcome = "interrupted" if interrupted else "aborted"
            result.exit_code = AbortedError.exit_code
            result.message = f"{cause}; {result.from_color or 'nothing'} still serves"

    def _verify_restored(self, result: OperationResult) -> None:
        if not result.from_color:
            return
        post = self.pb.gates.post_switch
        url = self.pb.router.url.rstrip("/") + post.path
        expect = self.ctx.expectation(
            post, self.pb.app_hosts[0], result.from_color, result.from_version or ""
        )
        check = http.wait_serving(url, expect)
        self.gates.append(check)
        result.gates.append(check.to_dict())
        if not check.passed:
            result.warnings.append(f"after switching back: {check.reason}")

    # ----- recover -----
    def recover(self) -> OperationResult:
        """Finish an operation a crash left half-done: undo what it did before its pivot."""
        pending = self.journal.unfinished()
        pb = self.pb
        if pending is None:
            res = OperationResult("recover", pb.app, pb.environment, "-", outcome="succeeded")
            res.message = "nothing to recover"
            return res
        op_id = str(pending["id"])
        steps_seen = [
            r for r in self.journal.records() if r.get("id") == op_id and r.get("event") == "step"
        ]
        result = OperationResult(
            "recover",
            pb.app,
            pb.environment,
            op_id,
            pending.get("version"),
            pending.get("from_version"),
            pending.get("from_color"),
            pending.get("to_color"),
        )
        passed_pivot = any(
            r["step"] == "post-switch-gate" and r["phase"] == "done" for r in steps_seen
        )
        try:
            if passed_pivot:
                result.outcome = "succeeded"
                result.message = (
                    f"{op_id} had passed its post-switch gate; it stands. "
                    f"The old color may still run; the next release stops it."
                )
            else:
                observed = Observed(
                    pending.get("from_color"),
                    pending.get("from_version"),
                    pending.get("upstream_before", ""),
                    pending.get("versions_before") or {},
                )
                version = str(pending.get("version"))
                steps = release_plan(self.ctx, observed, version)
                started = {r["step"] for r in steps_seen if r["phase"] == "start"}
                touched = [s for s in steps if s.key in started]
                saga = Saga(op_id, [], self.execute, self.journal, self.reporter)
                out = SagaOutcome()
                saga.compensate(touched, out)
                result.steps = [r.to_dict() for r in out.records]
                if out.undo_errors:
                    result.outcome, result.exit_code = "failed", ExitCode.NEEDS_RECOVERY
                    result.message = "undo failed: " + "; ".join(out.undo_errors)
                    return result
                result.outcome = "rolled_back"
                result.message = (
                    f"undid {len(touched)} started step(s) of {op_id}; "
                    f"{observed.live_color or 'nothing'} serves"
                )
            self.journal.append(
                {"id": op_id, "event": "end", "outcome": "recovered", "ts": time.time()}
            )
            self.release_lock(op_id)
        finally:
            result.ended_at = time.time()
            self.hosts.close()
        return result

    # ----- status -----
    def status(self) -> dict[str, Any]:
        try:
            observed = self.observe()
            holder = self.read_lock()
        finally:
            self.hosts.close()
        hosts = []
        for host in self.pb.app_hosts:
            hosts.append(
                {
                    "host": host.name,
                    "colors": {
                        c: {
                            "version": observed.versions.get(host.name, {}).get(c),
                            "running": observed.running.get(host.name, {}).get(c, False),
                            "live": c == observed.live_color,
                        }
                        for c in COLORS
                    },
                }
            )
        pending = self.journal.unfinished()
        return {
            "app": self.pb.app,
            "environment": self.pb.environment,
            "live_color": observed.live_color,
            "live_version": observed.live_version,
            "idle_color": observed.idle_color,
            "idle_version": observed.idle_version(),
            "hosts": hosts,
            "lock": None if holder is None else holder.__dict__,
            "unfinished": pending.get("id") if pending else None,
        }
