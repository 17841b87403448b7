"""Evidence: the hash chain, both stores, concurrency, score and DORA, CDEvents export."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer.adapters.evidence import PostgresStore, Spool, SqliteStore, append_or_spool
from deployer.evidence.cdevents import to_cdevents
from deployer.evidence.record import GENESIS, iso, parse_iso, record_hash, seal, verify
from deployer.evidence.score import score

ROOT = Path(__file__).resolve().parent.parent
CDEVENTS = ROOT.parent / "shared" / "cdevents-0.5.1" / "schemas"
DAY = 86400.0
NOW = 1_800_000_000.0


def rec(
    kind: str = "release",
    outcome: str = "succeeded",
    age_days: float = 1,
    *,
    gates: bool = True,
    switched: bool = True,
    commit_age_s: float | None = None,
    ttr: float | None = None,
    lint: dict[str, Any] | None = None,
    digest: str = "d1",
    app: str = "shop",
) -> dict[str, Any]:
    started = NOW - age_days * DAY
    steps = [{"name": "switch", "status": "ok" if switched else "failed", "seconds": 0.1}]
    g = [{"name": "pre_switch", "passed": gates}, {"name": "post_switch", "passed": gates}]
    return {
        "id": uuid.uuid4().hex,
        "kind": kind,
        "app": app,
        "environment": "production",
        "version_from": "v1",
        "version_to": "v2",
        "outcome": outcome,
        "started_at": iso(started),
        "ended_at": iso(started + 30),
        "steps": steps,
        "gates": g,
        "time_to_restore_s": ttr,
        "lint": lint,
        "migrations": {"lint": lint} if lint else None,
        "playbook_digest": digest,
        "commit": {"sha": "abc", "time": iso(started - commit_age_s)} if commit_age_s else None,
    }


# ---------- the chain ----------


def chain(n: int) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for i in range(1, n + 1):
        out.append(seal(rec(age_days=n - i), i, prev))
        prev = out[-1]["hash"]
    return out


def test_seal_hashes_canonical_json_of_everything_else() -> None:
    recs = chain(2)
    assert recs[0]["prev_hash"] == GENESIS and recs[1]["prev_hash"] == recs[0]["hash"]
    assert record_hash(recs[1]) == recs[1]["hash"] and len(recs[1]["hash"]) == 64
    assert verify(recs).ok and verify(recs).head_seq == 2


# ---------- stores: SQLite and PostgreSQL pass the same suite ----------


def _pg_url(pg_bed: Any) -> str:
    psycopg = pytest.importorskip("psycopg")
    name = f"ev_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/{name}"


class Backend:
    """A store plus raw SQL access to tamper with it."""

    def __init__(self, kind: str, target: str):
        self.kind, self.target = kind, target

    def store(self) -> Any:
        return (
            SqliteStore(Path(self.target)) if self.kind == "sqlite" else PostgresStore(self.target)
        )

    def sql(self, statement: str, *params: Any) -> None:
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as db:
                db.execute(
                    statement.replace("%s", "?").replace("deployer_evidence", "evidence"), params
                )
        else:
            import psycopg

            with psycopg.connect(self.target, autocommit=True) as conn:
                conn.execute(statement, params)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "evidence.db"))
    else:
        yield Backend("postgres", _pg_url(request.getfixturevalue("pg_bed")))


def _fill(backend: Backend, n: int = 5) -> list[dict[str, Any]]:
    store = backend.store()
    try:
        return [store.append(rec(age_days=n - i)) for i in range(n)]
    finally:
        store.close()


def _verify(backend: Backend, checkpoint: tuple[int, str] | None = None) -> Any:
    store = backend.store()
    try:
        return verify(store.records(), checkpoint)
    finally:
        store.close()


def test_store_appends_an_unbroken_chain(backend: Backend) -> None:
    sealed = _fill(backend)
    assert [r["seq"] for r in sealed] == [1, 2, 3, 4, 5]
    v = _verify(backend)
    assert v.ok and v.head_seq == 5 and v.head_hash == sealed[-1]["hash"]


def test_an_edited_field_is_named(backend: Backend) -> None:
    sealed = _fill(backend)
    forged = dict(sealed[2], outcome="rolled_back")
    backend.sql("UPDATE deployer_evidence SET body = %s WHERE seq = 3", json.dumps(forged))
    v = _verify(backend)
    assert not v.ok and v.bad_seq == 3 and "record 3" in v.problem and "edited" in v.problem


def test_a_deleted_row_is_named(backend: Backend) -> None:
    _fill(backend)
    backend.sql("DELETE FROM deployer_evidence WHERE seq = 2")
    v = _verify(backend)
    assert not v.ok and "record 2 is missing" in v.problem


def test_two_swapped_rows_are_named(backend: Backend) -> None:
    sealed = _fill(backend)
    backend.sql("UPDATE deployer_evidence SET body = %s WHERE seq = 2", json.dumps(sealed[2]))
    backend.sql("UPDATE deployer_evidence SET body = %s WHERE seq = 3", json.dumps(sealed[1]))
    v = _verify(backend)
    assert not v.ok and v.problem.startswith("record 2 is")


def test_an_inserted_forgery_is_named(backend: Backend) -> None:
    sealed = _fill(backend, 3)
    forged = seal(rec(outcome="succeeded"), 2, sealed[0]["hash"])  # a valid-looking record 2
    backend.sql("UPDATE deployer_evidence SET body = %s WHERE seq = 2", json.dumps(forged))
    v = _verify(backend)
    assert not v.ok and "record 3" in v.problem and "prev_hash" in v.problem


def test_a_truncated_or_rewritten_tail_is_caught_by_a_checkpoint(backend: Backend) -> None:
    sealed = _fill(backend)
    checkpoint = (5, sealed[-1]["hash"])
    assert _verify(backend, checkpoint).ok
    backend.sql("DELETE FROM deployer_evidence WHERE seq = 5")
    assert _verify(backend).ok  # without a checkpoint a cut tail looks fine
    v = _verify(backend, checkpoint)
    assert not v.ok and "truncated" in v.problem
    store = backend.store()
    store.append(rec())  # a new record 5 in place of the old one
    store.close()
    v = _verify(backend, checkpoint)
    assert not v.ok and "rewritten: record 5" in v.problem


def _writer(kind: str, target: str, count: int) -> None:
    store = Backend(kind, target).store()
    try:
        for _ in range(count):
            store.append(rec())
    finally:
        store.close()


def test_eight_processes_appending_at_once_lose_nothing(backend: Backend) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(backend.kind, backend.target, 25)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = backend.store()
    try:
        records = store.records()
    finally:
        store.close()
    assert len(records) == 200 and [r["seq"] for r in records] == list(range(1, 201))
    assert len({r["id"] for r in records}) == 200
    assert verify(records).ok


def test_an_unwritable_store_spools_and_the_next_command_flushes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.jsonl")

    def broken() -> Any:
        return SqliteStore(Path("/proc/deployer-cannot-write-here/evidence.db"))

    first = rec()
    sealed, problem = append_or_spool(broken, first, spool, attempts=2)
    assert sealed is None and "kept in" in str(problem)
    assert [r["id"] for r in spool.pending()] == [first["id"]]
    good: Callable[[], Any] = lambda: SqliteStore(tmp_path / "evidence.db")  # noqa: E731
    second = rec()
    sealed, problem = append_or_spool(good, second, spool)
    assert problem is None and sealed is not None and sealed["seq"] == 2  # spooled one first
    store = SqliteStore(tmp_path / "evidence.db")
    assert [r["id"] for r in store.records()] == [first["id"], second["id"]]
    store.close()
    assert spool.pending() == []


# ---------- score and DORA ----------


def test_score_earns_each_point_only_with_evidence() -> None:
    release = rec(commit_age_s=3600, lint={"errors": 0, "warnings": 1})
    drill = rec("rollback", ttr=1.5, age_days=0.5)
    doc = score([release, drill], now=NOW, since_s=30 * DAY, playbook={"digest": "d1"})
    assert doc["schema"] == "deployer.score/2" and doc["points"] == 5
    items = {i["id"]: i for i in doc["items"]}
    assert items["health_gated"]["evidence"] == [release["id"]]
    assert items["rollback_tested"]["evidence"] == [drill["id"]]
    d = doc["dora"]
    assert d["deployments"] == 1 and d["change_lead_time_s"] == 3630.0
    assert d["change_failure_rate"] == 1.0  # the rollback after it marks it failed
    assert d["failed_deployment_recovery_time_s"] == 1.5


def test_score_with_no_records_says_what_is_missing() -> None:
    doc = score([], now=NOW, since_s=30 * DAY, playbook={"digest": "d1"})
    assert doc["points"] == 0 and doc["window"]["records"] == 0
    assert all(i["missing"] for i in doc["items"])
    assert doc["dora"]["change_failure_rate"] is None and doc["dora"]["deployments"] == 0


def test_only_drills_earn_only_the_rollback_point_and_no_dora_failures() -> None:
    drills = [rec("drill", ttr=2.0, age_days=d) for d in (1, 2)]
    doc = score(drills, now=NOW, since_s=30 * DAY, playbook={"digest": "d1"})
    assert doc["points"] == 1
    assert [i["id"] for i in doc["items"] if i["earned"]] == ["rollback_tested"]
    assert doc["dora"]["changes"] == 0 and doc["dora"]["change_failure_rate"] is None


def test_records_outside_the_window_do_not_count() -> None:
    old_rollback = rec("rollback", ttr=1.0, age_days=45)
    slow_rollback = rec("rollback", ttr=90.0, age_days=1)
    doc = score([old_rollback, slow_rollback, rec(age_days=40)], now=NOW, since_s=30 * DAY)
    items = {i["id"]: i for i in doc["items"]}
    assert not items["rollback_tested"]["earned"]  # one too old, one too slow (> 60 s)
    assert doc["window"]["records"] == 1
    assert score([slow_rollback], now=NOW, since_s=30 * DAY, restore_bound=120)["items"][4][
        "earned"
    ]


def test_change_failure_rate_and_codified_digest() -> None:
    recs = [
        rec(age_days=5),
        rec(outcome="rolled_back", ttr=0.2, age_days=4),
        rec(outcome="aborted", switched=False, age_days=3),
        rec(age_days=2, digest="d2"),
    ]
    doc = score(recs, now=NOW, since_s=30 * DAY, playbook={"digest": "d1"})
    d = doc["dora"]
    assert d["changes"] == 3 and d["failed_changes"] == 1  # the aborted one never reached users
    assert d["change_failure_rate"] == round(1 / 3, 4)
    assert d["failed_deployment_recovery_time_s"] == 0.2
    assert d["deployment_rework_rate"] == 0.0  # the next release came two days later
    codified = next(i for i in doc["items"] if i["id"] == "codified")
    assert not codified["earned"] and "digest differs" in codified["missing"]


def test_deployment_rework_rate_counts_the_first_fix_within_a_day_of_a_failure() -> None:
    """DORA's fifth metric: of the successful releases, those that were unplanned fixes of
    one that failed in production (rolled back, or undone by a rollback): the first
    successful release of that app within 24 h of the failure. Another app's, or a later
    one's, is not."""
    failed = rec(outcome="rolled_back", ttr=0.3, age_days=4)
    fix = rec(age_days=3.9)
    later = rec(age_days=3.8)
    other_app = rec(app="blog", age_days=3.95)
    shipped = rec(age_days=2)
    undone = rec("rollback", ttr=1.0, age_days=1.9)  # the operator undid `shipped`
    second_fix = rec(age_days=1.5)
    recs = [failed, fix, later, other_app, shipped, undone, second_fix]
    d = score(recs, now=NOW, since_s=30 * DAY)["dora"]
    assert d["rework_deployments"] == [fix["id"], second_fix["id"]]
    assert d["deployment_rework_rate"] == 0.4  # two of the five successful releases
    assert d["failed_changes"] == 2 and d["recoveries"] == 2


