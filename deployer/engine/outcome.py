"""What a saga leaves: each step's record and the outcome of the whole run, and how an error
reads in them. The bottom of the engine: the saga and its lanes both import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deployer.errors import DeployerError
from deployer.plan import Step


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
    #: hosts the batch policy let the release go on without: host -> what failed there
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def restore_seconds(self) -> float | None:
        if self.verdict_at is None or self.restored_at is None:
            return None
        return round(self.restored_at - self.verdict_at, 3)


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, Exception) and not _expected(exc):
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text or type(exc).__name__


def _expected(exc: BaseException) -> bool:

    return isinstance(exc, DeployerError)


def not_applied(exc: BaseException) -> bool:
    """True when the error proves the step changed nothing (so it needs no undo)."""
    return bool(getattr(exc, "not_applied", False))
