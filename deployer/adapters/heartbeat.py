"""Beats for the sessions deployer holds open to its hosts (the router's dead-man watchdog,
:mod:`deployer.commands.dead_man`): one daemon thread writes a line to each every interval
until its command has exited or the heartbeat is stopped. The thread does I/O only, so a
busy main thread (gates, uploads) never delays a beat by more than a scheduling slice."""

from __future__ import annotations

import threading

from deployer.ports import Held


class Heartbeat:
    def __init__(self, interval: float):
        self.interval = max(0.05, interval)
        self._held: list[Held] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: beats that could not be written (the session was gone), for the record
        self.missed = 0

    def add(self, held: Held) -> None:
        with self._lock:
            self._held.append(held)
            if self._thread is None:  # the thread clears it, under this lock, as it ends
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="deployer-heartbeat", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                held = [h for h in self._held if not h.ended()]
                self._held = held
                if not held:
                    self._thread = None
                    return
            for h in held:
                if not h.beat():
                    self.missed += 1

    def stop(self) -> None:
        """No more beats (the sessions stay open: closing them is the caller's decision)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._thread = None