def test_score_json_matches_its_published_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "deployer" / "evidence" / "score.schema.json").read_text())
    for doc in (
        score([], now=NOW, since_s=DAY),
        score(
            [rec(lint={"errors": 0}), rec("rollback", ttr=1.0)],
            now=NOW,
            since_s=30 * DAY,
            playbook={"digest": "d1"},
        ),
    ):
        jsonschema.validate(doc, schema)


# ---------- CDEvents ----------


@pytest.mark.skipif(
    not CDEVENTS.is_dir(),
    reason=f"CDEvents 0.5.1 schemas not found at {CDEVENTS} (../shared is "
    "absent on this machine); they are not copied into the repository",
)
def test_cdevents_export_validates_against_the_cdevents_schemas() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource

    resources = []
    for path in list(CDEVENTS.glob("*.json")) + list((CDEVENTS / "links").glob("*.json")):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    registry = Registry().with_resources(resources)
    by_type = {}
    for path in CDEVENTS.glob("*.json"):
        doc = json.loads(path.read_text())
        by_type[doc["properties"]["context"]["properties"]["type"]["enum"][0]] = doc
    chain_recs = [
        seal(r, i, GENESIS)
        for i, r in enumerate(
            [rec(), rec(), rec(outcome="rolled_back", ttr=0.2), rec("rollback", ttr=1.0)], 1
        )
    ]
    events = to_cdevents(chain_recs)
    types = [e["type"] for e in events]
    assert types.count("dev.cdevents.service.deployed.0.3.0") == 1
    assert types.count("dev.cdevents.service.upgraded.0.3.0") == 2
    assert types.count("dev.cdevents.service.rolledback.0.3.0") == 1
    assert types.count("dev.cdevents.testsuiterun.finished.0.3.0") == 8
    # the rolled-back release opened an incident: detected when deployer noticed (its end
    # minus the 0.2 s it took to restore), resolved at its end
    detected = [e for e in events if e["type"] == "dev.cdevents.incident.detected.0.3.0"]
    resolved = [e for e in events if e["type"] == "dev.cdevents.incident.resolved.0.3.0"]
    assert len(detected) == 1 and len(resolved) == 1
    assert detected[0]["data"]["subject"]["id"] == f"{chain_recs[2]['id']}-incident"
    assert resolved[0]["data"]["subject"]["id"] == detected[0]["data"]["subject"]["id"]
    gap = parse_iso(resolved[0]["time"]) - parse_iso(detected[0]["time"])
    assert gap == pytest.approx(0.2, abs=0.002)
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["datacontenttype"] == "application/cdevents+json"
        schema = by_type[event["type"]]
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        errors = sorted(validator.iter_errors(event["data"]), key=str)
        assert not errors, (event["type"], errors[0].message)
    rolled = next(
        e
        for e in events
        if ".service." in e["type"]
        and e["data"]["customData"]["deployer"]["outcome"] == "rolled_back"
    )
    assert rolled["data"]["context"]["chainId"] == chain_recs[2]["id"]


