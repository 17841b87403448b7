"""The entry point: every failure ends as one escaped line, the JSON error document under
`-o json`, and a documented exit code (never a traceback)."""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from typing import Any, NoReturn

import click

from deployer.errors import DeployerError, ExitCode, printable


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _wants_json(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    pairs = zip(args, [*args[1:], ""], strict=False)
    flag = any(a in ("-o", "--output") and b == "json" for a, b in pairs)
    flag = flag or "--output=json" in args or "-ojson" in args
    return flag or os.environ.get("DEPLOYER_OUTPUT") == "json"


def _fail(argv: list[str] | None, code: int, error: str, message: str) -> NoReturn:
    """One readable error (each line escaped and prefixed), the JSON error document under
    `-o json`, and the documented exit code."""
    from deployer.cli.live import stop_all
    from deployer.redaction import scrub

    stop_all()  # the live view's area is cleared before the error line
    message = scrub(message)
    lines = [printable(line, 2000) for line in message.split("\n")] or [error]
    for line in lines:
        click.echo(f"deployer: error: {line}", err=True)
    if _wants_json(argv):
        doc = {"outcome": "error", "exit_code": code, "error": error, "message": "\n".join(lines)}
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure ends as one line and a documented exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    debug = os.environ.get("DEPLOYER_DEBUG") == "1"
    try:
        from deployer.cli.root import cli

        cli.main(args=argv, prog_name="deployer", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _fail(argv, ExitCode.BAD_INPUT, "UsageError", exc.format_message())
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail(argv, ExitCode.UNEXPECTED, "Interrupted", "interrupted")
    except DeployerError as exc:
        if debug:  # the traceback too; the exit code stays the documented one
            traceback.print_exc()
        _fail(argv, int(exc.exit_code), type(exc).__name__, str(exc) or type(exc).__name__)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _fail(
            argv,
            ExitCode.UNEXPECTED,
            type(exc).__name__,
            f"unexpected error: {type(exc).__name__}: {exc} (DEPLOYER_DEBUG=1 shows the traceback)",
        )
