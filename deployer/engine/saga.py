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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployer.plan import Action, Step
from deployer.ports import Journal, Reporter

Interrupt = Callable[[], BaseException | None]


@dataclass
class StepRecord:
    name: str
    host: str | None
    status: str  # ok | failed | skipped | undone | undo-failed
    seconds: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


@dataclass
class SagaOutcome:
    failed: Step | None = None
    error: BaseException | None = None
    switched: bool = False
    compensated: bool = False
    undo_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verdict_at: float | None = None
    restored_at: float | None = None
    #: when a forward switch finished (time.monotonic())
    switched_at: float | None = None
    records: list[StepRecord] = field(default_factory=list)

    @property
    def restore_seconds(self) -> float | None:
        if self.verdict_at is None or self.restored_at is None:
            return None
        return round(self.restored_at - self.verdict_at, 3)


def _switches(action: Action | None) -> bool:
    """Whether the action moves users' traffic (a switch, a promote, a rollback)."""
    return bool(getattr(action, "switches_traffic", False))


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, Exception) and not _expected(exc):
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text or type(exc).__name__


def _expected(exc: BaseException) -> bool:
    from deployer.errors import DeployerError

    return isinstance(exc, DeployerError)


def not_applied(exc: BaseException) -> bool:
    """True when the error proves the step changed nothing (so it needs no undo)."""
    return bool(getattr(exc, "not_applied", False))


class SafeReporter:
    """A reporter that can never abort the saga (a rendering error is dropped)."""

    def __init__(self, inner: Reporter):
        self.inner = inner

    def step_started(self, name: str, host: str | None) -> None:
        with contextlib.suppress(Exception):
            self.inner.step_started(name, host)

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None:
        with contextlib.suppress(Exception):
            self.inner.step_finished(name, host, status, seconds, detail)

    def note(self, message: str) -> None:
        with contextlib.suppress(Exception):
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
    ):
        self.op_id, self.steps, self.execute = op_id, steps, execute
        self.journal, self.reporter = journal, SafeReporter(reporter)
        self.interrupt = interrupt or (lambda: None)
        self.op = op or {}

    def _log(self, step: Step, phase: str, **extra: Any) -> None:
        record = {
            "id": self.op_id,
            "event": "step",
            "step": step.key,
            "phase": phase,
            "ts": time.time(),
            **extra,
        }
        if phase == "start" and self.op:
            record["op"] = self.op  # enough to recover even if the begin record is damaged
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
        out = SagaOutcome()
        done: list[Step] = []
        for step in self.steps:
            stop = self.interrupt()
            if stop is not None:
                if step.after_pivot:
                    out.warnings.append(
                        f"{stop} after the post-switch gate passed: the release stands; "
                        f"{step.key} and the steps after it did not run"
                    )
                    break
                out.failed, out.error, out.verdict_at = step, stop, time.monotonic()
                out.records.append(StepRecord(step.name, step.host, "skipped", 0.0, str(stop)))
                self.compensate(done, out)
                return out
            t0 = time.monotonic()
            try:
                self._log(step, "start")
            except Exception as exc:  # write-ahead: no record, no step
                reason = self._fail(step, exc, 0.0, out)
                if step.after_pivot:
                    out.warnings.append(f"{step.key}: {reason}")
                    break
                out.failed, out.error, out.verdict_at = step, exc, time.monotonic()
                self.compensate(done, out)
                return out
            try:
                self.reporter.step_started(step.name, step.host)
                detail = self.execute(step.do)
            except (Exception, KeyboardInterrupt) as exc:
                reason = self._fail(step, exc, time.monotonic() - t0, out)
                if step.after_pivot:
                    out.warnings.append(f"{step.key}: {reason}")
                    if isinstance(exc, KeyboardInterrupt):
                        break
                    continue
                applied = not not_applied(exc)
                if _switches(step.do) and applied:
                    out.switched = True  # the reload may have happened: users may have seen it
                out.failed, out.error, out.verdict_at = step, exc, time.monotonic()
                self.compensate(done + ([step] if applied else []), out)
                return out
            seconds = time.monotonic() - t0
            try:
                self._log(step, "done", detail=detail)
            except Exception as exc:
                # the step ran; without a record of it the release must not go on
                out.records.append(StepRecord(step.name, step.host, "ok", seconds, detail))
                done.append(step)
                if _switches(step.do):
                    out.switched = True
                if step.after_pivot:
                    out.warnings.append(f"journal: {describe_error(exc)}")
                    continue
                out.failed, out.error, out.verdict_at = step, exc, time.monotonic()
                self.compensate(done, out)
                return out
            out.records.append(StepRecord(step.name, step.host, "ok", seconds, detail))
            self.reporter.step_finished(step.name, step.host, "ok", seconds, detail)
            done.append(step)
            if _switches(step.do):
                out.switched, out.switched_at = True, time.monotonic()
        return out

    def compensate(self, done: list[Step], out: SagaOutcome) -> None:
        """Undo ``done`` in reverse. Never interrupted; a journal that cannot be written
        does not stop an undo (users come first), it is reported."""
        for step in reversed(done):
            if step.undo is None:
                continue
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
                continue
            seconds = time.monotonic() - t0
            if _switches(step.undo):
                out.restored_at = time.monotonic()
            try:
                self._log(step, "undone", detail=detail)
            except Exception as exc:
                out.warnings.append(f"journal: {describe_error(exc)}")
            out.records.append(StepRecord(name, step.host, "undone", seconds, detail))
            self.reporter.step_finished(name, step.host, "ok", seconds, detail)
        out.compensated = not out.undo_errors