def test_iso_times_are_utc() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000Z"


# ---------- verify names each way a store can be damaged, and never writes ----------


def _cli_store(tmp_path: Path, n: int = 3) -> tuple[Path, Path, list[dict[str, Any]]]:
    """A playbook whose evidence store holds ``n`` records appended as a release does (the
    head is kept beside it): (playbook, store, sealed records)."""
    from test_playbook import GOOD

    journal = tmp_path / "journal"
    pb = tmp_path / "pb.yml"
    pb.write_text(GOOD + f"journal_dir: {journal}\n")
    spool = Spool(journal / "evidence-spool.jsonl")
    sealed = []
    for _ in range(n):
        out, problem = append_or_spool(lambda: SqliteStore(journal / "evidence.db"), rec(), spool)
        assert problem is None and out is not None
        sealed.append(out)
    return pb, journal / "evidence.db", sealed


def _verify_cli(pb: Path) -> tuple[int, str]:
    import contextlib
    import io

    from deployer.cli.entry import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["evidence", "verify", "-p", str(pb)])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


def test_verify_checks_against_the_head_kept_beside_the_store(tmp_path: Path) -> None:
    pb, _, _ = _cli_store(tmp_path)
    code, said = _verify_cli(pb)
    assert code == 0 and "checked against no checkpoint and the head kept in" in said


