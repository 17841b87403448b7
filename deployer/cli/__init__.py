"""deployer's command line: a thin click layer over the engine.

Heavy imports (fabric, httpx, the engine) happen inside commands so `deployer --help` is fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click
from rich.markup import escape

from deployer.cli.app import Application, render_result
from deployer.errors import InputError, printable

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
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    envvar="DEPLOYER_COLOR",
    show_default=True,
    help="Colors and terminal layout; auto follows the terminal and NO_COLOR / FORCE_COLOR.",
)
@click.version_option(package_name="deployer")
@click.pass_context
def cli(ctx: click.Context, output: str, evidence_url: str | None, color: str) -> None:
    """Zero-downtime blue-green releases: health-gated, rolled back by themselves.

    Exit codes: 0 ok, 1 unexpected, 2 bad input, 3 aborted before the switch, 4 rolled back
    after the switch, 5 locked, 6 needs recovery, 7 host unreachable or untrusted, 8 a drill
    that did not prove rollback.
    """
    ctx.obj = Application(output, evidence_url, color)


def _context(playbook: str, vars_: tuple[str, ...], *, need_env: bool = True) -> Any:
    """The plan context; secrets must be set unless only planning (they show as ***)."""
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
    defaults = loaded.model.vars
    for name, value in overrides.items():
        if value == "" and defaults.get(name) != "":
            raise InputError(
                f"--var {name}: an empty value is refused unless the var's default is empty "
                f"(its default is {printable(defaults.get(name))!r})"
            )
    ctx = Context(loaded, dict(os.environ), overrides)
    from deployer import redaction

    redaction.register(s.value for s in ctx.secrets())
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


def _operate(app: Application, engine: Any, operation: Any, commit: str | None = None) -> NoReturn:
    """Run the operation, record its evidence, print its result, exit with its code, with
    SIGTERM/SIGINT deferred throughout: a signal after the switch must never turn a
    result into "interrupted" with exit 1 while users got the new version."""
    with engine.guard:
        _finish(app, engine, operation(), commit)


def _finish(app: Application, engine: Any, result: Any, commit: str | None = None) -> NoReturn:
    """Record the evidence, print the result, exit with its code. Evidence never changes
    the result: a store or spool failure is a warning on a result that stands."""
    from deployer.engine.evidence import record_operation

    doc = result.to_dict()
    ctx = engine.ctx
    if doc["kind"] == "recover" and doc["id"] == "-":  # nothing was recovered: no evidence
        render_result(app, doc)
        sys.exit(int(doc["exit_code"]))
    try:
        doc["evidence"] = record_operation(
            doc,
            playbook=ctx.loaded.path,
            journal_dir=ctx.loaded.local_path(ctx.pb.journal_dir),
            evidence_url=app.evidence_url,
            secrets=[s.value for s in ctx.secrets()],
            commit_sha=commit,
        )
    except Exception as exc:  # the release's result stands whatever the store does
        doc["evidence"] = {"recorded": False, "error": f"{type(exc).__name__}: {exc}"}
    if not doc["evidence"]["recorded"]:
        doc["warnings"].append(f"evidence not stored: {doc['evidence']['error']}")
    doc["warnings"] += doc["evidence"].pop("warnings", [])
    render_result(app, doc)
    from deployer.cli.ci import report

    try:
        report(doc)
    except Exception as exc:  # a CI report never changes the result
        print(f"deployer: warning: CI summary not written: {exc}", file=sys.stderr)
    sys.exit(int(doc["exit_code"]))


@cli.command()
@PLAYBOOK
@click.option("--version", "version", default=None, help="The version to release.")
@click.option(
    "--deployment",
    default=None,
    metavar="ID_OR_URL",
    help="A target that promotes built deployments (vercel): the deployment to release "
    "(--version then only labels it; default: its commit).",
)
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
    version: str | None,
    deployment: str | None,
    vars_: tuple[str, ...],
    accept_new_host_key: bool,
    dry_run: bool,
    commit: str | None,
) -> None:
    """Release VERSION: ship to the idle color, gate, switch, gate, finish (or roll back).

    Examples: deployer release -p playbooks/demo.yml --version v2;
    deployer release -p playbooks/vercel.yml --deployment dpl_8x2k
    """
    from deployer.playbook.variables import check_deployment, check_version

    if version is None and deployment is None:
        raise InputError("give --version (or --deployment, for the vercel target)")
    if version is not None:
        check_version(version)
    if deployment is not None:
        check_deployment(deployment)
    if dry_run:
        if version is None and deployment is None:
            raise InputError("--dry-run needs --version")
        from deployer.cli.plan import print_plan

        print_plan(app, playbook, version or "", vars_, None, deployment)
        return
    engine = _engine(app, playbook, vars_, accept_new_host_key)
    _operate(app, engine, lambda: engine.release(version or "", deployment), commit)


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
    _operate(app, engine, engine.rollback)


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
    _operate(app, engine, engine.recover)


@cli.command()
@PLAYBOOK
@click.option("--reason", required=True, help="Why the lock may be broken (recorded).")
@ACCEPT
@click.pass_obj
def unlock(app: Application, playbook: str, reason: str, accept_new_host_key: bool) -> None:
    """Break the deploy lock (a dead holder, an unreadable holder record, a stray file).

    Refused while the holder's process runs on this machine; the reason and what held the
    lock are written to the journal. Example:
    deployer unlock -p playbooks/demo.yml --reason "runner ci-7 was reclaimed mid-release"
    """
    engine = _engine(app, playbook, (), accept_new_host_key)
    _operate(app, engine, lambda: engine.unlock(reason))


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
                "[bold green]live[/]"
                if c["live"]
                else "[bold red]routed, not running[/]"
                if c.get("routed")
                else "",
            )
    if doc["hosts"]:
        app.print_table(table)
    for line in doc.get("lines", []):  # what the target has to say beyond hosts and colors
        app.out.print(line, markup=False)
    lock = doc["lock"]
    if not lock:
        app.out.print("lock: free")
    elif lock["state"] == "held":
        app.out.print(f"lock: held by {lock['owner']}@{lock['host']} (pid {lock['pid']})")
    else:
        app.out.print(
            f"[red]lock: {escape(lock['path'])} holds no readable holder record[/]: "
            "`deployer unlock --reason ...` breaks it"
        )
    for problem in doc["journal_problems"]:
        app.out.print(f"[yellow]journal:[/] {escape(problem)}")
    if doc["unfinished"]:
        app.out.print(f"[red]unfinished operation {doc['unfinished']}: run deployer recover[/]")


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
        model = loaded.model
        app.out.print(f"{playbook}: valid ({model.app}, {model.summary()})", markup=False)


@cli.command()
@click.pass_obj
def schema(app: Application) -> None:
    """Print the playbook's JSON Schema.

    Example: deployer schema > playbook.schema.json
    """
    from pydantic import TypeAdapter

    from deployer.playbook.models import Playbook
    from deployer.playbook.vercel_model import VercelPlaybook

    # one schema for both targets: `target` tells them apart (absent: nginx)
    app.emit_json(TypeAdapter(Playbook | VercelPlaybook).json_schema())


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


from deployer.cli import drill as _drill_command  # noqa: E402
from deployer.cli import evidence as _evidence_commands  # noqa: E402
from deployer.cli import init as _init_command  # noqa: E402
from deployer.cli import lint as _lint_command  # noqa: E402
from deployer.cli import plan as _plan_command  # noqa: E402
from deployer.cli import report as _report_command  # noqa: E402

_drill_command.register(cli)
_evidence_commands.register(cli)
_init_command.register(cli)
_lint_command.register(cli)
_plan_command.register(cli)
_report_command.register(cli)


from deployer.cli.entry import _output_everywhere, main  # noqa: E402

_output_everywhere(cli)

__all__ = ["cli", "main"]
