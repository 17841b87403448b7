"""Health gates over HTTP with httpx; retries are bounded by tenacity.

Pass an ``httpx.Client`` built on ``httpx.MockTransport`` to test a gate without a network;
the end-to-end tests use the real example app.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)

from deployer.gates import Expectation, GateResult
from deployer.playbook.models import PostSwitchGate, PreSwitchGate


def _client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)


def probe(client: httpx.Client, url: str, expect: Expectation) -> tuple[str | None, float]:
    """One request: (why it failed or None, latency in ms)."""
    start = time.perf_counter()
    try:
        resp = client.get(url, headers={"Cache-Control": "no-cache"})
        failure = expect.check(resp.status_code, resp.text)
    except httpx.HTTPError as exc:
        failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return failure, (time.perf_counter() - start) * 1000


def pre_switch(
    url: str, spec: PreSwitchGate, expect: Expectation, *, client: httpx.Client | None = None
) -> GateResult:
    """Probe ``url`` until ``spec.successes`` consecutive passes, within ``spec.budget``."""
    result = GateResult("pre_switch", url, passed=False)
    own = client is None
    http = client or _client(spec.timeout)
    streak = 0
    started = time.monotonic()

    def attempt() -> int:
        nonlocal streak
        failure, ms = probe(http, url, expect)
        result.probes += 1
        result.latencies_ms.append(ms)
        if failure is None:
            streak += 1
        else:
            streak = 0
            result.errors += 1
            result.last_failure = failure
        return streak

    max_attempts = int(spec.budget / max(spec.interval, 0.01)) + spec.successes + 1
    retrying = Retrying(
        stop=stop_after_delay(spec.budget) | stop_after_attempt(max_attempts),
        wait=wait_fixed(spec.interval),
        retry=retry_if_result(lambda s: s < spec.successes),
        reraise=False,
    )
    try:
        retrying(attempt)
        result.passed = True
    except RetryError:
        result.reason = (
            f"no {spec.successes} consecutive successes within {spec.budget:g}s "
            f"(last: {result.last_failure or 'none'})"
        )
    finally:
        if own:
            http.close()
    result.seconds = round(time.monotonic() - started, 3)
    return result.finish()


def post_switch(
    url: str,
    spec: PostSwitchGate,
    expect: Expectation,
    *,
    client: httpx.Client | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> GateResult:
    """Sample ``url`` at ``spec.rate`` over ``spec.window``; fail as soon as the error budget
    for the whole window is spent (so a bad release is rolled back in about a second), or at
    the end if the p95 latency is above ``spec.max_p95``."""
    result = GateResult("post_switch", url, passed=False, window_s=spec.window)
    own = client is None
    http = client or _client(spec.timeout)
    planned = max(1, round(spec.window * spec.rate))
    allowed_errors = int(spec.max_error_rate * planned)
    started = clock()
    try:
        for i in range(planned):
            due = started + i / spec.rate
            delay = due - clock()
            if delay > 0:
                sleep(delay)
            failure, ms = probe(http, url, expect)
            result.probes += 1
            result.latencies_ms.append(ms)
            if failure is not None:
                result.errors += 1
                result.last_failure = failure
                if result.errors > allowed_errors:
                    result.reason = (
                        f"{result.errors} of {result.probes} samples failed; at most "
                        f"{allowed_errors} of {planned} allowed "
                        f"(last: {failure})"
                    )
                    break
    finally:
        if own:
            http.close()
    result.seconds = round(clock() - started, 3)
    result.finish()
    if not result.reason and result.p95_ms > spec.max_p95 * 1000:
        result.reason = f"p95 latency {result.p95_ms:.0f} ms above {spec.max_p95 * 1000:.0f} ms"
    result.passed = not result.reason
    return result


def wait_serving(
    url: str,
    expect: Expectation,
    *,
    attempts: int = 50,
    interval: float = 0.1,
    timeout: float = 2.0,
) -> GateResult:
    """After a switch back: confirm the router serves a healthy response again (bounded)."""
    result = GateResult("verify", url, passed=False)
    started = time.monotonic()
    with _client(timeout) as http:
        for _ in range(attempts):
            failure, ms = probe(http, url, expect)
            result.probes += 1
            result.latencies_ms.append(ms)
            if failure is None:
                result.passed = True
                break
            result.errors += 1
            result.last_failure = failure
            time.sleep(interval)
    result.seconds = round(time.monotonic() - started, 3)
    if not result.passed:
        result.reason = f"router still failing after {attempts} probes ({result.last_failure})"
    return result.finish()