def test_a_rewritten_newest_record_is_named_without_a_checkpoint(tmp_path: Path) -> None:
    pb, db, sealed = _cli_store(tmp_path)
    forged = seal(rec(outcome="succeeded"), 3, sealed[1]["hash"])  # re-hashed: chain intact
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evidence SET body = ? WHERE seq = 3", (json.dumps(forged),))
    code, said = _verify_cli(pb)
    assert code == 1 and "rewritten: record 3" in said and "head kept in" in said, said


def test_a_deleted_newest_record_is_named_without_a_checkpoint(tmp_path: Path) -> None:
    pb, db, _ = _cli_store(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM evidence WHERE seq = 3")
    code, said = _verify_cli(pb)
    assert code == 1 and "truncated" in said and "chain ends at 2" in said, said


def test_a_dropped_table_is_named_and_reading_never_creates_it(tmp_path: Path) -> None:
    pb, db, _ = _cli_store(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE evidence")
    code, said = _verify_cli(pb)
    assert code == 1 and "has no evidence table (dropped?)" in said and "removed" in said, said
    with sqlite3.connect(db) as conn:  # verify wrote nothing
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_an_emptied_or_deleted_store_is_named_and_not_recreated(tmp_path: Path) -> None:
    pb, db, _ = _cli_store(tmp_path)
    db.write_bytes(b"")
    code, said = _verify_cli(pb)
    assert code == 1 and "empty file (0 bytes)" in said and "up to 3" in said, said
    db.unlink()
    for extra in (db.with_name("evidence.db-wal"), db.with_name("evidence.db-shm")):
        extra.unlink(missing_ok=True)
    code, said = _verify_cli(pb)
    assert code == 1 and "no evidence store at" in said and not db.exists(), said


def test_a_fresh_project_verifies_empty_and_writes_nothing(tmp_path: Path) -> None:
    from test_playbook import GOOD

    pb = tmp_path / "pb.yml"
    pb.write_text(GOOD + f"journal_dir: {tmp_path / 'journal'}\n")
    code, said = _verify_cli(pb)
    assert code == 0 and "ok: 0 records" in said and not (tmp_path / "journal").exists()


def test_a_damaged_row_is_called_damaged(tmp_path: Path) -> None:
    pb, db, _ = _cli_store(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evidence SET body = 'garbage' WHERE seq = 2")
    code, said = _verify_cli(pb)
    assert code == 1 and "record 2 is damaged: its body is not JSON" in said, said
    assert "inserted or reordered" not in said


def test_a_full_disk_is_reported_as_one(tmp_path: Path) -> None:
    from deployer.adapters.evidence import EvidenceError

    store = SqliteStore(tmp_path / "evidence.db")
    try:
        store.append(rec())
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages}")  # no room for another page
        with pytest.raises(EvidenceError) as err:
            for _ in range(50):
                store.append({**rec(), "message": "x" * 4000})
    finally:
        store.close()
    assert "full" in str(err.value) and "cannot rollback" not in str(err.value)


def test_report_and_score_give_one_answer_on_the_same_evidence(tmp_path: Path) -> None:
    """One scorer: `deployer score -p` and `deployer report -p` on the same records and
    playbook agree on the points and on every criterion (the report used to score without
    the playbook: "codified: no playbook given" beside a 5/5 from `score`)."""
    import contextlib
    import html
    import io

    from deployer.cli.entry import main

    pb, _, _ = _cli_store(tmp_path)

    def run(*args: str) -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(list(args))
        return out.getvalue()

    doc = json.loads(run("-o", "json", "score", "-p", str(pb)))
    page_path = tmp_path / "r.html"
    run("report", "-p", str(pb), "-O", str(page_path))
    page = page_path.read_text()
    assert f"{doc['points']}/{doc['max_points']} points" in page
    assert "no playbook given" not in page
    codified = next(i for i in doc["items"] if i["id"] == "codified")
    assert "no playbook given" not in str(codified.get("missing")), codified
    for item in doc["items"]:  # each criterion said the same way on the page
        assert html.escape(item["title"]) in page
