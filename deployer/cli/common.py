"""What the commands share: the common options, the plan context, and how an operation is
run, recorded and printed. Commands import this module; it imports none of them."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from deployer.cli.app import Application, render_result
from deployer.errors import InputError, printable

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
    from deployer.app import build_engine

    ctx = _context(playbook, vars_)
    return build_engine(
        ctx, reporter=app.reporter(), accept_new_host_key=accept, state_url=app.state_url
    )


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
    if doc["id"] == "-":  # nothing was done (nothing to recover, no deferred contract)
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
