"""Run a saga: journal each step before and after it runs; on failure undo in reverse.

Steps marked ``after_pivot`` come after the commit point (the post-switch gate passed):
their failure is reported but never undoes the release.

A step that failed or was interrupted may still have had its effect (the switch's reload
may have happened before the connection dropped), so its own undo runs too: every undo is
idempotent. Only an error that says the effect did not happen (``not_applied``, e.g. nginx
rejected the new upstream and the host put the old one back) skips it. Any exception, not
only the ones deployer expects, leads to compensation.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deployer.engine.lanes import lanes_of, run_group
from deployer.engine.outcome import (
    SagaOutcome,
    StepRecord,
    describe_error,
    not_applied,
)
from deployer.errors import DeployerError, GateFailed, HostsFailed
from deployer.plan import Action, Step
from deployer.ports import Journal, Reporter

Interrupt = Callable[[], BaseException | None]


def _switches(action: Action | None) -> bool:
    """Whether the action moves users' traffic (a switch, a promote, a rollback)."""
    return bool(getattr(action, "switches_traffic", False))


def _after_commit(stop: BaseException, out: SagaOutcome) -> None:
    """A signal past the commit: the release stands, and its last steps (the old color's
    stop timer, pruning: short and bounded) still run, or the old color would be left
    running with nothing to stop it."""
    said = f"{stop} after the commit: the release stands; its last steps ran all the same"
    if said not in out.warnings:
        out.warnings.append(said)


class FleetFailed(DeployerError):
    """More hosts failed than the batch policy allows."""


class SafeReporter:
    """A reporter that can never abort the saga (a rendering error is dropped), called from
    one thread at a time (lanes report from several)."""

    def __init__(self, inner: Reporter):
        self.inner = inner
        self._lock = threading.Lock()

    def step_started(self, name: str, host: str | None) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.inner.step_started(name, host)

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.inner.step_finished(name, host, status, seconds, detail)

    def note(self, message: str) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.inner.note(message)


