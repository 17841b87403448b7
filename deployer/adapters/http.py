"""Health gates over HTTP with httpx; retries are bounded by tenacity.

Pass an ``httpx.Client`` built on ``httpx.MockTransport`` to test a gate without a network;
the end-to-end tests use the real example app.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)

from deployer import progress
from deployer.gates import Expectation, GateResult, percentile
from deployer.playbook.models import PostSwitchGate, PreSwitchGate


def _client(timeout: float, headers: dict[str, str] | None = None) -> httpx.Client:
    """Probes' client; ``headers`` go with every probe (a Vercel protection bypass)."""
    from deployer.adapters.resolve import client

    return client(timeout=timeout, headers=headers or {})


def probe(client: httpx.Client, url: str, expect: Expectation) -> tuple[str | None, float]:
    """One request: (why it failed or None, latency in ms)."""
    start = time.perf_counter()
    try:
        resp = client.get(url, headers={"Cache-Control": "no-cache"})
        failure = expect.check(resp.status_code, resp.text)
    except httpx.HTTPError as exc:
        failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return failure, (time.perf_counter() - start) * 1000


def probe_each(urls: dict[str, str], expect: Expectation, timeout: float) -> dict[str, str]:
    """One probe of each URL, all at once: name -> "ok" or why not (a fleet's status, or
    the hosts to name when a gate through the router failed)."""
    from concurrent.futures import ThreadPoolExecutor

    if not urls:
        return {}

    def one(url: str) -> str:
        with _client(timeout) as client:
            failure, _ = probe(client, url, expect)
        return failure or "ok"

    with ThreadPoolExecutor(min(len(urls), 32), thread_name_prefix="probe") as pool:
        results = list(pool.map(one, urls.values()))
    return dict(zip(urls, results, strict=True))


class _Gone(Exception):
    """The service is not running (``alive`` said False), or its host is lost (a reason)."""


def pre_switch(
    url: str,
    spec: PreSwitchGate,
    expect: Expectation,
    *,
    client: httpx.Client | None = None,
    alive: Callable[[], bool | str] | None = None,
    headers: dict[str, str] | None = None,
    cancel: Callable[[], None] | None = None,
) -> GateResult:
    """Probe ``url`` until ``spec.successes`` consecutive passes, within ``spec.budget``.

    ``cancel`` is called before each probe and may raise (a pending signal, seen from a
    host's lane, which the signal handler cannot interrupt).

    After a failed probe, ``alive`` (the service's status command) is asked, at most once a
    second: a process that is gone (False), or a host that is lost (a string: why), fails
    the gate at once instead of after the budget.
    With ``spec.max_p95``, the passing probes' p95 latency must be under it too.
    """
    result = GateResult("pre_switch", url, passed=False)
    own = client is None
    http = client or _client(spec.timeout, headers)
    streak = 0
    started = time.monotonic()
    asked = -1e9

    def attempt() -> int:
        nonlocal streak, asked
        if cancel is not None:
            cancel()
        failure, ms = probe(http, url, expect)
        result.probes += 1
        result.latencies_ms.append(ms)
        if progress.listening():
            progress.emit(
                "gate",
                name="pre_switch",
                url=url,
                probes=result.probes,
                errors=result.errors + (failure is not None),
                streak=streak + 1 if failure is None else 0,
                needed=spec.successes,
                p95_ms=percentile(result.latencies_ms, 95),
            )
        if failure is None:
            streak += 1
        else:
            streak = 0
            result.errors += 1
            result.last_failure = failure
            if alive is not None and time.monotonic() - asked >= 1.0:
                asked = time.monotonic()
                said = alive()
                if said is False or isinstance(said, str):
                    raise _Gone(said if isinstance(said, str) else "")
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
    except _Gone as gone:
        result.reason = (
            f"its host is lost ({gone}; last probe: {result.last_failure})"
            if str(gone)
            else f"the new process is not running (its status command failed; "
            f"last probe: {result.last_failure})"
        )
    finally:
        if own:
            http.close()
    result.seconds = round(time.monotonic() - started, 3)
    result.finish()
    if result.passed and spec.max_p95 is not None and result.p95_ms > spec.max_p95 * 1000:
        result.passed = False
        result.reason = f"p95 latency {result.p95_ms:.0f} ms above {spec.max_p95 * 1000:.0f} ms"
    return result


