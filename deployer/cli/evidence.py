"""`deployer evidence ...` and `deployer score`."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from deployer.cli.app import Application
from deployer.errors import DeployerError, InputError

PLAYBOOK_OPT = click.option(
    "--playbook",
    "-p",
    "playbook",
    envvar="DEPLOYER_PLAYBOOK",
    default=None,
    type=click.Path(dir_okay=False),
    help="Playbook whose store to use (.deployer/evidence.db beside it); default: "
    "./.deployer/evidence.db, or --evidence-url.",
)


class VerifyFailed(DeployerError):
    """The chain is broken (exit 1, as documented for `evidence verify`)."""


def parse_since(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    raise InputError(f"--since {text!r}: use a number and s, m, h, d or w (e.g. 30d)")


def _base(playbook: str | None) -> Path:
    if playbook is None:
        return Path.cwd() / ".deployer"
    from deployer.playbook import load_playbook

    loaded = load_playbook(playbook)
    return loaded.local_path(loaded.model.journal_dir)


def _records(app: Application, playbook: str | None) -> list[dict[str, Any]]:
    """The store's records. Reading writes nothing: records still in the spool (a store
    that was down) are only mentioned; the next release flushes them into their store. A
    store that is not there is no records, unless records were written to it from here
    (the head kept beside it says so): then it was removed, and that is an error."""
    from deployer.adapters.evidence import StoreMissing, read_head
    from deployer.engine.evidence import open_store_at, spool_for

    base = _base(playbook)
    spool = spool_for(app.evidence_url, base)
    waiting = len(spool.pending_readonly())
    if waiting:
        app.err.print(f"[yellow]note:[/] {waiting} record(s) wait in the spool for this store")
    try:
        store = open_store_at(app.evidence_url, base)
    except StoreMissing as exc:
        head = read_head(spool.head_path)
        if head is None:
            return []
        raise VerifyFailed(
            f"{exc}; records up to {head[0]} were written to it from here (head kept in "
            f"{spool.head_path}): the evidence was removed"
        ) from None
    try:
        return store.records()
    finally:
        store.close()


def _known_head(app: Application, playbook: str | None) -> tuple[tuple[int, str] | None, Path]:
    from deployer.adapters.evidence import read_head
    from deployer.engine.evidence import spool_for

    path = spool_for(app.evidence_url, _base(playbook)).head_path
    return read_head(path), path


def register(cli: click.Group) -> None:
    cli.add_command(evidence)
    cli.add_command(score)


@click.group()
def evidence() -> None:
    """Deployment evidence: list, show, verify, checkpoint, export."""


@evidence.command("list")
@PLAYBOOK_OPT
@click.option(
    "--kind", type=click.Choice(["release", "rollback", "drill", "recover", "lint", "unlock"])
)
@click.option("--since", default=None, help="Only records newer than this (e.g. 30d, 12h).")
@click.option("--app", "app_name", default=None, help="Only this app.")
@click.pass_obj
def list_(
    app: Application,
    playbook: str | None,
    kind: str | None,
    since: str | None,
    app_name: str | None,
) -> None:
    """List records, oldest first.

    Example: deployer evidence list -p playbooks/demo.yml --since 30d
    """
    from deployer.evidence.record import parse_iso

    recs = _records(app, playbook)
    cutoff = time.time() - parse_since(since) if since else None
    recs = [
        r
        for r in recs
        if (kind is None or r["kind"] == kind)
        and (app_name is None or r.get("app") == app_name)
        and (cutoff is None or (r.get("started_at") and parse_iso(r["started_at"]) >= cutoff))
    ]
    if app.json:
        app.emit_json(recs)
        return
    from rich.table import Table

    table = Table(title=f"evidence ({len(recs)})", title_justify="left")
    for col in ("seq", "id", "kind", "app", "from", "to", "outcome", "started", "restore s"):
        table.add_column(col)
    for r in recs:
        ttr = r.get("time_to_restore_s")
        table.add_row(
            str(r["seq"]),
            r["id"][:12],
            r["kind"],
            str(r.get("app")),
            str(r.get("version_from") or "-"),
            str(r.get("version_to") or "-"),
            str(r.get("outcome")),
            str(r.get("started_at")),
            "-" if ttr is None else f"{ttr:.2f}",
        )
    app.print_table(table)


@evidence.command()
@click.argument("record_id")
@PLAYBOOK_OPT
@click.pass_obj
def show(app: Application, record_id: str, playbook: str | None) -> None:
    """Print one record (an id, a unique id prefix, or a seq number).

    Example: deployer evidence show 3 -p playbooks/demo.yml
    """
    recs = _records(app, playbook)
    found = [r for r in recs if str(r["seq"]) == record_id]  # a seq number first
    if not found:
        found = [r for r in recs if r["id"].startswith(record_id)]
    if len(found) != 1:
        raise InputError(f"{'no' if not found else 'more than one'} record matches {record_id!r}")
    app.emit_json(found[0])


@evidence.command()
@PLAYBOOK_OPT
@click.option(
    "--checkpoint",
    default=None,
    metavar="SEQ:HASH",
    help="A head printed earlier by `evidence checkpoint`: detects a cut or rewritten tail.",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ed25519 public key (PEM): every record must carry a valid signature by it over "
    "an in-toto statement of exactly that record.",
)
@click.pass_obj
def verify(
    app: Application, playbook: str | None, checkpoint: str | None, public_key: Path | None
) -> None:
    """Recompute the hash chain (and check every signature); exit 1 naming the first bad
    record.

    Example: deployer evidence verify -p playbooks/demo.yml --public-key signing.pub.pem
    """
    from deployer.evidence import signing
    from deployer.evidence.record import parse_checkpoint
    from deployer.evidence.record import verify as verify_chain

    cp = parse_checkpoint(checkpoint) if checkpoint else None
    key = signing.load_public_key(public_key) if public_key is not None else None
    records = _records(app, playbook)
    verdict, problem = signing.verify_all(records, key, lambda: verify_chain(records, cp))
    signed = sum(1 for r in records if isinstance(r.get("envelope"), dict))
    if verdict.ok and problem:
        verdict = replace(verdict, ok=False, problem=problem, bad_seq=None)
    head, head_path = _known_head(app, playbook)
    against = f"the checkpoint {cp[0]}" if cp else "no checkpoint"
    if verdict.ok and head is not None:
        # the head kept beside the store after each append: a deleted or rewritten newest
        # record shows, which the chain alone cannot
        kept = verify_chain(records, head)
        if not kept.ok:
            verdict = replace(kept, problem=f"{kept.problem} (by the head kept in {head_path})")
        against += f" and the head kept in {head_path}"
    doc = {
        "ok": verdict.ok,
        "records": verdict.count,
        "head_seq": verdict.head_seq,
        "head_hash": verdict.head_hash,
        "problem": verdict.problem or None,
        "bad_seq": verdict.bad_seq,
    }
    doc["checked_against"] = against
    doc["signed"] = signed
    doc["signatures_checked"] = key is not None
    if app.json:
        app.emit_json(doc)
    elif verdict.ok:
        before = signing.unsigned_prefix(records)
        sigs = (
            f"; all {signed} signatures valid for the given key"
            + (f" ({before} older record(s) written before signing began)" if before else "")
            if key is not None
            else f"; {signed} of {verdict.count} signed, signatures not checked (--public-key)"
        )
        app.out.print(
            f"ok: {verdict.count} records, head {verdict.head_seq}:{verdict.head_hash}; "
            f"checked against {against}{sigs}"
        )
        if cp is None and head is None and verdict.count:
            app.err.print(
                "[yellow]note:[/] without a checkpoint, a rewrite or deletion of the newest "
                "records cannot be seen: keep `deployer evidence checkpoint` elsewhere"
            )
    if not verdict.ok:
        if app.json:
            sys.exit(1)
        raise VerifyFailed(verdict.problem)


@evidence.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write deployer-signing.pem (0600) and deployer-signing.pub.pem.",
)
@click.pass_obj
def keygen(app: Application, folder: Path) -> None:
    """Write a new Ed25519 key pair for signing evidence (never over existing files).

    Example: deployer evidence keygen --dir ~/.config/deployer &&
    export DEPLOYER_SIGNING_KEY=~/.config/deployer/deployer-signing.pem
    """
    from deployer.evidence import signing

    private, public = signing.keygen(folder)
    if app.json:
        app.emit_json({"private_key": str(private), "public_key": str(public)})
    else:
        app.out.print(
            f"wrote {private} (keep it secret: DEPLOYER_SIGNING_KEY) and {public} "
            "(for `deployer evidence verify --public-key`)"
        )


@evidence.command()
@PLAYBOOK_OPT
@click.pass_obj
def checkpoint(app: Application, playbook: str | None) -> None:
    """Print the chain's head as SEQ:HASH, to keep elsewhere (a CI artifact, a git tag).

    Example: deployer evidence checkpoint -p playbooks/demo.yml > evidence.head
    """
    from deployer.evidence.record import GENESIS
    from deployer.evidence.record import verify as verify_chain

    verdict = verify_chain(_records(app, playbook))
    if not verdict.ok:
        raise VerifyFailed(f"no checkpoint of a broken chain: {verdict.problem}")
    head = f"{verdict.head_seq}:{verdict.head_hash if verdict.head_seq else GENESIS}"
    if app.json:
        app.emit_json({"seq": verdict.head_seq, "hash": verdict.head_hash, "checkpoint": head})
    else:
        click.echo(head)


@evidence.command()
@PLAYBOOK_OPT
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "cdevents", "intoto"]),
    default="jsonl",
    help="jsonl: the records; cdevents: CDEvents 0.5.1 as CloudEvents JSON lines; intoto: "
    "each signed record's DSSE envelope (an in-toto statement), unsigned ones left out.",
)
@click.pass_obj
def export(app: Application, playbook: str | None, fmt: str) -> None:
    """Export every record, one JSON document a line.

    Example: deployer evidence export --format cdevents -p playbooks/demo.yml > events.jsonl
    """
    from deployer.evidence.cdevents import to_cdevents

    recs = _records(app, playbook)
    if fmt == "intoto":
        docs = [r["envelope"] for r in recs if isinstance(r.get("envelope"), dict)]
        if len(docs) < len(recs):
            app.err.print(f"note: {len(recs) - len(docs)} unsigned record(s) left out")
    else:
        docs = to_cdevents(recs) if fmt == "cdevents" else recs
    for doc in docs:
        sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")


@click.command()
@PLAYBOOK_OPT
@click.option("--since", default="30d", show_default=True, help="The window.")
@click.option("--app", "app_name", default=None, help="Only this app (default: the playbook's).")
@click.option(
    "--restore-bound",
    default=60.0,
    show_default=True,
    help="Seconds a rollback or drill may take to restore traffic and still count.",
)
@click.option("--schema", "show_schema", is_flag=True, help="Print the JSON output's schema.")
@click.pass_obj
def score(
    app: Application,
    playbook: str | None,
    since: str,
    app_name: str | None,
    restore_bound: float,
    show_schema: bool,
) -> None:
    """Readiness score (P0 #3 zero-downtime deployment, 5 points) and DORA metrics.

    Every point is earned only by evidence in the window. Example:
    deployer score -p playbooks/demo.yml --since 30d --output json
    """
    from importlib import resources

    if show_schema:
        text = resources.files("deployer.evidence").joinpath("score.schema.json").read_text()
        sys.stdout.write(text)
        return
    from deployer.engine.evidence import readiness

    doc = readiness(_records(app, playbook), playbook, parse_since(since), restore_bound, app_name)
    if app.json:
        app.emit_json(doc)
        return
    from rich.table import Table

    table = Table(title=f"{doc['item']}: {doc['points']}/{doc['max_points']}", title_justify="left")
    for col in ("point", "earned", "evidence / missing"):
        table.add_column(col)
    for item in doc["items"]:
        detail = ", ".join(e[:12] for e in item["evidence"]) if item["earned"] else item["missing"]
        table.add_row(item["title"], "[green]yes[/]" if item["earned"] else "[red]no[/]", detail)
    app.print_table(table)
    d = doc["dora"]
    dora = Table(title="DORA", title_justify="left")
    for col in ("metric", "value"):
        dora.add_column(col)

    def fmt(v: Any, suffix: str = "") -> str:
        return "-" if v is None else f"{v}{suffix}"

    dora.add_row(
        "deployment frequency",
        fmt(d["deployment_frequency_per_day"], " / day") + f" ({d['deployments']})",
    )
    dora.add_row("change lead time", fmt(d["change_lead_time_s"], " s"))
    dora.add_row(
        "change failure rate",
        fmt(d["change_failure_rate"]) + f" ({d['failed_changes']}/{d['changes']})",
    )
    dora.add_row(
        "failed deployment recovery time",
        fmt(d["failed_deployment_recovery_time_s"], " s") + f" ({d['recoveries']})",
    )
    dora.add_row(
        "deployment rework rate",
        fmt(d["deployment_rework_rate"]) + f" ({len(d['rework_deployments'])})",
    )
    app.print_table(dora)
