"""What an operation reports (release, rollback, drill, recover, unlock): its result, its id,
and each app host's part. The lower half of the engine's operations: the drill and the
recovery import it, and the operations module imports neither of them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from deployer.engine.outcome import SagaOutcome


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
    drill: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    #: per app host: what happened there (a fleet is never left mixed without saying so)
    hosts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["duration_s"] = round((self.ended_at or time.time()) - self.started_at, 3)
        return d


def host_results(pb: Any, out: SagaOutcome) -> list[dict[str, Any]]:
    """Each app host's part: ``released`` (serves the new version), ``left_out`` (its
    failure was within max_failures: out of the router), ``aborted`` (nothing reached
    users), ``switched_back``; with the error seen there, if any."""
    if getattr(pb, "fleet", None) is None:
        return []
    batches = pb.fleet.batches([h.name for h in pb.app_hosts])
    batch_of = {h: i for i, b in enumerate(batches, 1) for h in b}
    errors: dict[str, str] = {}
    for r in out.records:
        if r.host and r.status in ("failed", "undo-failed") and r.host not in errors:
            errors[r.host] = f"{r.name}: {r.detail}"
    hosts = []
    for h in pb.app_hosts:
        if h.name in out.left_out:
            state = "left_out"
        elif out.failed is None:
            state = "released"
        else:
            state = "switched_back" if out.switched else "aborted"
        hosts.append(
            {
                "host": h.name,
                "address": h.reach,
                "batch": batch_of.get(h.name),
                "outcome": state,
                "error": out.left_out.get(h.name) or errors.get(h.name),
            }
        )
    return hosts


def new_id(prefix: str = "") -> str:
    return f"{prefix}{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
