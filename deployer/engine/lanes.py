"""Run a group of steps in parallel, one lane per host, each lane in order.

A fleet's hosts are prepared at once (stop the idle color, ship, start, gate it): each host
is a lane running its steps one after another on its own connection, in a thread of its
own. Every step is journalled before and after it runs exactly as in a sequential saga, so
recovery reads the same records (several steps may be "started" at once: each is undone).

A lane stops at its first failure. Signals are still only acted on between steps: a lane
looks at the saga's interrupt before each step (a gate polls it between samples). When the
group ends, the failed lanes' hosts are reported with what failed; the saga decides (the
batch policy's ``max_failures``) whether the release goes on without them or is undone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Protocol

from deployer.engine.outcome import SagaOutcome
from deployer.plan import Step
from deployer.ports import Reporter


class StepRunner(Protocol):
    """What a group's lanes need of the saga that runs them."""

    interrupt: Callable[[], BaseException | None]

    @property
    def reporter(self) -> Reporter: ...

    def record_skipped(self, step: Step, why: str, out: SagaOutcome) -> None: ...

    def run_step(self, step: Step, out: SagaOutcome) -> tuple[bool, BaseException | None, Any]:
        """``(True, None, None)`` done; ``(False, error, applied)`` not."""
        ...


@dataclass
class LaneFailure:
    host: str
    step: Step
    error: BaseException
    #: whether the failed step may have had its effect (then its own undo runs too); None
    #: when it never started (its start record could not be written)
    applied: bool | None


@dataclass
class GroupResult:
    #: steps that finished, in the order they finished (undone in reverse)
    done: list[Step] = field(default_factory=list)
    failures: list[LaneFailure] = field(default_factory=list)
    #: the interruption that stopped lanes between steps, if any
    stopped: BaseException | None = None


def lanes_of(steps: list[Step]) -> dict[str, list[Step]]:
    """The group's steps by host, each host's in plan order."""
    out: dict[str, list[Step]] = {}
    for s in steps:
        out.setdefault(s.host or "", []).append(s)
    return out


def run_group(saga: StepRunner, steps: list[Step], out: SagaOutcome, workers: int) -> GroupResult:
    """Run ``steps`` (one group) with at most ``workers`` lanes at once."""
    result = GroupResult()
    lock = threading.Lock()
    lanes = lanes_of(steps)

    running: dict[str, tuple[str, float]] = {}  # host -> (its step, since when)
    finished: set[str] = set()

    def lane(host: str, todo: list[Step]) -> None:
        try:
            run_lane(host, todo)
        finally:
            with lock:
                running.pop(host, None)
                finished.add(host)

    def run_lane(host: str, todo: list[Step]) -> None:
        for step in todo:
            stop = saga.interrupt()
            if stop is not None and not step.after_pivot:  # past the commit: finish
                with lock:
                    result.stopped = result.stopped or stop
                saga.record_skipped(step, str(stop), out)
                return
            with lock:
                running[host] = (step.name, time.monotonic())
            ok, exc, applied = saga.run_step(step, out)
            if ok:
                with lock:
                    result.done.append(step)
                continue
            assert exc is not None
            with lock:
                result.failures.append(LaneFailure(host, step, exc, applied))
            return

    if len(lanes) == 1:  # nothing to overlap: no thread
        ((host, todo),) = lanes.items()
        lane(host, todo)
        return result
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lane") as pool:
        futures: list[Future[None]] = [pool.submit(lane, h, t) for h, t in lanes.items()]
        pending = set(futures)
        said: dict[str, float] = {}
        while pending:  # short waits: the main thread stays free to take a signal
            _, pending = wait_futures(pending, timeout=0.2)
            with lock:
                slow = _waiting_on(running, said, len(finished), len(lanes))
            for line in slow:
                saga.reporter.note(line)
        for f in futures:
            exc = f.exception()
            if exc is not None:  # a bug in the lane itself, not a step: never swallowed
                raise exc
    return result


#: a host's step running this long is said (then again every ``WAITING_AGAIN`` seconds):
#: a host that stopped answering must never look like deployer doing nothing
WAITING_AFTER, WAITING_AGAIN = 10.0, 30.0


def _waiting_on(
    running: dict[str, tuple[str, float]], said: dict[str, float], done: int, lanes: int
) -> list[str]:
    """Lines naming each host whose step has run long (once per ``WAITING_AGAIN``)."""
    now, lines = time.monotonic(), []
    for host, (name, since) in sorted(running.items()):
        key = f"{host}\0{name}\0{since}"
        if now - since < WAITING_AFTER or now - said.get(key, -1e9) < WAITING_AGAIN:
            continue
        said[key] = now
        lines.append(
            f"waiting on {host}: {name} running for {now - since:.0f}s "
            f"({done} of {lanes} hosts done with this group)"
        )
    return lines
