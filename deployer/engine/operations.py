"""Release, rollback and status: lock, observe, plan, run the saga, report.

The lock is taken before the journal is read (a second release while one runs is told
"locked", never "needs recovery"), and signals are deferred for the whole operation
(:mod:`deployer.engine.signals`).
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable
from typing import Any

from deployer.adapters import http
from deployer.adapters.journal import FileJournal, JournalError
from deployer.engine.actions import Actions
from deployer.engine.hosts import HostPool
from deployer.engine.outcome import SagaOutcome, describe_error
from deployer.engine.result import OperationResult, host_results, new_id
from deployer.engine.saga import Saga
from deployer.engine.signals import Interrupted, SignalGuard
from deployer.errors import (
    AbortedError,
    DeployerError,
    ExitCode,
    RecoveryNeededError,
    RolledBackError,
    printable,
)
from deployer.plan import Context, Observed, Step
from deployer.ports import Lock, NullReporter, OperationRecord, Reporter, Target
from deployer.values import Shell


class Engine:
    """Lock, observe, plan, run the saga, report: for any target. The concrete target (and
    the host pool it shares) are chosen by the composition root (:mod:`deployer.app`) and
    handed in; the engine names none."""

    def __init__(
        self,
        ctx: Context,
        hosts: HostPool,
        target: Target,
        lock: Lock,
        opstate: OperationRecord,
        *,
        reporter: Reporter | None = None,
    ):
        self.ctx = ctx
        self.pb = ctx.pb
        self.reporter = reporter or NullReporter()
        self.hosts = hosts
        journal_dir = ctx.loaded.local_path(self.pb.journal_dir)
        self.journal = FileJournal(journal_dir / f"{self.pb.app}-{self.pb.environment}.journal")
        self.guard = SignalGuard()
        self.target = target
        self.actions = Actions(self.pb, self.hosts, self.guard, self.target)
        self._observed: Observed | None = None
        #: what the operation noticed before it began (a stale journal retired)
        self.notes: list[str] = []
        self.lock, self.opstate = lock, opstate

    def acquire(self, op_id: str) -> None:
        """Take the deploy lock for ``op_id``; if it cannot be taken, close every connection
        (nothing else ran) and let the error stand."""
        try:
            self.lock.acquire(op_id)
        except BaseException:
            self.close()
            raise

    # ----- observe -----
    def observe(self, *, tolerant: bool = False) -> Observed:
        return self.target.observe(tolerant=tolerant)

    def _interrupt(self) -> BaseException | None:
        return self.guard.requested or self.lock.lost

    def check_journal(self) -> None:
        """Refuse to start while the router host records an unfinished operation; retire
        what the local journal still holds open that the router no longer records."""
        remote = self.opstate.read()
        if remote:
            raise RecoveryNeededError(
                f"{printable(remote.get('kind', 'operation'))} {printable(remote.get('id'))} "
                f"did not finish (recorded in {self.opstate.where}); "
                "run `deployer recover` first (from any checkout of the playbook)"
            )
        self.retire_stale(None)

    def retire_stale(self, remote: dict[str, Any] | None) -> None:
        """The router host's operation record is the truth, the local journal a cache of
        it: an operation the journal holds open that the router no longer records (or
        records under another id) was finished elsewhere (a recover from another checkout,
        an end record lost to a full disk). It is retired with a note; nothing of it is
        replayed. Notes go to :attr:`notes`."""
        for _ in range(100):  # bounded: each pass ends one operation
            local = self.journal.unfinished()
            if local is None or (remote is not None and remote.get("id") == local.get("id")):
                return
            why = (
                f"{self.opstate.where} has no record of it"
                if remote is None
                else f"{self.opstate.where} records {printable(remote.get('id'))} instead"
            )
            op_id = str(local.get("id"))
            self.journal.retire(op_id, why)
            note = (
                f"journal: {printable(local.get('kind', 'operation'))} {printable(op_id)} was "
                f"finished elsewhere ({why}): retired, nothing replayed"
            )
            self.notes.append(note)
            self.reporter.note(note)

    # ----- operations -----
    def release(self, version: str, candidate: str | None = None) -> OperationResult:
        return self._run("release", lambda seen: self.target.release_plan(seen, version, candidate))

    def rollback(self, *, force: bool = False) -> OperationResult:
        """Back to what served before; ``force``: even to a version the database has
        contracted past (a warning instead of a refusal)."""
        self.actions.mig.force = force
        return self._run("rollback", self.target.rollback_plan)

    def _run(
        self,
        kind: str,
        planner: Callable[[Observed], tuple[str, Observed, list[Step]]],
        conclude: Callable[[OperationResult, SagaOutcome, Observed], None] | None = None,
    ) -> OperationResult:
        """Lock, observe, plan, record the operation (router host, then journal), run the
        saga, conclude (``conclude`` replaces the release's verdict: a drill's), close."""
        with self.guard:
            started_at = time.time()
            op_id = new_id()
            self.hosts.warm()  # every host's connection opens while the lock is taken
            self.acquire(op_id)
            result: OperationResult | None = None
            try:
                self.guard.check()
                self.check_journal()
                observed = self.observe()
                version, observed, steps = planner(observed)
                self.actions.mig.record, self.actions.mig.op_id = self.opstate, op_id
                self.actions.preflight(steps)  # read-only: may refuse, nothing begun
                op = {
                    "kind": kind,
                    "version": version,
                    "from_color": observed.live_color,
                    "from_version": observed.live_version,
                    "to_color": observed.idle_color,
                    **self.target.op_record(observed),
                }
                self.guard.check()
                owner = {"owner": getpass.getuser(), "machine": socket.gethostname()}
                self.opstate.write({"id": op_id, "phase": "begun", **owner, **op})
                committed = {"id": op_id, "phase": "committed", **owner, **op}
                self.actions.on_commit = lambda dead_man: self._commit(committed, dead_man)
                self.target.begin({"id": op_id, **op})
                self.journal.append({"id": op_id, "event": "begin", "ts": time.time(), **op})
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
                self._observed = observed
                self.lock.start_heartbeat()
                self.reporter.note(
                    f"{kind} {self.pb.app} {version}: live {observed.live_color or 'none'} "
                    f"({observed.live_version or '-'}) -> {observed.idle_color}"
                )
                fleet = getattr(self.pb, "fleet", None)  # a platform target has no hosts
                saga = Saga(
                    op_id,
                    steps,
                    self.actions,
                    self.journal,
                    self.reporter,
                    interrupt=self._interrupt,
                    op=op,
                    max_failures=fleet.failures_allowed(len(self.pb.app_hosts)) if fleet else 0,
                    workers=fleet.parallel if fleet else 1,
                    on_left_out=self.target.leave_out,
                    take_out=self.target.take_out,
                    left_out=dict(observed.extra.get("unreachable") or {}),
                )
                out = saga.run()
                if conclude is None:
                    self._conclude(result, out)
                else:
                    conclude(result, out, observed)
            except (Interrupted, JournalError) as exc:
                if result is not None:
                    raise
                raise AbortedError(f"{describe_error(exc)}; nothing was changed") from None
            finally:
                self._close(op_id, result)
        return result

    def _commit(self, doc: dict[str, Any], dead_man: bool) -> str | None:
        """The commit point, in one round trip on the router host: call the dead-man watchdog
        off and, only if it had not fired, record that the release stands. Returns what the
        timer printed if it had fired."""
        write = self.opstate.write_command(doc)
        disarm = self.target.dead_man_off() if dead_man else None
        from deployer.commands.dead_man import parse_fired

        if write is None:  # a record that is not a file on the router host: two steps
            router = self.hosts.runner(self.pb.router_host.name)
            fired = parse_fired(router.run(disarm).stdout) if disarm is not None else None
            if fired is None:
                self.opstate.write(doc)
            return fired
        runner = self.hosts.runner(self.pb.router_host.name)
        if disarm is None:
            runner.run(write)
            return None
        cmd = Shell.around(
            f'out=$({disarm.text}); if [ -n "$out" ]; then echo "$out"; else {write.text}; fi',
            f"{disarm.shown}; unless it had fired: {write.shown}",
            disarm,
            write,
        )
        return parse_fired(runner.run(cmd).stdout)

    def _close(self, op_id: str, result: OperationResult | None) -> None:
        # the router's operation record goes with the lock, unless the operation needs
        # recovery (an undo failed); nothing begun (result None) clears it too
        needs_recovery = result is not None and result.exit_code == ExitCode.NEEDS_RECOVERY
        finished = None if needs_recovery else self.opstate.clear_command(op_id)
        if not needs_recovery and finished is None:  # not a file on the router host
            try:
                self.opstate.clear(op_id)
            except Exception as exc:
                if result is None:
                    raise
                result.warnings.append(f"operation record not cleared: {describe_error(exc)}")
        try:
            if result is not None:
                result.ended_at = time.time()
                result.target = self.target.result_facts(self._observed)
                if result.target:
                    result.warnings += result.target.pop("warnings", [])
                # an operation whose undo failed stays open: `deployer recover` finishes it
                if not needs_recovery:
                    try:
                        self.journal.append(
                            {
                                "id": op_id,
                                "event": "end",
                                "outcome": result.outcome,
                                "ts": result.ended_at,
                            }
                        )
                        self.journal.compact()  # still under the lock
                    except JournalError as exc:
                        result.warnings.append(str(exc))
            try:
                self.lock.release(op_id, also=finished)
            except Exception as exc:
                if result is None:
                    raise
                result.warnings.append(f"lock not released: {describe_error(exc)}")
        finally:
            self.close()

    def close(self) -> None:
        """Every connection the operation opened: the hosts' and the target's."""
        try:
            self.hosts.close()
        finally:
            self.target.close()

    def record(self, result: OperationResult, out: SagaOutcome) -> None:
        """What the saga and the actions did, into the result."""
        result.steps = [r.to_dict() for r in out.records]
        result.gates = [g.to_dict() for g in self.actions.gates]
        seen = self._observed
        noted = list(seen.extra.get("warnings", [])) if seen is not None else []
        result.warnings = self.notes + noted + out.warnings + self.actions.warnings
        result.restore_seconds = out.restore_seconds
        result.migrations = self.actions.migrations
        result.hosts = host_results(self.pb, out)

    def _conclude(self, result: OperationResult, out: SagaOutcome) -> None:
        self.record(result, out)
        if out.failed is None:
            result.outcome, result.exit_code = "succeeded", ExitCode.OK
            result.message = f"{result.version} is live on {result.to_color}"
            if out.left_out:  # within max_failures: said in the message, not only a warning
                result.message += "; left out of the router: " + "; ".join(
                    f"{h} ({why})" for h, why in out.left_out.items()
                )
            if result.kind == "rollback" and out.switched_at is not None:
                # a rollback restores from its start to its switch
                switched = time.time() - (time.monotonic() - out.switched_at)
                result.restore_seconds = round(switched - result.started_at, 3)
                result.message += f"; traffic restored in {result.restore_seconds:.2f}s"
            return
        cause = describe_error(out.error) if out.error is not None else "failed"
        interrupted = isinstance(out.error, KeyboardInterrupt)
        if out.undo_errors:
            result.outcome, result.exit_code = "failed", ExitCode.NEEDS_RECOVERY
            result.message = (
                f"{cause}; undo failed ({'; '.join(out.undo_errors)}): "
                "check what serves (`deployer status`), then run `deployer recover`"
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
        else:
            result.outcome = "interrupted" if interrupted else "aborted"
            result.exit_code = AbortedError.exit_code
            result.message = f"{cause}; {result.from_color or 'nothing'} still serves"
        self.verify_serving(result)

    def verify_serving(self, result: OperationResult) -> None:
        """After an abort, a switch back or a recover: the router must serve the old color,
        healthy. If it does not, the message says so (not only a warning), and an exit
        code that would say all is well (a recover's 0) becomes 6: never 0 while users get
        errors. 3 and 4 keep their meaning (nobody got the new version; traffic is back on
        the old one), with the facts."""
        if not result.from_color:
            return
        url, expect, headers = self.target.serving(result.from_color, result.from_version or "")
        check = http.wait_serving(url, expect, headers=headers)
        self.actions.gates.append(check)
        result.gates.append(check.to_dict())
        if not check.passed:
            result.warnings.append(f"after the operation: {check.reason}")
            if result.exit_code == ExitCode.OK:
                result.exit_code = ExitCode.NEEDS_RECOVERY
            result.message += (
                f"; but the router does not serve {result.from_color} "
                f"({result.from_version or '-'}) healthily: {check.reason}; check what serves "
                "(`deployer status`)"
            )

    # ----- status -----
    def status(self) -> dict[str, Any]:
        self.hosts.warm(hold=False)
        try:
            observed = self.observe(tolerant=True)
            state = self.lock.state()
            remote = self.opstate.read()
            target = self.target.status(observed)
            try:  # on the router's open connection (after close it would open another)
                deferred = self.opstate.read_deferred()
            except DeployerError as exc:
                deferred = {"error": str(exc)}
        finally:
            self.close()
        local = self.journal.unfinished()
        pending = remote
        problems = list(self.journal.problems)
        if local is not None and (remote is None or remote.get("id") != local.get("id")):
            problems.append(
                f"{self.journal.path}: holds {printable(local.get('id'))} open, which "
                f"{self.opstate.where} no longer records: finished elsewhere (the next "
                "release or recover retires it)"
            )
        holder = state.info
        lock: dict[str, Any] | None = None
        if holder is not None:
            lock = {**holder.__dict__, "state": "held"}
        elif state.kind != "absent":
            lock = {"state": "unreadable", "path": self.lock.path}
        return {
            "app": self.pb.app,
            "environment": self.pb.environment,
            "live_color": observed.live_color,
            "live_version": observed.live_version,
            "idle_color": observed.idle_color,
            "idle_version": observed.idle_version(),
            **target,
            "lock": lock,
            "unfinished": pending.get("id") if pending else None,
            "deferred_contract": deferred,
            "journal_problems": problems,
        }
