"""The Application every command receives: output mode, consoles, and the rich reporter."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, Any, ClassVar, cast

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deployer.redaction import scrub, scrub_obj


class Scrubbed:
    """A text stream that removes the playbook's secrets from everything written to it
    (rich renders a whole print before writing it, so a value is never split)."""

    def __init__(self, stream: Any):
        self.stream = stream

    def write(self, text: str) -> int:
        return int(self.stream.write(scrub(text)))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self.stream, "encoding", "utf-8"))


def _console(stream: Any, color: str) -> Console:
    """``--color auto`` follows the stream (a terminal or not) and NO_COLOR / FORCE_COLOR
    (rich reads both); ``always`` and ``never`` decide."""
    no_color = color == "never" or (color == "auto" and bool(os.environ.get("NO_COLOR")))
    return Console(
        file=cast(IO[str], Scrubbed(stream)),
        highlight=False,
        no_color=no_color,
        force_terminal=True if color == "always" else None,
        soft_wrap=True,
    )


class Application:
    def __init__(
        self,
        output: str,
        evidence_url: str | None = None,
        color: str = "auto",
        state_url: str | None = None,
    ):
        self.output = output
        self.evidence_url = evidence_url
        self.state_url = state_url
        self.set_color(color)

    def set_color(self, color: str) -> None:
        self.color = color
        self.out = _console(sys.stdout, color)
        self.err = _console(sys.stderr, color)

    def print_table(self, table: Table) -> None:
        """A table for people in a terminal; anywhere else (a pipe, a file, a CI log), one
        record per line, tab-separated under a `#` header, never cut at 80 columns."""
        if self.out.is_terminal and self.out.width >= 80:
            self.out.print(table)
            return
        from rich.text import Text

        def plain(cell: Any) -> str:
            text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
            return " ".join(text.split())  # no tab or newline inside a field

        lines = [f"# {plain(table.title)}"] if table.title else []
        lines.append("#" + "\t".join(plain(c.header) for c in table.columns))
        for row in zip(*(list(c.cells) for c in table.columns), strict=True):
            lines.append("\t".join(plain(c) for c in row))
        self.out.file.write("\n".join(lines) + "\n")  # as is: rich would expand the tabs
        self.out.file.flush()

    @property
    def json(self) -> bool:
        return self.output == "json"

    def emit_json(self, doc: Any) -> None:
        text = json.dumps(scrub_obj(doc), indent=2, sort_keys=True, default=str)
        sys.stdout.write(scrub(text) + "\n")

    def reporter(self) -> Any:
        """Progress always goes to stderr (with ``-o json`` too: stdout holds only the JSON
        document, and a CI log still shows each step as it happens); in a terminal, as a
        live view redrawn in place."""
        lines = RichReporter(self.err)
        if self.err.is_terminal and self.color != "never" and os.environ.get("TERM") != "dumb":
            from deployer.cli.live import LiveReporter

            return LiveReporter(self.err, lines)
        return lines


class RichReporter:
    """Streams each step as it starts and ends, with its host and timing (to stderr)."""

    MARK: ClassVar[dict[str, str]] = {
        "ok": "[green]✓[/]",
        "failed": "[red]✗[/]",
        "skipped": "[yellow]-[/]",
    }

    def __init__(self, console: Console):
        self.console = console
        self.t0 = time.monotonic()

    def _at(self) -> str:
        return f"[dim]{time.monotonic() - self.t0:6.2f}s[/]"

    # host and user text (names, details, messages) is escaped: `[/srv/app]` is a path, not
    # a closing tag, and must never abort a release
    def step_started(self, name: str, host: str | None) -> None:
        where = f" [cyan]{escape(host)}[/]" if host else ""
        self.console.print(f"{self._at()} [dim]…[/] {escape(name)}{where}")

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None:
        where = f" [cyan]{escape(host)}[/]" if host else ""
        tail = f" [dim]{escape(detail)}[/]" if detail else ""
        mark = self.MARK.get(status, escape(status))
        self.console.print(f"{self._at()} {mark} {escape(name)}{where} ({seconds:.2f}s){tail}")

    def note(self, message: str) -> None:
        self.console.print(f"{self._at()} [bold]{escape(message)}[/]")


def render_result(app: Application, result: dict[str, Any]) -> None:
    from deployer.cli.live import stop_all

    stop_all()
    if app.json:
        app.emit_json(result)
        return
    outcome = result["outcome"]
    color = {"succeeded": "green", "rolled_back": "yellow"}.get(outcome, "red")
    if result.get("gates"):
        table = Table(title="gates", title_justify="left")
        for col in ("gate", "probes", "errors", "p50 ms", "p95 ms", "p99 ms", "result"):
            table.add_column(col, no_wrap=True)
        for g in result["gates"]:
            table.add_row(
                g["name"],
                str(g["probes"]),
                str(g["errors"]),
                f"{g['p50_ms']:.1f}",
                f"{g['p95_ms']:.1f}",
                f"{g['p99_ms']:.1f}",
                "[green]pass[/]" if g["passed"] else "[red]fail[/]",
            )
        app.print_table(table)
    for w in result.get("warnings", []):
        app.out.print(f"[yellow]warning:[/] {escape(str(w))}")
    app.out.print(
        f"[bold {color}]{result['kind']} {escape(str(outcome))}[/] in "
        f"{result['duration_s']:.2f}s: {escape(str(result['message']))}"
    )
