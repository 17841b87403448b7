"""The judge's Prometheus source (deployer/analysis/prom_counts.py) against a local HTTP
server that answers as Prometheus's instant-query API does, and as it should not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from deployer.analysis.prom_counts import PromCounts


class Answers:
    """What the server answers per query, changed by the test between looks."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}


@pytest.fixture
def prom() -> Iterator[tuple[str, Answers]]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)["query"][0]
            value = answers.values.get(query)
            if isinstance(value, dict):  # a whole document, as given
                doc = value
            elif value is None:
                doc = {"status": "success", "data": {"resultType": "vector", "result": []}}
            else:
                result = [{"metric": {}, "value": [1700000000.0, str(value)]}]
                doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


QUERIES = {
    "canary": {"requests": "cr", "errors": "ce", "slow": "cs"},
    "stable": {"requests": "sr", "errors": "se", "slow": "ss"},
}


def test_counts_are_the_differences_since_the_step_began(prom: tuple[str, Answers]) -> None:
    url, answers = prom
    answers.values = {"cr": 100, "ce": 1, "cs": 5, "sr": 1000, "se": 10, "ss": 50}
    source = PromCounts(url, QUERIES, 2.0)
    source.start()
    answers.values = {"cr": 130, "ce": 4, "cs": 9, "sr": 1270, "se": 11, "ss": 60}
    got = source.samples()
    assert got is not None
    canary, stable = got
    assert (canary.requests, canary.errors, canary.slow) == (30, 3, 4)
    assert (stable.requests, stable.errors, stable.slow) == (270, 1, 10)
    assert not canary.timed and canary.latencies_ms == []


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (None, "empty result"),
        ("NaN", "not a count"),
        (-3, "not a count"),
        ({"status": "error", "error": "parse error at char 3"}, "parse error"),
        ({"status": "success", "data": {"result": [{"value": "x"}]}}, "no usable answer"),
        (["not", "a", "document"], "no usable answer"),
        ({"status": "success", "data": {"result": [{"value": [0, "1"]}] * 20000}}, "over 256 KiB"),
    ],
)
def test_an_answer_that_is_not_a_count_is_no_data_never_a_number(
    prom: tuple[str, Answers], answer: Any, said: str
) -> None:
    url, answers = prom
    answers.values = {"cr": 100, "ce": 1, "cs": 5, "sr": 1000, "se": 10, "ss": 50}
    source = PromCounts(url, QUERIES, 2.0)
    source.start()
    answers.values["ce"] = answer
    assert source.samples() is None
    assert said in source.problem


def test_a_counter_that_went_down_restarts_the_count(prom: tuple[str, Answers]) -> None:
    url, answers = prom
    answers.values = {"cr": 100, "ce": 1, "cs": 5, "sr": 1000, "se": 10, "ss": 50}
    source = PromCounts(url, QUERIES, 2.0)
    source.start()
    answers.values["cr"] = 7  # the canary restarted
    assert source.samples() is None and "went down" in source.problem
    answers.values["cr"] = 17
    got = source.samples()
    assert got is not None and got[0].requests == 10 and not source.problem


def test_an_unreachable_server_is_no_data(prom: tuple[str, Answers]) -> None:
    source = PromCounts("http://127.0.0.1:9", QUERIES, 0.5)
    source.start()
    assert source.samples() is None and "no usable answer" in source.problem
