"""deployer's command line: a thin click layer over the engine.

Heavy imports (fabric, httpx, the engine) happen inside commands so `deployer --help` is fast.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

import click

from deployer.cli.app import Application, render_result
from deployer.errors import DeployerError, ExitCode

OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="DEPLOYER_OUTPUT",
    show_envvar=True,
    show_default=True,
    help="text for people, json for CI.",
)
PLAYBOOK = click.option(
    "--playbook",
    "-p",
    "playbook",
    required=True,
    envvar="DEPLOYER_PLAYBOOK",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help="The playbook YAML file.",
)
VARS = click.option(
    "--var",
    "vars_",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a playbook var (repeatable).",
)
ACCEPT = click.option(
    "--accept-new-host-key",
    is_flag=True,
    help="Trust and save SSH host keys not yet in known_hosts (a changed key is always refused).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@OUTPUT
@click.option(
    "--evidence-url",
    envvar="DEPLOYER_EVIDENCE_URL",
    show_envvar=True,
    default=None,
    help="Evidence store: sqlite:///PATH or postgresql://... "
    "(default: .deployer/evidence.db next to the playbook).",
)
@click.version_option(package_name="deployer")
@click.pass_context
def cli(ctx: click.Context, output: str, evidence_url: str | None) -> None:
    """Zero-downtime blue-green releases: health-gated, rolled back by themselves.

    Exit codes: 0 ok, 1 unexpected, 2 bad input, 3 aborted before the switch, 4 rolled back
    after the switch, 5 locked, 6 needs recovery, 7 host unreachable or untrusted.
    """
    ctx.obj = Application(output, evidence_url)


def _context(playbook: str, vars_: tuple[str, ...], *, need_env: bool = True) -> Any:
    """The plan context; secrets must be set unless only planning (they show as ***)."""
    from deployer.errors import InputError
    from deployer.plan import Context
    from deployer.playbook import load_playbook
    from deployer.playbook.variables import parse_var

    loaded = load_playbook(playbook)
    overrides = dict(parse_var(v) for v in vars_)
    unknown = sorted(set(overrides) - set(loaded.model.vars))
    if unknown:
        raise InputError(
            f"--var {unknown[0]}: no such var in the playbook "
            f"(vars: {', '.join(sorted(loaded.model.vars)) or 'none'})"
        )
    ctx = Context(loaded, dict(os.environ), overrides)
    missing = ctx.missing_env()
    if missing and need_env:
        raise InputError(
            f"environment variable {missing[0]} is not set "
            f"(the playbook uses ${{env:{missing[0]}}})"
        )
    if missing:
        ctx = Context(loaded, {**os.environ, **dict.fromkeys(missing, "")}, overrides)
    return ctx


def _engine(app: Application, playbook: str, vars_: tuple[str, ...], accept: bool) -> Any:
    from deployer.engine.operations import Engine

    return Engine(_context(playbook, vars_), reporter=app.reporter(), accept_new_host_key=accept)


def _finish(app: Application, engine: Any, result: Any, commit: str | None = None) -> None:
    """Record the evidence, print the result, exit with its code."""
    from deployer.engine.evidence import record_operation

    doc = result.to_dict()
    ctx = engine.ctx
    if doc["kind"] == "recover" and doc["id"] == "-":  # nothing was recovered: no evidence
        render_result(app, doc)
        sys.exit(int(doc["exit_code"]))
    doc["evidence"] = record_operation(
        doc,
        playbook=ctx.loaded.path,
        journal_dir=ctx.loaded.local_path(ctx.pb.journal_dir),
        evidence_url=app.evidence_url,
        secrets=[s.value for s in ctx.secrets()],
        commit_sha=commit,
    )
    if not doc["evidence"]["recorded"]:
        doc["warnings"].append(f"evidence not stored: {doc['evidence']['error']}")
    render_result(app, doc)
    sys.exit(int(doc["exit_code"]))


@cli.command()
@PLAYBOOK
@click.option("--version", "version", required=True, help="The version to release.")
@VARS
@ACCEPT
@click.option("--dry-run", is_flag=True, help="Print the plan (like `deployer plan`), run nothing.")
@click.option(
    "--commit",
    default=None,
    help="The git commit released (default: the playbook "
    "repository's HEAD), for evidence and lead time.",
)
@click.pass_obj
def release(
    app: Application,
    playbook: str,
    version: str,
    vars_: tuple[str, ...],
    accept_new_host_key: bool,
    dry_run: bool,
    commit: str | None,
) -> None:
    """Release VERSION: ship to the idle color, gate, switch, gate, finish (or roll back).

    Example: deployer release -p playbooks/demo.yml --version v2
    """
    from deployer.playbook.variables import check_version

    check_version(version)
    if dry_run:
        _print_plan(app, playbook, version, vars_, None)
        return
    engine = _engine(app, playbook, vars_, accept_new_host_key)
    _finish(app, engine, engine.release(version), commit)


@cli.command()
@PLAYBOOK
@VARS
@ACCEPT
@click.pass_obj
def rollback(
    app: Application, playbook: str, vars_: tuple[str, ...], accept_new_host_key: bool
) -> None:
    """Switch back to the previous color (redeploying its version if it is no longer warm).

    Example: deployer rollback -p playbooks/demo.yml
    """
    engine = _engine(app, playbook, vars_, accept_new_host_key)
    _finish(app, engine, engine.rollback())


@cli.command()
@PLAYBOOK
@VARS
@ACCEPT
@click.pass_obj
def recover(
    app: Application, playbook: str, vars_: tuple[str, ...], accept_new_host_key: bool
) -> None:
    """Finish an operation that a crash left half-done (from the journal).

    Example: deployer recover -p playbooks/demo.yml
    """
    engine = _engine(app, playbook, vars_, accept_new_host_key)
    _finish(app, engine, engine.recover())


@cli.command()
@PLAYBOOK
@ACCEPT
@click.pass_obj
def status(app: Application, playbook: str, accept_new_host_key: bool) -> None:
    """Live color and version per host, the idle color, the lock holder.

    Example: deployer status -p playbooks/demo.yml
    """
    from rich.table import Table

    doc = _engine(app, playbook, (), accept_new_host_key).status()
    if app.json:
        app.emit_json(doc)
        return
    table = Table(title=f"{doc['app']} ({doc['environment']})", title_justify="left")
    for col in ("host", "color", "version", "running", "live"):
        table.add_column(col)
    for h in doc["hosts"]:
        for color, c in h["colors"].items():
            table.add_row(
                h["host"],
                color,
                c["version"] or "-",
                "yes" if c["running"] else "no",
                "[bold green]live[/]" if c["live"] else "",
            )
    app.out.print(table)
    lock = doc["lock"]
    app.out.print(f"lock: {'free' if not lock else lock['owner'] + '@' + lock['host']}")
    if doc["unfinished"]:
        app.out.print(f"[red]unfinished operation {doc['unfinished']}: run deployer recover[/]")


@cli.command()
@PLAYBOOK
@click.option("--version", "version", required=True, help="The version to plan.")
@VARS
@click.option(
    "--live",
    type=click.Choice(["blue", "green", "none"]),
    default=None,
    help="Assume this live color instead of asking the router (read-only).",
)
@click.pass_obj
def plan(
    app: Application, playbook: str, version: str, vars_: tuple[str, ...], live: str | None
) -> None:
    """Print every command a release would run, host by host, running nothing.

    Without --live, the router is asked (read-only) which color is live.
    Example: deployer plan -p playbooks/demo.yml --version v2 --live blue
    """
    from deployer.playbook.variables import check_version

    check_version(version)
    _print_plan(app, playbook, version, vars_, live)


def _print_plan(
    app: Application, playbook: str, version: str, vars_: tuple[str, ...], live: str | None
) -> None:
    from deployer.plan import Observed, describe, release_plan

    ctx = _context(playbook, vars_, need_env=live is None)
    if live is None:
        from deployer.engine.operations import Engine

        engine = Engine(ctx)
        try:
            observed = engine.observe()
        finally:
            engine.hosts.close()
    else:
        color = None if live == "none" else live
        observed = Observed(color, "<live version>" if color else None, "")
    steps = release_plan(ctx, observed, version)
    doc: list[dict[str, Any]] = [
        {
            "step": s.name,
            "host": s.host,
            "after_pivot": s.after_pivot,
            "do": describe(s.do),
            "undo": describe(s.undo) if s.undo else [],
        }
        for s in steps
    ]
    if app.json:
        app.emit_json(
            {
                "version": version,
                "live_color": observed.live_color,
                "idle_color": observed.idle_color,
                "steps": doc,
            }
        )
        return
    app.out.print(
        f"[bold]plan[/]: {version} -> {observed.idle_color} (live: {observed.live_color or 'none'})"
    )
    for i, s in enumerate(doc, 1):
        where = f" @ {s['host']}" if s["host"] else ""
        app.out.print(f"{i:2}. [bold]{s['step']}[/]{where}")
        for line in s["do"]:
            app.out.print(f"      $ {line}", markup=False)
        for line in s["undo"]:
            app.out.print(f"      undo: {line}", markup=False)


@cli.command()
@PLAYBOOK
@click.pass_obj
def validate(app: Application, playbook: str) -> None:
    """Load and validate a playbook; print problems with file, line and key.

    Example: deployer validate -p playbooks/demo.yml
    """
    from deployer.playbook import load_playbook

    loaded = load_playbook(playbook)
    if app.json:
        app.emit_json({"valid": True, "app": loaded.model.app, "path": str(loaded.path)})
    else:
        app.out.print(f"{playbook}: valid ({loaded.model.app}, {len(loaded.model.hosts)} host(s))")


@cli.command()
@click.pass_obj
def schema(app: Application) -> None:
    """Print the playbook's JSON Schema.

    Example: deployer schema > playbook.schema.json
    """
    from deployer.playbook.models import Playbook

    app.emit_json(Playbook.model_json_schema())


@cli.command()
@click.argument("section", required=False)
@click.pass_obj
def docs(app: Application, section: str | None) -> None:
    """Print every playbook key with its meaning and default (or one SECTION).

    Example: deployer docs gates
    """
    from deployer.playbook.docs import reference

    rows = reference(section)
    if app.json:
        app.emit_json(rows)
        return
    for row in rows:
        default = f" [dim](default: {row['default']})[/]" if row["default"] is not None else ""
        req = " [red]required[/]" if row["required"] else ""
        app.out.print(f"[bold]{row['key']}[/]: {row['type']}{req}{default}")
        app.out.print(f"    {row['description']}", markup=False)


from deployer.cli import evidence as _evidence_commands  # noqa: E402
from deployer.cli import lint as _lint_command  # noqa: E402

_evidence_commands.register(cli)
_lint_command.register(cli)


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _wants_json(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    pairs = zip(args, [*args[1:], ""], strict=False)
    flag = any(a in ("-o", "--output") and b == "json" for a, b in pairs)
    return flag or "--output=json" in args or os.environ.get("DEPLOYER_OUTPUT") == "json"


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure ends as one line and a documented exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    debug = os.environ.get("DEPLOYER_DEBUG") == "1"
    try:
        cli.main(args=argv, prog_name="deployer", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.BAD_INPUT)
    except click.exceptions.Abort:
        click.echo("deployer: interrupted", err=True)
        sys.exit(ExitCode.UNEXPECTED)
    except DeployerError as exc:
        if debug:
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(f"deployer: error: {line}", err=True)
        if _wants_json(argv):
            doc = {
                "outcome": "error",
                "exit_code": int(exc.exit_code),
                "error": type(exc).__name__,
                "message": str(exc),
            }
            Application("json").emit_json(doc)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        click.echo("deployer: interrupted", err=True)
        sys.exit(ExitCode.UNEXPECTED)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"deployer: unexpected error: {type(exc).__name__}: {exc} "
            "(DEPLOYER_DEBUG=1 shows the traceback)",
            err=True,
        )
        sys.exit(ExitCode.UNEXPECTED)