class Saga:
    def __init__(
        self,
        op_id: str,
        steps: list[Step],
        execute: Callable[[Action], str],
        journal: Journal,
        reporter: Reporter,
        *,
        interrupt: Interrupt | None = None,
        op: dict[str, Any] | None = None,
        max_failures: int = 0,
        workers: int = 32,
        on_left_out: Callable[[dict[str, str]], None] | None = None,
        left_out: dict[str, str] | None = None,
        take_out: Callable[[dict[str, str]], str] | None = None,
    ):
        self.op_id, self.steps, self.execute = op_id, steps, execute
        self.journal, self.reporter = journal, SafeReporter(reporter)
        self.interrupt = interrupt or (lambda: None)
        self.op = op or {}
        #: hosts whose lane may fail while the release goes on without them
        self.max_failures, self.workers = max_failures, workers
        self.on_left_out = on_left_out or (lambda hosts: None)
        #: takes hosts out of the router's upstream after the switch (None: cannot)
        self.take_out = take_out
        self._journal_lock = threading.Lock()
        self._op_logged = False
        #: hosts out before anything ran (unreachable when observed, within max_failures)
        self.initially_left_out = dict(left_out or {})

    def _log(self, step: Step, phase: str, **extra: Any) -> None:
        record = {
            "id": self.op_id,
            "event": "step",
            "step": step.key,
            "phase": phase,
            "ts": time.time(),
            **extra,
        }
        with self._journal_lock:
            # the first step record repeats the operation: enough to recover even if the
            # begin record is damaged. Once: it holds the upstream and every host's versions
            # (~7 KB at 100 hosts), and every record is written under this lock
            if phase == "start" and self.op and not self._op_logged:
                record["op"] = self.op
                self._op_logged = True
            self.journal.append(record)

    def _fail(self, step: Step, exc: BaseException, seconds: float, out: SagaOutcome) -> str:
        reason = describe_error(exc)
        try:
            self._log(step, "failed", error=reason)
        except Exception as log_exc:
            out.warnings.append(f"journal: {describe_error(log_exc)}")
        out.records.append(StepRecord(step.name, step.host, "failed", seconds, reason))
        self.reporter.step_finished(step.name, step.host, "failed", seconds, reason)
        return reason

    def run(self) -> SagaOutcome:
        out = SagaOutcome(left_out=dict(self.initially_left_out))
        if out.left_out:
            self.on_left_out(dict(out.left_out))
        done: list[Step] = []
        i = 0
        while i < len(self.steps):
            step = self.steps[i]
            if step.group:  # consecutive steps of one group: a lane per host, in parallel
                j = i
                while j < len(self.steps) and self.steps[j].group == step.group:
                    j += 1
                group = [s for s in self.steps[i:j] if s.host not in out.left_out]
                i = j
                if group and not self._group(group, done, out):
                    return out
                continue
            i += 1
            if step.after_pivot and step.host in out.left_out:
                out.records.append(
                    StepRecord(step.name, step.host, "skipped", 0.0, "host left out")
                )
                continue
            stop = self.interrupt()
            if stop is not None and step.after_pivot:
                _after_commit(stop, out)
            elif stop is not None:
                out.failed, out.error, out.verdict_at = step, stop, time.monotonic()
                self.record_skipped(step, str(stop), out)
                self.compensate(done, out)
                return out
            ok, exc, applied = self.run_step(step, out)
            if ok:
                done.append(step)
                continue
            assert exc is not None
            if step.after_pivot:
                if applied is not None:  # it ran (or its record could not be written)
                    out.warnings.append(f"{step.key}: {describe_error(exc)}")
                if isinstance(exc, KeyboardInterrupt) or applied is None:
                    break
                continue
            out.failed, out.error, out.verdict_at = step, exc, time.monotonic()
            self.compensate(done + ([step] if applied else []), out)
            return out
        return out

    def record_skipped(self, step: Step, why: str, out: SagaOutcome) -> None:
        out.records.append(StepRecord(step.name, step.host, "skipped", 0.0, why))

    def run_step(self, step: Step, out: SagaOutcome) -> tuple[bool, BaseException | None, Any]:
        """Journal, run and journal one step: ``(True, None, None)`` when it is done;
        ``(False, error, applied)`` when not, ``applied`` saying whether it may have had its
        effect (its undo runs too) and None when it never started (no start record)."""
        t0 = time.monotonic()
        try:
            self._log(step, "start")
        except Exception as exc:  # write-ahead: no record, no step
            self._fail(step, exc, 0.0, out)
            if step.after_pivot:
                out.warnings.append(f"{step.key}: {describe_error(exc)}")
            return False, exc, None
        try:
            self.reporter.step_started(step.name, step.host)
            try:
                detail = self.execute(step.do)
            except HostsFailed as exc:  # within the budget: the release goes on without them
                detail = self._without(step, exc, out)
        except (Exception, KeyboardInterrupt) as exc:
            self._fail(step, exc, time.monotonic() - t0, out)
            applied = not not_applied(exc)
            if _switches(step.do) and applied and not step.after_pivot:
                out.switched = True  # the reload may have happened: users may have seen it
            return False, exc, applied
        seconds = time.monotonic() - t0
        try:
            self._log(step, "done", detail=detail)
        except Exception as exc:
            # the step ran; without a record of it the release must not go on
            out.records.append(StepRecord(step.name, step.host, "ok", seconds, detail))
            if _switches(step.do):
                out.switched = True
            if step.after_pivot:
                out.warnings.append(f"journal: {describe_error(exc)}")
                return True, None, None
            return False, exc, True
        out.records.append(StepRecord(step.name, step.host, "ok", seconds, detail))
        self.reporter.step_finished(step.name, step.host, "ok", seconds, detail)
        if _switches(step.do):
            out.switched, out.switched_at = True, time.monotonic()
        return True, None, None

    def _without(self, step: Step, exc: HostsFailed, out: SagaOutcome) -> str:
        """After the switch, hosts failing on their own while the other hosts pass: within
        ``max_failures`` they are taken out of the router and the gate runs again without
        them (the release goes on as a mixed fleet, said in the result); beyond it, or when
        the gate fails again, the error stands and everything is switched back."""
        taken: list[str] = []
        while True:
            new = {
                h: f"post-switch: {why}" for h, why in exc.hosts.items() if h not in out.left_out
            }
            within = len(out.left_out) + len(new) <= self.max_failures
            if self.take_out is None or not new or exc.remaining == 0 or not within:
                raise exc
            before = dict(out.left_out)
            out.left_out.update(new)
            self.on_left_out(dict(out.left_out))
            try:
                taken.append(self.take_out(dict(out.left_out)))
            except Exception as err:
                out.left_out.clear()
                out.left_out.update(before)
                self.on_left_out(dict(before))
                raise GateFailed(
                    f"{exc}; taking them out of the router failed: {describe_error(err)}"
                ) from err
            self.reporter.note(
                f"left out (max_failures {self.max_failures}): "
                + "; ".join(f"{h}: {why}" for h, why in new.items())
                + "; gating again without them"
            )
            try:
                again = self.execute(step.do)
            except HostsFailed as more:
                exc = more
                continue
            return f"{'; '.join(taken)}; then {again}"

    def _group(self, group: list[Step], done: list[Step], out: SagaOutcome) -> bool:
        """Run one parallel group; False when the saga stopped (and was compensated)."""
        res = run_group(self, group, out, self.workers)
        done.extend(res.done)
        if group[0].after_pivot:  # the release stands: what failed is said, nothing undone
            stop = self.interrupt()
            if stop is not None:
                _after_commit(stop, out)
            for f in res.failures:
                if f.applied is not None:
                    out.warnings.append(f"{f.step.key}: {describe_error(f.error)}")
            return True
        for f in res.failures:  # a signal that stopped a gate stops the whole group
            if isinstance(f.error, KeyboardInterrupt) and res.stopped is None:
                res.stopped = f.error
        if not res.failures and res.stopped is None:
            return True
        failed = {f.host for f in res.failures}
        remaining = set(lanes_of(group)) - failed
        within = len(out.left_out) + len(failed) <= self.max_failures
        if res.stopped is None and within and remaining:
            for f in res.failures:  # undo the failed hosts' own steps; go on without them
                lane = [s for s in done if s.host == f.host] + ([f.step] if f.applied else [])
                done[:] = [s for s in done if s.host != f.host]
                local = SagaOutcome()
                self.compensate(lane, local)
                out.records += local.records
                out.warnings += [f"{f.host}: undo failed: {e}" for e in local.undo_errors]
                out.left_out[f.host] = f"{f.step.name}: {describe_error(f.error)}"
            self.reporter.note(
                f"left out (max_failures {self.max_failures}): "
                + "; ".join(f"{h}: {why}" for h, why in out.left_out.items())
            )
            self.on_left_out(dict(out.left_out))
            return True
        out.verdict_at = time.monotonic()
        if res.stopped is not None:
            out.error = res.stopped
            out.failed = res.failures[0].step if res.failures else group[-1]
        elif len(res.failures) == 1 and not out.left_out:
            out.failed, out.error = res.failures[0].step, res.failures[0].error
        else:
            named = [f"{f.host} ({f.step.name}: {describe_error(f.error)})" for f in res.failures]
            named += [f"{h} ({why})" for h, why in out.left_out.items()]
            out.failed = res.failures[0].step
            out.error = FleetFailed(
                f"{len(named)} host(s) failed, more than max_failures {self.max_failures}: "
                + "; ".join(named)
            )
        self.compensate(done + [f.step for f in res.failures if f.applied], out)
        return False

    def compensate(self, done: list[Step], out: SagaOutcome) -> None:
        """Undo ``done`` in reverse. Never interrupted; a journal that cannot be written
        does not stop an undo (users come first), it is reported. The steps of a parallel
        group are undone as they ran: one lane per host (each host's in reverse), so one
        host that stopped answering does not hold the others' undos up."""
        steps = [s for s in reversed(done) if s.undo is not None]
        i = 0
        while i < len(steps):
            j = i + 1
            if steps[i].group:
                while j < len(steps) and steps[j].group == steps[i].group:
                    j += 1
            lanes = lanes_of(steps[i:j])
            i = j
            if len(lanes) == 1:
                for step in next(iter(lanes.values())):
                    self._undo(step, out)
                continue
            with ThreadPoolExecutor(
                max_workers=max(1, min(self.workers, len(lanes))), thread_name_prefix="undo"
            ) as pool:
                for f in [pool.submit(self._undo_lane, lane, out) for lane in lanes.values()]:
                    f.result()
        out.compensated = not out.undo_errors

    def _undo_lane(self, lane: list[Step], out: SagaOutcome) -> None:
        for step in lane:
            self._undo(step, out)

    def _undo(self, step: Step, out: SagaOutcome) -> None:
        assert step.undo is not None
        name = f"undo {step.name}"
        t0 = time.monotonic()
        try:
            self._log(step, "undo-start")
        except Exception as exc:
            out.warnings.append(f"journal: {describe_error(exc)}")
        self.reporter.step_started(name, step.host)
        try:
            detail = self.execute(step.undo)
        except (Exception, KeyboardInterrupt) as exc:
            seconds = time.monotonic() - t0
            reason = describe_error(exc)
            try:
                self._log(step, "undo-failed", error=reason)
            except Exception as log_exc:
                out.warnings.append(f"journal: {describe_error(log_exc)}")
            out.undo_errors.append(f"{step.key}: {reason}")
            out.records.append(StepRecord(name, step.host, "undo-failed", seconds, reason))
            self.reporter.step_finished(name, step.host, "failed", seconds, reason)
            return
        seconds = time.monotonic() - t0
        if _switches(step.undo):
            out.restored_at = time.monotonic()
        try:
            self._log(step, "undone", detail=detail)
        except Exception as exc:
            out.warnings.append(f"journal: {describe_error(exc)}")
        out.records.append(StepRecord(name, step.host, "undone", seconds, detail))
        self.reporter.step_finished(name, step.host, "ok", seconds, detail)
