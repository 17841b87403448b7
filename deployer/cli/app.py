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


class Application:
    def __init__(self, output: str, evidence_url: str | None = None):
        self.output = output
        self.evidence_url = evidence_url
        no_color = bool(os.environ.get("NO_COLOR"))
        self.out = Console(
            file=cast(IO[str], Scrubbed(sys.stdout)),
            highlight=False,
            no_color=no_color,
            soft_wrap=True,
        )
        self.err = Console(
            file=cast(IO[str], Scrubbed(sys.stderr)),
            highlight=False,
            no_color=no_color,
            soft_wrap=True,
        )

    @property
    def json(self) -> bool:
        return self.output == "json"

    def emit_json(self, doc: Any) -> None:
        text = json.dumps(scrub_obj(doc), indent=2, sort_keys=True, default=str)
        sys.stdout.write(scrub(text) + "\n")

    def reporter(self) -> Any:
        """Progress always goes to stderr (with ``-o json`` too: stdout holds only the JSON
        document, and a CI log still shows each step as it happens)."""
        return RichReporter(self.err)


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
        app.out.print(table)
    for w in result.get("warnings", []):
        app.out.print(f"[yellow]warning:[/] {escape(str(w))}")
    app.out.print(
        f"[bold {color}]{result['kind']} {escape(str(outcome))}[/] in "
        f"{result['duration_s']:.2f}s: {escape(str(result['message']))}"
    )
