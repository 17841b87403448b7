"""The canary judge fed from Prometheus: two queries per count, the canary's and the stable
color's, over the same interval.

Each query (``analysis.prometheus.judge``: ``requests``, ``errors``, optionally ``slow``) is
rendered once per side (``${color}`` and ``${version}`` are that side's) and must return a
**cumulative count** (a counter, summed: ``sum(app_requests_total{version="${version}"})``).
deployer reads every query when the step begins and again at each look; the differences are
the interval's requests, errors and slow requests for each side, and the same judge as for
the access log (deployer/analysis/judge.py) decides on them. Counting from the step's own
start, not ``increase(...[window])``, keeps both sides on exactly the same interval and
avoids ``increase``'s extrapolation at the window's edges.

What Prometheus answers is input: a value that is not a finite number, a missing series or
a counter that went down (a restart) makes the look "no data" (said in the verdict), never
a number made up; the judge then has nothing new and the step waits, up to ``max_pause``.
Instant queries through ``GET /api/v1/query`` (Prometheus's HTTP API documentation,
"Instant queries": ``{"status": "success", "data": {"resultType": "vector", "result":
[{"metric": {...}, "value": [<unix time>, "<number as a string>"]}]}}``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from deployer.analysis.judge import Sample

#: the counts, in the order they are read
COUNTS = ("requests", "errors", "slow")
#: the most of one answer read (a summed counter is one sample: a few hundred bytes)
MAX_ANSWER = 256 * 1024


class PromCounts:
    """Reads ``queries`` ({side: {count: PromQL}}, sides "canary" and "stable") and returns
    the counts since :meth:`start` as two :class:`Sample` objects."""

    def __init__(self, url: str, queries: dict[str, dict[str, str]], timeout: float):
        self.url = url.rstrip("/") + "/api/v1/query"
        self.queries, self.timeout = queries, timeout
        self.base: dict[str, dict[str, float]] | None = None
        self.problem = ""

    def _value(self, client: Any, query: str) -> float:
        body = b""
        with client.stream("GET", self.url, params={"query": query}) as resp:
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER:  # a count is a few bytes: never read a flood
                    raise ValueError(f"an answer over {MAX_ANSWER // 1024} KiB")
        doc = json.loads(body)
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise ValueError(f"Prometheus said {str(doc.get('error', 'no success'))[:200]!r}")
        result = (doc.get("data") or {}).get("result")
        if not isinstance(result, list) or not result:
            raise ValueError("empty result")
        total = 0.0
        for series in result:
            value = float(series["value"][1])
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"not a count: {value}")
            total += value
        return total

    def _read(self) -> dict[str, dict[str, float]] | None:
        import httpx

        out: dict[str, dict[str, float]] = {}
        try:
            with httpx.Client(timeout=self.timeout, trust_env=False) as client:
                for side, counts in self.queries.items():
                    out[side] = {
                        name: self._value(client, counts[name]) for name in COUNTS if name in counts
                    }
        except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
            self.problem = f"Prometheus: no usable answer ({str(exc)[:200] or type(exc).__name__})"
            return None
        self.problem = ""
        return out

    def start(self) -> None:
        self.base = self._read()

    def samples(self) -> tuple[Sample, Sample] | None:
        """(canary, stable) since the step began, or None (:attr:`problem` says why)."""
        if self.base is None:  # the first read failed: the next good one is the start
            self.start()
            return None
        now = self._read()
        if now is None:
            return None
        made: list[Sample] = []
        for side in ("canary", "stable"):
            delta = {k: now[side][k] - self.base[side][k] for k in now[side]}
            if any(v < 0 for v in delta.values()):  # a counter reset: count from here
                self.problem = f"Prometheus: a {side} counter went down (a restart?)"
                self.base = now
                return None
            requests = round(delta["requests"])
            errors = min(requests, round(delta.get("errors", 0)))
            slow = round(delta["slow"]) if "slow" in delta else None
            made.append(Sample(requests, errors, [], slow=slow, timed=False))
        return made[0], made[1]