class _Inline:
    """An executor that runs each probe at once (deterministic unit tests with a fake clock)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


INLINE = _Inline()


def post_switch(
    url: str,
    spec: PostSwitchGate,
    expect: Expectation,
    *,
    client: httpx.Client | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    executor: Any = None,
    sink: list[GateResult] | None = None,
    headers: dict[str, str] | None = None,
) -> GateResult:
    """Sample ``url`` at ``spec.rate`` over ``spec.window``, each probe fired on schedule
    (in a thread pool, so a slow answer never delays the next probe), and judge as samples
    arrive: fail as soon as the window's error budget is spent, or as soon as enough samples
    are over ``max_p95`` that the window's p95 must be. The gate always ends by ``window +
    timeout``; a probe with no answer by then counts as failed. ``sink`` receives the result
    before any probe runs, so an interrupted gate keeps its samples."""
    result = GateResult("post_switch", url, passed=False, window_s=spec.window)
    if sink is not None:
        sink.append(result)
    own = client is None
    http = client or _client(spec.timeout, headers)
    planned = max(1, round(spec.window * spec.rate))
    allowed_errors = int(spec.max_error_rate * planned)
    max_ms = spec.max_p95 * 1000
    # nearest-rank p95 of `planned` samples exceeds max_ms once this many samples do
    slow_limit = planned - math.ceil(0.95 * planned) + 1
    slow = 0
    pool = executor or ThreadPoolExecutor(
        max_workers=min(64, max(2, math.ceil(spec.rate * spec.timeout) + 2)),
        thread_name_prefix="deployer-gate",
    )
    started = clock()
    shown = -1.0  # when the live view last got the gate's numbers
    deadline = started + spec.window + spec.timeout
    pending: set[Future[Any]] = set()
    fired = 0
    try:
        while not result.reason:
            now = clock()
            while fired < planned and started + fired / spec.rate <= now:
                pending.add(pool.submit(probe, http, url, expect))
                fired += 1
            for future in [f for f in pending if f.done()]:
                pending.discard(future)
                failure, ms = future.result()
                result.probes += 1
                result.latencies_ms.append(ms)
                result.samples.append((round(clock() - started, 3), failure is None, ms))
                slow += ms > max_ms
                if failure is not None:
                    result.errors += 1
                    result.last_failure = failure
                if progress.listening() and clock() - shown >= 0.2:  # a few redraws a second
                    shown = clock()
                    progress.emit(
                        "gate",
                        name="post_switch",
                        url=url,
                        probes=result.probes,
                        errors=result.errors,
                        planned=planned,
                        allowed=allowed_errors,
                        p95_ms=percentile(result.latencies_ms, 95),
                    )
                if result.errors > allowed_errors:
                    result.reason = (
                        f"{result.errors} of {result.probes} samples failed; at most "
                        f"{allowed_errors} of {planned} allowed (last: {result.last_failure})"
                    )
                elif slow >= slow_limit:
                    result.finish()
                    result.reason = (
                        f"p95 latency above {max_ms:.0f} ms: {slow} of {planned} samples were "
                        f"slower (p95 so far {result.p95_ms:.0f} ms)"
                    )
                if result.reason:
                    break
            if result.reason or (fired >= planned and not pending):
                break
            if clock() >= deadline:
                result.errors += len(pending)
                result.probes += len(pending)
                result.reason = (
                    f"{len(pending)} sample(s) unanswered {spec.timeout:g}s after the window"
                )
                break
            due = started + fired / spec.rate if fired < planned else deadline
            delay = max(0.0, min(due, deadline) - clock())
            if pending:
                wait(pending, timeout=min(delay, 0.05) or 0.001, return_when=FIRST_COMPLETED)
            elif delay > 0:
                sleep(delay)
    except BaseException:
        result.reason = result.reason or "interrupted"
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if own:
            http.close()
        result.seconds = round(clock() - started, 3)
        result.finish()
        result.passed = not result.reason
    return result


def wait_serving(
    url: str,
    expect: Expectation,
    *,
    attempts: int = 50,
    interval: float = 0.1,
    timeout: float = 2.0,
    headers: dict[str, str] | None = None,
) -> GateResult:
    """After a switch back: confirm the router serves a healthy response again (bounded)."""
    result = GateResult("verify", url, passed=False)
    started = time.monotonic()
    with _client(timeout, headers) as http:
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
