"""The `deployer` group and its operation commands (release, rollback, recover, unlock,
status, validate, schema, docs); the other commands live in a module each and are added here.

Heavy imports (fabric, httpx, the engine) happen inside commands so `deployer --help` is fast.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from rich.markup import escape

from deployer.cli.app import Application
from deployer.cli.common import ACCEPT, PLAYBOOK, VARS, _engine, _operate
from deployer.errors import InputError

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
@click.option(
    "--state-url",
    envvar="DEPLOYER_STATE_URL",
    show_envvar=True,
    default=None,
    help="PostgreSQL database for the lock and the unfinished operation's record, reached by "
    "every runner (default: the playbook's lock.url, else beside the lock on the router host).",
)
@click.version_option(package_name="deployer")
@click.pass_context
def cli(
    ctx: click.Context, output: str, evidence_url: str | None, color: str, state_url: str | None
) -> None:
    """Zero-downtime blue-green releases: health-gated, rolled back by themselves.

    Exit codes: 0 ok, 1 unexpected, 2 bad input, 3 aborted before the switch, 4 rolled back
    after the switch, 5 locked, 6 needs recovery, 7 host unreachable or untrusted, 8 a drill
    that did not prove rollback.
    """
    ctx.obj = Application(output, evidence_url, color, state_url)


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
@click.option(
    "--force",
    is_flag=True,
    help="Roll back even to a version the database has contracted past (a deferred contract "
    "revision removed something it may need): a warning instead of exit 2.",
)
@click.pass_obj
def rollback(
    app: Application,
    playbook: str,
    vars_: tuple[str, ...],
    accept_new_host_key: bool,
    force: bool,
) -> None:
    """Switch back to the previous color (redeploying its version if it is no longer warm).

    Example: deployer rollback -p playbooks/demo.yml
    """
    engine = _engine(app, playbook, vars_, accept_new_host_key)
    _operate(app, engine, lambda: engine.rollback(force=force))


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
    from deployer.engine.recovery import recover

    _operate(app, engine, lambda: recover(engine))


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
    from deployer.engine.recovery import unlock

    _operate(app, engine, lambda: unlock(engine, reason))


def _iso(epoch: object) -> str:
    """An epoch time as ISO 8601 UTC ("" when there is none): never raw seconds."""
    import time

    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


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
    for col in ("host", "reachable", "in rotation", "color", "version", "running", "routed"):
        table.add_column(col)
    for h in doc["hosts"]:
        reachable = h.get("reachable", True)
        for color, c in h["colors"].items():
            running = c["running"]
            table.add_row(
                h["host"],
                "yes" if reachable else "[bold red]no[/]",
                "yes" if h.get("in_rotation") else "no",
                color,
                escape(c["version"] or "-") if reachable else "unknown",
                "unknown" if running is None else "yes" if running else "no",
                "[bold green]live[/]"
                if c["live"]
                else "[bold red]routed, not running[/]"
                if c.get("routed") and running is False
                else "[yellow]routed, unknown[/]"
                if c.get("routed")
                else "",
            )
    if doc["hosts"]:
        app.print_table(table)
    for h in doc["hosts"]:
        if not h.get("reachable", True):
            app.out.print(f"[red]{escape(h['host'])}: unreachable:[/] {escape(h['unreachable'])}")
        elif h.get("health") not in (None, "ok"):
            app.out.print(f"[yellow]{escape(h['host'])}: health:[/] {escape(str(h['health']))}")
    for line in doc.get("lines", []):  # what the target has to say beyond hosts and colors
        app.out.print(line, markup=False)
    lock = doc["lock"]
    if not lock:
        app.out.print("lock: free")
    elif lock["state"] == "held":
        since = _iso(lock.get("acquired_at"))
        app.out.print(
            f"lock: held by {escape(str(lock['owner']))}@{escape(str(lock['host']))} "
            f"(pid {lock['pid']}{', since ' + since if since else ''})"
        )
    else:
        app.out.print(
            f"[red]lock: {escape(lock['path'])} holds no readable holder record[/]: "
            "`deployer unlock --reason ...` breaks it"
        )
    for problem in doc["journal_problems"]:
        app.out.print(f"[yellow]journal:[/] {escape(problem)}")
    if doc["unfinished"]:
        app.out.print(f"[red]unfinished operation {doc['unfinished']}: run deployer recover[/]")
    deferred = doc.get("deferred_contract")
    if deferred and deferred.get("revisions"):
        by = (deferred.get("brought_by") or {}).get("version") or "?"
        when = _iso(deferred.get("not_before", 0))
        app.out.print(
            f"deferred contract revisions {', '.join(deferred['revisions'])} (brought by "
            f"{by}): `deployer migrate --contract` once {when} has passed and "
            f"{', '.join(deferred.get('needs_old') or []) or 'no older version'} no longer runs",
            markup=False,
        )


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


import deployer.cli.drill as _drill_command  # noqa: E402
import deployer.cli.evidence as _evidence_commands  # noqa: E402
import deployer.cli.init as _init_command  # noqa: E402
import deployer.cli.lint as _lint_command  # noqa: E402
import deployer.cli.migrate as _migrate_command  # noqa: E402
import deployer.cli.plan as _plan_command  # noqa: E402
import deployer.cli.report as _report_command  # noqa: E402

_drill_command.register(cli)
_evidence_commands.register(cli)
_init_command.register(cli)
_lint_command.register(cli)
_migrate_command.register(cli)
_plan_command.register(cli)
_report_command.register(cli)


def _set(attr: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        app = ctx.find_object(Application)
        if value is None or app is None:
            return
        if attr == "color":
            app.set_color(value)
        else:
            setattr(app, attr, value)

    return callback


#: the group's options, accepted after the subcommand too (the value given last wins)
_GLOBAL = (
    (("--output", "-o"), "output", click.Choice(["text", "json"])),
    (("--color",), "color", click.Choice(["auto", "always", "never"])),
    (("--evidence-url",), "evidence_url", click.STRING),
    (("--state-url",), "state_url", click.STRING),
)


def _global_options_everywhere(group: click.Group) -> None:
    """`deployer status -p X -o json --color never` works as `deployer -o json --color never
    status -p X` does."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _global_options_everywhere(command)
            continue
        taken = {o for p in command.params for o in getattr(p, "opts", ())}
        for opts, attr, kind in _GLOBAL:
            if taken & set(opts):
                continue
            command.params.append(
                click.Option(
                    list(opts),
                    type=kind,
                    default=None,
                    expose_value=False,
                    callback=_set(attr),
                    help=f"As `deployer {opts[0]} ...` (before the subcommand).",
                )
            )


_global_options_everywhere(cli)

__all__ = ["cli"]
