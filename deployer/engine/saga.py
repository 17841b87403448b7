"""Run a saga: journal each step before and after it runs; on failure undo in reverse.

Steps marked ``after_pivot`` come after the commit point (the post-switch gate passed):
their failure is reported but never undoes the release.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployer.errors import DeployerError
from deployer.plan import Action, Step, Switch
from deployer.ports import Journal, Reporter


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
    records: list[StepRecord] = field(default_factory=list)

    @property
    def restore_seconds(self) -> float | None:
        if self.verdict_at is None or self.restored_at is None:
            return None
        return round(self.restored_at - self.verdict_at, 3)


def _now() -> float:
    return time.time()


class Saga:
    def __init__(
        self,
        op_id: str,
        steps: list[Step],
        execute: Callable[[Action], str],
        journal: Journal,
        reporter: Reporter,
    ):
        self.op_id, self.steps, self.execute = op_id, steps, execute
        self.journal, self.reporter = journal, reporter

    def _log(self, step: Step, phase: str, **extra: Any) -> None:
        self.journal.append(
            {
                "id": self.op_id,
                "event": "step",
                "step": step.key,
                "phase": phase,
                "ts": _now(),
                **extra,
            }
        )

    def run(self) -> SagaOutcome:
        out = SagaOutcome()
        done: list[Step] = []
        for step in self.steps:
            self._log(step, "start")
            self.reporter.step_started(step.name, step.host)
            t0 = time.monotonic()
            try:
                detail = self.execute(step.do)
            except (DeployerError, KeyboardInterrupt) as exc:
                seconds = time.monotonic() - t0
                reason = str(exc) or type(exc).__name__
                self._log(step, "failed", error=reason)
                out.records.append(StepRecord(step.name, step.host, "failed", seconds, reason))
                self.reporter.step_finished(step.name, step.host, "failed", seconds, reason)
                if step.after_pivot:
                    out.warnings.append(f"{step.key}: {reason}")
                    if isinstance(exc, KeyboardInterrupt):
                        break
                    continue
                out.failed, out.error, out.verdict_at = step, exc, time.monotonic()
                self.compensate(done, out)
                return out
            seconds = time.monotonic() - t0
            self._log(step, "done", detail=detail)
            out.records.append(StepRecord(step.name, step.host, "ok", seconds, detail))
            self.reporter.step_finished(step.name, step.host, "ok", seconds, detail)
            done.append(step)
            if isinstance(step.do, Switch):
                out.switched = True
        return out

    def compensate(self, done: list[Step], out: SagaOutcome) -> None:
        for step in reversed(done):
            if step.undo is None:
                continue
            self._log(step, "undo-start")
            name = f"undo {step.name}"
            self.reporter.step_started(name, step.host)
            t0 = time.monotonic()
            try:
                detail = self.execute(step.undo)
            except (DeployerError, KeyboardInterrupt) as exc:
                seconds = time.monotonic() - t0
                self._log(step, "undo-failed", error=str(exc))
                out.undo_errors.append(f"{step.key}: {exc}")
                out.records.append(StepRecord(name, step.host, "undo-failed", seconds, str(exc)))
                self.reporter.step_finished(name, step.host, "failed", seconds, str(exc))
                continue
            seconds = time.monotonic() - t0
            if isinstance(step.undo, Switch):
                out.restored_at = time.monotonic()
            self._log(step, "undone", detail=detail)
            out.records.append(StepRecord(name, step.host, "undone", seconds, detail))
            self.reporter.step_finished(name, step.host, "ok", seconds, detail)
        out.compensated = not out.undo_errors
