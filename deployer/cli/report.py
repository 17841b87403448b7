"""`deployer report`: a self-contained HTML page of one operation, or of a period."""

from __future__ import annotations

import time
from pathlib import Path

import click

from deployer.cli.app import Application
from deployer.cli.evidence import PLAYBOOK_OPT, _records, parse_since
from deployer.errors import InputError

OPERATIONS = ("release", "rollback", "drill", "recover", "migration")


def register(cli: click.Group) -> None:
    cli.add_command(report)


@click.command()
@click.argument("record_id", required=False)
@PLAYBOOK_OPT
@click.option(
    "--since",
    default=None,
    help="A period instead of one operation (e.g. 30d): every record, the score, DORA.",
)
@click.option(
    "--out",
    "-O",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write (default: deployer-report-SEQ.html, or deployer-report-PERIOD.html).",
)
@click.option(
    "--restore-bound",
    default=60.0,
    show_default=True,
    help="For the score (s), as `deployer score`.",
)
@click.pass_obj
def report(
    app: Application,
    record_id: str | None,
    playbook: str | None,
    since: str | None,
    out_path: str | None,
    restore_bound: float,
) -> None:
    """Write an HTML report of a release, rollback, drill or deferred-contract migration
    (RECORD_ID: an id, prefix or seq; default the latest of them), or of a period with
    --since. It renders offline: no script, no CDN.

    Example: deployer report -p playbooks/demo.yml -O release.html
    """
    from deployer.evidence import report_html
    from deployer.evidence.record import verify

    recs = _records(app, playbook)
    if not recs:
        raise InputError("no evidence records yet: release something first")
    verdict = verify(recs)
    chain = {
        "ok": verdict.ok,
        "records": verdict.count,
        "problem": verdict.problem,
        "head": f"{verdict.head_seq}:{verdict.head_hash}",
    }
    window = parse_since(since or "30d")
    from deployer.engine.evidence import readiness

    score = readiness(recs, playbook, window, restore_bound)  # the one scorer
    if since is not None:
        cutoff = time.time() - window
        from deployer.evidence.record import parse_iso

        shown = [r for r in recs if r.get("started_at") and parse_iso(r["started_at"]) >= cutoff]
        page = report_html.period_page(shown, chain, score, since)
        target = Path(out_path or f"deployer-report-{since}.html")
        what = f"{len(shown)} record(s) over {since}"
    else:
        ops = [r for r in recs if r["kind"] in OPERATIONS]
        if record_id is None:
            if not ops:
                raise InputError("no release, rollback, drill or migration recorded yet")
            rec = ops[-1]
        else:
            found = [r for r in recs if str(r["seq"]) == record_id] or [
                r for r in recs if r["id"].startswith(record_id)
            ]
            if len(found) != 1:
                raise InputError(
                    f"{'no' if not found else 'more than one'} record matches {record_id!r}"
                )
            rec = found[0]
        page = report_html.operation_page(rec, chain, score, {r["id"]: r for r in recs})
        target = Path(out_path or f"deployer-report-{rec['seq']}.html")
        what = f"{rec['kind']} #{rec['seq']} ({rec.get('outcome')})"
    from deployer.redaction import scrub

    try:
        target.write_text(scrub(page), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if app.json:
        app.emit_json({"path": str(target), "what": what, "chain_ok": verdict.ok})
    else:
        app.out.print(f"wrote {target}: {what}", markup=False, highlight=False)
