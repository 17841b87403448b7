"""SIGTERM and SIGINT during an operation: deferred, then acted on at a safe point.

A signal that lands while a command runs on a host must not leave the engine unsure whether
that command's effect happened (a SIGTERM in the middle of the nginx switch used to mark the
step "failed", skip its undo and stop the color nginx then routed to). So while an operation
runs, a signal only *records* the request; the saga looks at it between steps, where every
step is either done (journalled, its undo known) or not started. Health gates change nothing
on the hosts, so they are the one place a signal interrupts at once
(:meth:`SignalGuard.interruptible`). Undo steps are never interrupted: a second signal
during compensation is noted and ignored (SIGKILL remains, and `deployer recover` finishes
what it leaves).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """An operator's or a runner's signal, acted on at a safe point (a BaseException, so no
    library's ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    def __str__(self) -> str:
        return str(self.args[0])


class SignalGuard:
    def __init__(self) -> None:
        self.received: list[int] = []
        self._interruptible = 0
        self._depth = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        """Install the handlers (re-entrant: the CLI holds the guard around the operation
        and the writing of its result, the engine around the operation)."""
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.received
        self.received.append(signum)
        name = signal.Signals(signum).name
        if self._interruptible and first:
            raise Interrupted(signum)
        what = "finishing the step in flight first" if first else "already stopping; ignored"
        os.write(2, f"deployer: {name} received: {what}\n".encode())

    @property
    def requested(self) -> Interrupted | None:
        """The pending interruption, if a signal has arrived."""
        return Interrupted(self.received[0]) if self.received else None

    def check(self) -> None:
        """A safe point: raise the pending interruption, if any."""
        if self.received:
            raise Interrupted(self.received[0])

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A region that changes nothing on the hosts (a gate): a signal interrupts it."""
        self.check()
        self._interruptible += 1
        try:
            yield
        finally:
            self._interruptible -= 1
