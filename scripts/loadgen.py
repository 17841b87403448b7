"""A bounded HTTP load loop for the zero-downtime tests (bench/ uses wrk instead).

Threads share a target rate; each request is a GET that is retried once when a keep-alive
connection was closed under it (what any well-behaved client does for idempotent requests).
Stops after ``seconds`` or ``max_requests``, whichever comes first, or when ``stop`` is set.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# what a closed keep-alive connection looks like to http.client
RETRYABLE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    http.client.BadStatusLine,
)


#: a request this slow (seconds) is listed in ``LoadStats.slow``
SLOW = 0.5


@dataclass
class LoadStats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    seconds: float = 0.0
    #: (start, seconds) of each request that took at least ``SLOW`` seconds (start: monotonic)
    slow: list[tuple[float, float]] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Load:
    def __init__(
        self,
        url: str,
        *,
        rate: float = 300,
        threads: int = 8,
        seconds: float = 60,
        max_requests: int = 50_000,
    ):
        self.url, self.rate, self.threads = url, rate, threads
        self.seconds, self.max_requests = seconds, max_requests
        self.stats = LoadStats()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _connect(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        return http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=5
        )

    def _one(self, conn: http.client.HTTPConnection) -> http.client.HTTPConnection:
        began = time.monotonic()
        try:
            return self._request(conn)
        finally:
            took = time.monotonic() - began
            if took >= SLOW:
                with self._lock:
                    self.stats.slow.append((began, took))

    def _request(self, conn: http.client.HTTPConnection) -> http.client.HTTPConnection:
        path = urlsplit(self.url).path or "/"
        for attempt in (1, 2):
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
            except RETRYABLE as exc:
                conn.close()
                conn = self._connect()
                if attempt == 1:
                    with self._lock:
                        self.stats.retries += 1
                    continue
                self._record(None, f"{type(exc).__name__}: {exc}", "")
                return conn
            except OSError as exc:
                conn.close()
                self._record(None, f"{type(exc).__name__}: {exc}", "")
                return self._connect()
            version = ""
            if resp.status == 200:
                try:
                    version = str(json.loads(body).get("version", ""))
                except ValueError:
                    version = "?"
            if resp.will_close:
                conn.close()
                conn = self._connect()
            self._record(resp.status, None, version)
            return conn
        return conn

    def _record(self, status: int | None, failure: str | None, version: str) -> None:
        with self._lock:
            self.stats.requests += 1
            if status is not None:
                self.stats.statuses[status] += 1
            if failure is not None and len(self.stats.failures) < 50:
                self.stats.failures.append(failure)
            if version:
                self.stats.versions[version] += 1

    def _worker(self, index: int, started: float) -> None:
        interval = self.threads / self.rate
        next_at = started + index * interval / self.threads
        conn = self._connect()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if now - started > self.seconds or self.stats.requests >= self.max_requests:
                    return
                if next_at > now:
                    time.sleep(next_at - now)
                next_at += interval
                conn = self._one(conn)
        finally:
            conn.close()

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for i in range(self.threads):
            t = threading.Thread(target=self._worker, args=(i, self._started), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._workers:
            t.join(timeout=10)
        self.stats.seconds = time.monotonic() - self._started
