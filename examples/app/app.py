#!/usr/bin/env python3
"""A tiny app for deployer's demo and tests: reports its version and color.

GET /        -> 200 {"app": ..., "version": ..., "color": ..., "pid": ...}
GET /health  -> 200 {"status": "ok", ...}, or 503 once unhealthy

--unhealthy-after N makes the app unhealthy after N health checks (0: from the start,
-1: never), so a release can pass its pre-switch gate and fail the post-switch one.
When unhealthy, / answers 500 too. --fail-every N makes every Nth request to / answer 500
(10: a tenth of them); --slow-ms MS delays every answer to / (a release that is slow, not
broken). Stdlib only, so it runs on any host with python3; when the prometheus_client library
is importable, GET /metrics serves Prometheus metrics: `app_requests_total{status, version,
color}` and the `app_request_seconds{version, color}` histogram (requests to / and /health).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(
        self, version: str, color: str, unhealthy_after: int, slow_after: int = -1, delay: float = 0
    ):
        self.version, self.color = version, color
        self.unhealthy_after = unhealthy_after
        self.slow_after, self.delay = slow_after, delay
        self.health_checks = 0
        self.lock = threading.Lock()
        self.fail_every, self.slow_ms, self.served = 0, 0.0, 0

    def fails_now(self) -> bool:
        """Every ``fail_every``-th request to / fails."""
        with self.lock:
            self.served += 1
            return self.fail_every > 0 and self.served % self.fail_every == 0

    def slow(self) -> bool:
        with self.lock:
            return 0 <= self.slow_after < self.health_checks

    def healthy(self, count: bool) -> bool:
        with self.lock:
            if count:
                self.health_checks += 1
            if self.unhealthy_after < 0:
                return True
            return self.health_checks <= self.unhealthy_after


class Metrics:
    """prometheus_client's counters and histogram, when the library is there."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            self.prom = None
            return
        self.prom = prom
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter(
            "app_requests", "Requests answered", ["status", "version", "color"],
            registry=self.registry,
        )  # fmt: skip
        self.seconds = prom.Histogram(
            "app_request_seconds", "Time to answer", ["version", "color"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )  # fmt: skip

    def observe(self, state: State, status: int, seconds: float) -> None:
        if self.prom is not None:
            self.requests.labels(str(status), state.version, state.color).inc()
            self.seconds.labels(state.version, state.color).observe(seconds)

    def exposition(self) -> bytes | None:
        return None if self.prom is None else bytes(self.prom.generate_latest(self.registry))


METRICS = Metrics()


class Database:
    """With APP_DB_URL and APP_DB_COLUMN set (psycopg importable), every answer reads that
    column of `accounts`: a version built for a column the schema no longer has fails,
    which is what an expand/contract release must never let users see. One connection per
    server thread (nginx keeps its connections alive)."""

    def __init__(self) -> None:
        self.url = os.environ.get("APP_DB_URL") or ""
        column = os.environ.get("APP_DB_COLUMN") or ""
        self.column = column if column.isidentifier() else ""
        self.local = threading.local()

    def check(self) -> str | None:
        """None when the read works (or no database is configured), else why not."""
        if not (self.url and self.column):
            return None
        try:
            import psycopg

            conn = getattr(self.local, "conn", None)
            if conn is None or conn.closed:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
                self.local.conn = conn
            conn.execute(f"SELECT {self.column} FROM accounts LIMIT 1").fetchall()
            return None
        except Exception as exc:  # any failure is the answer: this version cannot serve
            self.local.conn = None
            return f"database: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


DB = Database()


def handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: avoid a 40 ms stall

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            self.started = time.monotonic()
            if path == "/metrics":
                body = METRICS.exposition()
                if body is None:
                    self._send(404, {"error": "prometheus_client is not installed"})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            doc = {
                "app": "demo",
                "version": state.version,
                "color": state.color,
                "pid": os.getpid(),
            }
            db = DB.check() if path in ("/health", "/") else None
            if path == "/health":
                ok = state.healthy(count=True) and db is None
                if state.slow():
                    time.sleep(state.delay)
                doc["status"] = "ok" if ok else "unhealthy"
                self._send(200 if ok else 503, doc if db is None else {**doc, "error": db})
            elif path == "/":
                ok = state.healthy(count=False) and not state.fails_now() and db is None
                if state.slow_ms:
                    time.sleep(state.slow_ms / 1000)
                self._send(200 if ok else 500, doc if ok else {**doc, "error": db or "broken"})
            else:
                self._send(404, {"error": "not found"})

        def _send(self, status: int, doc: dict[str, object]) -> None:
            METRICS.observe(state, status, time.monotonic() - getattr(self, "started", 0.0))
            body = (json.dumps(doc) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--color", default="blue")
    parser.add_argument("--version", default=None)
    parser.add_argument("--unhealthy-after", type=int, default=-1)
    parser.add_argument(
        "--slow-after", type=int, default=-1, help="health checks before /health slows"
    )
    parser.add_argument(
        "--health-delay", type=float, default=0.0, help="seconds /health takes then"
    )
    parser.add_argument("--fail-every", type=int, default=0, help="every Nth / fails (0: none)")
    parser.add_argument("--slow-ms", type=float, default=0.0, help="ms each / takes")
    args = parser.parse_args()
    version = args.version
    if version is None:
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "VERSION"), encoding="utf-8") as fh:
            version = fh.read().strip()
    state = State(version, args.color, args.unhealthy_after, args.slow_after, args.health_delay)
    state.fail_every, state.slow_ms = args.fail_every, args.slow_ms
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.block_on_close = False
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer((args.host, args.port), handler(state))

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.1)
    server.server_close()


if __name__ == "__main__":
    main()
