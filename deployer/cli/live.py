"""The terminal's live view of an operation: each step in flight with a spinner and its
elapsed time, upload progress, and a gate's running samples, error budget and p95, redrawn
in place (rich's Live). Finished steps scroll above it as the plain reporter prints them.
Only for a terminal: anywhere else the line reporter writes one line per event."""

from __future__ import annotations

import atexit
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from deployer import progress

_ACTIVE: list[LiveReporter] = []


def stop_all() -> None:
    """Before an error line is printed (and at exit): leave the terminal clean."""
    for reporter in list(_ACTIVE):
        reporter.close()


atexit.register(stop_all)


class LiveReporter:
    def __init__(self, console: Console, lines: Any):
        self.console = console
        self.lines = lines  # the line reporter: finished steps and notes, above the view
        self.t0 = time.monotonic()
        self.steps: dict[tuple[str, str | None], float] = {}
        self.upload: dict[str, Any] | None = None
        self.gate: dict[str, Any] | None = None
        self.lock = threading.Lock()
        self.live: Live | None = None

    # -- the Reporter protocol ------------------------------------------------------------
    def step_started(self, name: str, host: str | None) -> None:
        self._start()
        with self.lock:
            self.steps[(name, host)] = time.monotonic()
            self.upload = self.gate = None

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None:
        with self.lock:
            self.steps.pop((name, host), None)
            self.upload = self.gate = None
        self.lines.step_finished(name, host, status, seconds, detail)

    def note(self, message: str) -> None:
        self.lines.note(message)

    # -- drawing ----------------------------------------------------------------------------
    def _start(self) -> None:
        if self.live is not None:
            return
        self.live = Live(_View(self), console=self.console, refresh_per_second=10, transient=True)
        self.live.start()
        self.lines.console = self.live.console  # lines print above the live area
        progress.subscribe(self._event)
        _ACTIVE.append(self)

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        with self.lock:
            if event == "upload":
                self.upload = fields
            elif event in ("gate", "canary"):
                self.gate = {**fields, "name": fields.get("name", event)}

    def close(self) -> None:
        progress.unsubscribe(self._event)
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def render(self) -> Any:
        with self.lock:
            steps = list(self.steps.items())
            upload, gate = self.upload, self.gate
        grid = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for (name, host), since in steps:
            where = f" [cyan]{escape(host)}[/]" if host else ""
            grid.add_row(
                Spinner("dots", style="green"),
                Text.from_markup(f"{escape(name)}{where}"),
                Text(f"{now - since:5.1f}s", style="dim"),
            )
        extra = []
        if upload and upload.get("total"):
            done, total = upload["sent"], upload["total"]
            extra.append(
                Text(f"  upload {done / 1e6:.1f}/{total / 1e6:.1f} MB ({done / total:.0%})")
            )
        if gate:
            extra.append(Text("  " + _gate_line(gate)))
        return Group(grid, *extra)


def _gate_line(g: dict[str, Any]) -> str:
    if g.get("name") == "canary":
        new, old = g["new"], g["old"]
        return (
            f"canary {g['weight']}%: new {new['requests']} req, {new['errors']} 5xx, p95 "
            f"{new['p95_ms']:.0f} ms; old {old['requests']} req, {old['errors']} 5xx, p95 "
            f"{old['p95_ms']:.0f} ms ({g['elapsed']:.0f}/{g['pause']:.0f}s)"
            + (f"; judge: {g['judge']}" if g.get("judge") else "")
        )
    if g.get("name") == "post_switch":
        left = max(0, g["allowed"] - g["errors"])
        return (
            f"post-switch gate: {g['probes']}/{g['planned']} samples, {g['errors']} error(s) "
            f"(budget left {left}), p95 {g['p95_ms']:.0f} ms"
        )
    return (
        f"pre-switch gate: {g['probes']} probe(s), {g['streak']}/{g['needed']} in a row, "
        f"{g['errors']} error(s), p95 {g['p95_ms']:.0f} ms"
    )


class _View:
    """Rendered anew at each refresh."""

    def __init__(self, reporter: LiveReporter):
        self.reporter = reporter

    def __rich__(self) -> Any:
        return self.reporter.render()
