"""Gate verdicts as plain values: what a probe must show, and the statistics of a gate."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Expectation:
    status: int
    body: str | None = None
    json_fields: Mapping[str, Any] | None = None

    def check(self, status: int, body: str) -> str | None:
        """Why a response fails this expectation, or None when it passes."""
        if status != self.status:
            return f"status {status}, expected {self.status}"
        if self.body is not None and self.body not in body:
            return f"body lacks {self.body!r}"
        if self.json_fields:
            try:
                doc = json.loads(body)
            except ValueError:
                return "body is not JSON"
            for path, want in self.json_fields.items():
                got = dig(doc, path)
                if got != want:
                    return f"{path} is {got!r}, expected {want!r}"
        return None


def dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def timeline(samples: Sequence[tuple[float, bool, float]], buckets: int = 60) -> list[list[float]]:
    """Samples in at most ``buckets`` equal slices of time (at least 0.05 s each)."""
    end = max(t for t, _, _ in samples)
    width = max(0.05, round(end / buckets, 2))
    out: dict[int, list[tuple[bool, float]]] = {}
    for t, ok, ms in samples:
        out.setdefault(int(t // width), []).append((ok, ms))
    return [
        [
            round(i * width, 2),
            len(out.get(i, [])),
            sum(1 for ok, _ in out.get(i, []) if not ok),
            round(percentile([ms for _, ms in out.get(i, [])], 95), 1),
        ]
        for i in range(int(end // width) + 1)
    ]


@dataclass
class GateResult:
    name: str
    target: str
    passed: bool
    probes: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    seconds: float = 0.0
    window_s: float = 0.0
    reason: str = ""
    last_failure: str = ""
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    #: (seconds since the gate started, ok, ms) per answered sample (not stored: see timeline)
    samples: list[tuple[float, bool, float]] = field(default_factory=list, repr=False)
    #: [bucket start s, requests, errors, p95 ms] over the window, for `deployer report`
    timeline: list[list[float]] = field(default_factory=list)

    def finish(self) -> GateResult:
        self.p50_ms = round(percentile(self.latencies_ms, 50), 2)
        self.p95_ms = round(percentile(self.latencies_ms, 95), 2)
        self.p99_ms = round(percentile(self.latencies_ms, 99), 2)
        if self.samples:
            self.timeline = timeline(self.samples)
        return self

    @property
    def error_rate(self) -> float:
        return self.errors / self.probes if self.probes else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("latencies_ms")
        out.pop("samples")
        out["error_rate"] = round(self.error_rate, 4)
        return out

    def summary(self) -> str:
        text = (
            f"{self.probes} probes, {self.errors} errors, p50 {self.p50_ms:.1f} ms, "
            f"p95 {self.p95_ms:.1f} ms"
        )
        return f"{text}: {self.reason}" if self.reason else text
