"""Health gates through httpx.MockTransport (the end-to-end ones use the real app)."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest

from deployer.adapters import http
from deployer.gates import Expectation, percentile
from deployer.playbook.models import PostSwitchGate, PreSwitchGate


def _client(statuses: list[int], body: dict | None = None) -> tuple[httpx.Client, list[int]]:
    calls: list[int] = []
    seq = itertools.chain(statuses, itertools.repeat(statuses[-1]))

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(next(seq), json=body or {"version": "v2"})

    return httpx.Client(transport=httpx.MockTransport(handler)), calls


def test_pre_switch_needs_consecutive_successes() -> None:
    client, calls = _client([200, 500, 200, 200, 200])
    spec = PreSwitchGate(successes=3, interval=0, budget=5)
    res = http.pre_switch("http://idle/health", spec, Expectation(200), client=client)
    assert res.passed and res.probes == 5 and res.errors == 1 and len(calls) == 5


def test_pre_switch_fails_when_budget_runs_out_and_says_why() -> None:
    client, calls = _client([503])
    spec = PreSwitchGate(successes=2, interval=0.01, budget=0.2)
    res = http.pre_switch("http://idle/health", spec, Expectation(200), client=client)
    assert not res.passed
    assert "no 2 consecutive successes within 0.2s" in res.reason
    assert "status 503, expected 200" in res.reason
    assert len(calls) <= int(0.2 / 0.01) + 3  # bounded


def test_pre_switch_checks_json_fields() -> None:
    client, _ = _client([200], body={"version": "v1"})
    spec = PreSwitchGate(successes=1, interval=0, budget=0.05)
    res = http.pre_switch(
        "http://idle/health", spec, Expectation(200, json_fields={"version": "v2"}), client=client
    )
    assert not res.passed and "version is 'v1', expected 'v2'" in res.last_failure


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_post_switch_samples_whole_window_at_rate() -> None:
    client, calls = _client([200])
    clock = FakeClock()
    spec = PostSwitchGate(window=3, rate=10, max_error_rate=0.1)
    res = http.post_switch(
        "http://router/health",
        spec,
        Expectation(200),
        client=client,
        clock=clock,
        sleep=clock.sleep,
        executor=http.INLINE,
    )
    assert res.passed and res.probes == 30 and len(calls) == 30
    assert 2.8 <= clock.now <= 3.0


def test_post_switch_fails_as_soon_as_error_budget_is_spent() -> None:
    client, _ = _client([200, 200, 500])
    clock = FakeClock()
    spec = PostSwitchGate(window=30, rate=10, max_error_rate=0.01)  # 3 errors allowed of 300
    res = http.post_switch(
        "http://router/health",
        spec,
        Expectation(200),
        client=client,
        clock=clock,
        sleep=clock.sleep,
        executor=http.INLINE,
    )
    assert not res.passed and res.probes == 6 and res.errors == 4
    assert clock.now < 1.0  # verdict in well under a second, not after the 30 s window
    assert "4 of 6 samples failed; at most 3 of 300 allowed" in res.reason


def test_post_switch_fails_on_p95_latency() -> None:
    clock = FakeClock()

    def slow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(slow))
    spec = PostSwitchGate(window=1, rate=10, max_p95=0)
    res = http.post_switch(
        "http://router/health",
        spec,
        Expectation(200),
        client=client,
        clock=clock,
        sleep=clock.sleep,
        executor=http.INLINE,
    )
    assert not res.passed and res.reason.startswith("p95 latency")


def test_connection_errors_count_as_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    spec = PreSwitchGate(successes=1, interval=0.01, budget=0.05)
    res = http.pre_switch("http://idle/health", spec, Expectation(200), client=client)
    assert not res.passed and "ConnectError" in res.last_failure


def test_percentile_nearest_rank() -> None:
    assert percentile([], 95) == 0.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([5.0], 50) == 5.0


def test_expectation_body_and_status() -> None:
    e = Expectation(200, body="ok")
    assert e.check(200, "all ok") is None
    assert e.check(500, "ok") == "status 500, expected 200"
    assert e.check(200, "nope") == "body lacks 'ok'"
    assert Expectation(200, json_fields={"a.b": 1}).check(200, json.dumps({"a": {"b": 1}})) is None


def test_post_switch_ends_by_window_plus_timeout_when_every_answer_is_slow() -> None:
    import time

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.4)
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(slow))
    spec = PostSwitchGate(window=2, rate=10, max_p95=0.1, timeout=0.5, max_error_rate=1)
    started = time.monotonic()
    res = http.post_switch("http://router/health", spec, Expectation(200), client=client)
    assert time.monotonic() - started < 1.0  # judged on the first slow sample, not at the end
    assert not res.passed and "p95 latency above 100 ms" in res.reason


def test_post_switch_fires_probes_on_schedule_not_back_to_back() -> None:
    import time

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(slow))
    spec = PostSwitchGate(window=1, rate=20, max_p95=1, timeout=1)
    started = time.monotonic()
    res = http.post_switch("http://router/health", spec, Expectation(200), client=client)
    assert res.passed and res.probes == 20
    assert time.monotonic() - started < 1.6  # back to back would take 20 x 0.3 = 6 s


def test_an_interrupted_post_switch_gate_keeps_its_samples() -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    sink: list = []
    clock = FakeClock()
    spec = PostSwitchGate(window=3, rate=10)
    with pytest.raises(KeyboardInterrupt):
        http.post_switch(
            "http://r/h",
            spec,
            Expectation(200),
            client=client,
            clock=clock,
            sleep=clock.sleep,
            executor=http.INLINE,
            sink=sink,
        )
    assert sink[0].probes == 4 and sink[0].reason == "interrupted"


def test_pre_switch_fails_at_once_when_the_process_is_gone() -> None:
    client, calls = _client([503])
    spec = PreSwitchGate(successes=3, interval=0.01, budget=30)
    res = http.pre_switch(
        "http://idle/health", spec, Expectation(200), client=client, alive=lambda: False
    )
    assert not res.passed and "not running" in res.reason and len(calls) == 1


def test_pre_switch_latency_limit() -> None:
    client, _ = _client([200])
    spec = PreSwitchGate(successes=2, interval=0, budget=1, max_p95=0)
    res = http.pre_switch("http://idle/health", spec, Expectation(200), client=client)
    assert not res.passed and "p95 latency" in res.reason
