"""Traffic through the router at a steady rate, on a thread: what users would have seen.

A drill watches from its start to its end, so its record says how many requests the new
build answered, how many failed, and when. Every loop is bounded in time and count.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    status: int | None  # None: no response (refused, reset, timeout)
    version: str | None  # the body's JSON "version", when it has one


class RouterWatch:
    def __init__(
        self,
        url: str,
        *,
        rate: float,
        limit: float,
        timeout: float = 2.0,
        headers: dict[str, str] | None = None,
    ):
        self.url, self.interval, self.limit, self.timeout = url, 1.0 / rate, limit, timeout
        self.headers = {"Cache-Control": "no-cache", **(headers or {})}
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RouterWatch:
        self._thread = threading.Thread(target=self._loop, name="router-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 1)

    def _loop(self) -> None:
        started = time.monotonic()
        most = int(self.limit / self.interval) + 1
        if not self.url:
            return
        from deployer.adapters.resolve import client as make_client

        with make_client(timeout=self.timeout) as client:
            for _ in range(most):
                if self._stop.is_set() or time.monotonic() - started > self.limit:
                    return
                t0 = time.monotonic()
                self.samples.append(self._one(client, t0))
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def _one(self, client: httpx.Client, at: float) -> Sample:
        try:
            resp = client.get(self.url, headers=self.headers)
        except httpx.HTTPError:
            return Sample(at, None, None)
        version = None
        try:
            body = resp.json()
            if isinstance(body, dict) and isinstance(body.get("version"), str):
                version = body["version"][:64]
        except ValueError:
            pass
        return Sample(at, resp.status_code, version)

    def summary(self, switched_at: float | None, restored_at: float | None) -> dict[str, Any]:
        """Counts over the whole watch and over the time the drill's build was live
        (from the switch to the switch back)."""
        samples = list(self.samples)

        def count(part: list[Sample]) -> dict[str, Any]:
            failed = [s for s in part if s.status is None or not 200 <= s.status < 300]
            return {
                "requests": len(part),
                "errors": len(failed),
                "versions": dict(Counter(s.version or "-" for s in part if s.status)),
            }

        doc = {"url": self.url, "rate": round(1 / self.interval, 3), **count(samples)}
        if switched_at is not None:
            end = restored_at if restored_at is not None else float("inf")
            doc["while_switched"] = count([s for s in samples if switched_at <= s.at <= end])
        return doc
