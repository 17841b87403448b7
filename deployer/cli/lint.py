"""`deployer lint`: migration safety for Alembic scripts and SQL files."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from deployer.cli.app import Application


def register(cli: click.Group) -> None:
    cli.add_command(lint)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default=None,
    help="Output format (default: text, or json with -o json).",
)
@click.option("--explain", metavar="RULE", help="Print what a rule catches and the safe way.")
@click.option("--list", "list_rules", is_flag=True, help="List every rule.")
@click.option(
    "--include-downgrade",
    is_flag=True,
    default=None,
    help="Lint downgrade() too (off by default: drops there are normal).",
)
@click.option("--postgres-version", type=int, default=None, help="Target PostgreSQL major.")
@click.option(
    "--start-after",
    metavar="REVISION",
    default=None,
    help="Skip this revision and everything before it.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A deployer.toml or pyproject.toml to read settings from.",
)
@click.option(
    "--playbook",
    "-p",
    "playbook",
    default=None,
    type=click.Path(dir_okay=False),
    help="Record this run as a lint-gate evidence record for the playbook's app.",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="SARIF paths are relative to this directory (default: the git repository's root).",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Skip files or folders matching this glob (below a folder given); repeatable.",
)
@click.option(
    "--prove",
    "prove_url",
    metavar="URL",
    default=None,
    help="Run the linted revisions in a scratch database on this PostgreSQL server and "
    "measure locks, rewrites and blocked writers (a URL, or env:NAME to read it from the "
    "environment).",
)
@click.option(
    "--rows",
    type=click.IntRange(0, 10_000_000),
    default=10_000,
    show_default=True,
    help="--prove: rows inserted into each table a revision touches (with --table-stats, "
    "each table its own count from the file, at most this many).",
)
@click.option(
    "--lock-bound",
    default="1s",
    show_default=True,
    metavar="DURATION",
    help="--prove: fail when ACCESS EXCLUSIVE is held longer than this.",
)
@click.option(
    "--schema-from",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="--prove: a pg_dump --schema-only file at the --start-after revision.",
)
@click.option("--i-know", is_flag=True, help="--prove: the URL's database has tables; go on.")
@click.option(
    "--table-stats",
    type=click.Path(dir_okay=False),
    default=None,
    help="A table-stats JSON file (`deployer lint stats URL` writes one): scans and builds "
    "on tables below small_table_rows (default 10,000) are warnings.",
)
@click.pass_obj
def lint(
    app: Application,
    paths: tuple[str, ...],
    fmt: str | None,
    explain: str | None,
    list_rules: bool,
    include_downgrade: bool | None,
    postgres_version: int | None,
    start_after: str | None,
    config_path: str | None,
    playbook: str | None,
    root: str | None,
    exclude: tuple[str, ...],
    prove_url: str | None,
    rows: int,
    lock_bound: str,
    schema_from: str | None,
    i_know: bool,
    table_stats: str | None,
) -> None:
    """Lint Alembic version scripts and .sql files for locks and old-color breakage.

    PATHS are files or folders (default: `paths` from config, or the versions folder of
    ./alembic.ini). Exit 0: no error-level finding; 1: error-level findings; 2: usage error.
    Example: deployer lint migrations/versions --format sarif > lint.sarif

    With --prove, the revisions also run in a scratch database (created and dropped on the
    URL's server) and exit 1 also means a rewrite, ACCESS EXCLUSIVE held longer than
    --lock-bound, or a revision that failed.
    Example: deployer lint --prove env:SCRATCH_PG_URL --rows 100000 migrations/versions

    `deployer lint stats URL` writes the table-stats file of a database (row estimates and
    sizes, read-only; URL or env:NAME) to stdout.
    Example: deployer lint stats env:REPLICA_URL > migrations/table-stats.json
    """
    from pathlib import Path

    from deployer.errors import InputError
    from deployer.lint.config import load_config
    from deployer.lint.files import default_paths
    from deployer.lint.rules import load_rules
    from deployer.lint.runner import META, Linter

    if paths[:1] == ("stats",) and not Path("stats").exists():
        _stats(list(paths[1:]))
        return
    rules = load_rules()
    if explain:
        if explain in rules:
            r = rules[explain]
            app.out.print(f"[bold]{r.id}[/] ({r.severity})\n", markup=True)
            app.out.print(r.doc, markup=False, highlight=False)
        elif explain in META:
            app.out.print(f"{explain} ({META[explain][0]})\n\n{META[explain][1]}", markup=False)
        else:
            raise InputError(f"no lint rule {explain!r} (see deployer lint --list)")
        return
    if list_rules:
        for r in sorted(rules.values(), key=lambda r: r.id):
            app.out.print(f"{r.id:38} {r.severity:8} {r.phase:9} {r.summary}", markup=False)
        return
    start = Path(paths[0]) if paths else Path.cwd()
    config = load_config(start, Path(config_path) if config_path else None)
    if include_downgrade is not None:
        config.include_downgrade = include_downgrade
    if postgres_version is not None:
        config.postgres_version = postgres_version
    if start_after is not None:
        config.start_after = start_after
    config.exclude = [*config.exclude, *exclude]
    if table_stats is not None:
        config.table_stats = Path(table_stats)
    targets = [Path(p) for p in paths]
    if not targets and config.paths:
        base = config.source.parent if config.source else Path.cwd()
        targets = [base / p for p in config.paths]
    if not targets:
        targets = default_paths(Path.cwd())
    if not targets:
        raise InputError(
            "nothing to lint: give paths, set [tool.deployer.lint] paths, or run "
            "where alembic.ini is"
        )
    options = None
    if prove_url is not None:
        options = _prove_options(config, rows, lock_bound, schema_from, i_know)
        if config.table_stats is not None:  # each table its own size, at most --rows
            from deployer.lint.stats import load as load_stats

            options.stats = load_stats(config.table_stats)
    started = time.time()
    result = Linter(config).lint(targets)
    fmt = fmt or ("json" if app.json else "text")
    verdict = None
    if prove_url is not None and options is not None:
        from deployer.prove.run import prove
        from deployer.prove.scratch import resolve_url
        from deployer.prove.verdict import judge

        run = prove(result.migrations, resolve_url(prove_url), options)
        verdict = judge(result, run, rules, options.lock_bound_s)
    if fmt == "json" and verdict is not None:
        from deployer.redaction import scrub

        doc = {"findings": [f.to_dict() for f in result.findings], "prove": verdict.to_dict()}
        sys.stdout.write(scrub(json.dumps(doc, indent=2)) + "\n")
    else:
        _print_lint(app, fmt, result, rules, Path(root) if root else None)
        if verdict is not None:
            from deployer.prove.verdict import print_text

            print_text(app.out if fmt == "text" else app.err, verdict)
    if playbook is not None:
        _record_lint(app, playbook, result, started)
    sys.exit(1 if result.errors or (verdict is not None and verdict.failed) else 0)


def _stats(args: list[str]) -> None:
    """`deployer lint stats URL`: the database's table sizes as a table-stats file."""
    import re

    from deployer.errors import InputError
    from deployer.prove.scratch import resolve_url
    from deployer.prove.table_stats import read_database

    if len(args) != 1:
        raise InputError("usage: deployer lint stats URL (a postgresql:// URL, or env:NAME)")
    url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", resolve_url(args[0], "lint stats"))
    doc = read_database(url)
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _prove_options(
    config: Any, rows: int, lock_bound: str, schema_from: str | None, i_know: bool
) -> Any:
    from pathlib import Path

    from deployer.errors import InputError
    from deployer.playbook.fields import parse_duration
    from deployer.prove.run import ProveOptions

    try:
        bound = parse_duration(lock_bound)
    except (ValueError, TypeError) as exc:
        raise InputError(f"--lock-bound {lock_bound!r}: {exc}") from exc
    return ProveOptions(
        rows=rows,
        lock_bound_s=bound,
        schema_from=Path(schema_from) if schema_from else None,
        start_after=config.start_after,
        i_know=i_know,
        sql_in_transaction=config.sql_in_transaction,
    )


def _record_lint(app: Application, playbook: str, result: Any, started: float) -> None:
    """A lint gate run (in CI, say) as evidence for the playbook's app."""
    import uuid

    from deployer.engine.evidence import record_operation
    from deployer.playbook import load_playbook

    loaded = load_playbook(playbook)
    warnings = len(result.findings) - result.errors
    op = {
        "kind": "lint",
        "id": uuid.uuid4().hex,
        "app": loaded.model.app,
        "environment": loaded.model.environment,
        "started_at": started,
        "ended_at": time.time(),
        "outcome": "failed" if result.errors else "succeeded",
        "exit_code": 1 if result.errors else 0,
        "message": f"{result.errors} error(s), {warnings} warning(s)",
        "migrations": {
            "lint": {
                "errors": result.errors,
                "warnings": warnings,
                "files": result.files,
                "findings": [f.to_dict() for f in result.findings[:100]],
            }
        },
    }
    status = record_operation(
        op,
        playbook=loaded.path,
        journal_dir=loaded.local_path(loaded.model.journal_dir),
        evidence_url=app.evidence_url,
        secrets=[],
    )
    if not status["recorded"]:
        app.err.print(f"warning: evidence not stored: {status['error']}", markup=False)


def _print_lint(app: Application, fmt: str, result: Any, rules: Any, root: Any = None) -> None:
    from deployer import __version__
    from deployer.lint import report

    if fmt == "json":
        sys.stdout.write(report.to_json(result.findings) + "\n")
    elif fmt == "sarif":
        sys.stdout.write(report.to_sarif(result.findings, rules, __version__, root) + "\n")
    elif fmt == "github":
        if result.findings:
            sys.stdout.write(report.to_github(result.findings) + "\n")
    else:
        from rich.markup import escape

        for f in result.findings:
            color = "red" if f.severity == "error" else "yellow"
            app.out.print(
                f"[bold]{escape(f.path)}:{f.line}:{f.column}[/] [{color}]{f.rule}[/] "
                f"{escape(f.message)}",
                markup=True,
                highlight=False,
            )
            app.out.print(f"    fix: {f.hint}", style="dim", markup=False)
        warnings = len(result.findings) - result.errors
        for folder, why in result.skipped.items():
            app.out.print(
                f"skipped {folder}: {why} (give its files by name to lint them)",
                style="dim",
                markup=False,
            )
        app.out.print(
            f"{len(result.migrations)} migration(s) in {result.files} file(s): "
            f"{result.errors} error(s), {warnings} warning(s)"
        )
