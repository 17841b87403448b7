"""`deployer plan` (and `release --dry-run`): every command a release would run."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from deployer.cli.app import Application
from deployer.cli.common import PLAYBOOK, VARS, _context
from deployer.errors import InputError


def register(cli: click.Group) -> None:
    cli.add_command(plan)


@click.command()
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
    print_plan(app, playbook, version, vars_, live)


def print_plan(
    app: Application,
    playbook: str,
    version: str,
    vars_: tuple[str, ...],
    live: str | None,
    deployment: str | None = None,
) -> None:
    from deployer.plan import Observed, describe, release_plan

    ctx = _context(playbook, vars_, need_env=live is None)
    if getattr(ctx.pb, "target", "nginx") != "nginx":
        if deployment is None:
            raise InputError(
                f"deployer plan shows an nginx release; for the {ctx.pb.target} target, see "
                "what a release would do with `deployer release --dry-run -p PLAYBOOK "
                "--deployment ID_OR_URL`"
            )
        from deployer.app import build_engine

        engine = build_engine(ctx)
        try:  # read-only: the target's own plan (the API is only read)
            observed = engine.observe()
            version, observed, steps = engine.target.release_plan(observed, version, deployment)
        finally:
            engine.close()
    elif live is None:
        from deployer.app import build_engine

        engine = build_engine(ctx)
        try:
            observed = engine.observe()
        finally:
            engine.close()
    else:
        color = None if live == "none" else live
        # the upstream the router would hold with that color live: the plan then shows the
        # steps a real release runs from it (the dead-man watchdog, a canary's steps)
        upstream = ctx.upstream(color, "<live version>") if color else ""
        observed = Observed(color, "<live version>" if color else None, upstream)
    if getattr(ctx.pb, "target", "nginx") == "nginx":
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
        app.out.print(f"{i:2}. [bold]{escape(s['step'])}[/]{escape(where)}")
        for line in s["do"]:
            app.out.print(f"      $ {line}", markup=False)
        for line in s["undo"]:
            app.out.print(f"      undo: {line}", markup=False)
