"""Lint with production context: a table-stats file makes scans and builds on small tables
warnings that name the size; drops, renames and the lock-queue hazard keep their severity;
`deployer lint stats URL` writes the file from a real PostgreSQL, read-only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.errors import InputError
from deployer.lint.config import LintConfig, load_config
from deployer.lint.runner import lint_paths
from deployer.lint.stats import load

ROOT = Path(__file__).resolve().parent.parent

REVISION = """from alembic import op
import sqlalchemy as sa
revision = "r1"
down_revision = None


def upgrade():
    op.create_index("ix_persona_name", "persona", ["name"])
    op.create_index("ix_orders_account", "orders", ["account_id"])
    op.alter_column("persona", "name", nullable=False)
    op.drop_column("persona", "legacy")
    op.create_index("ix_events_kind", "audit.events", ["kind"])
"""


def _files(tmp_path: Path, stats: dict[str, object]) -> tuple[Path, Path]:
    rev = tmp_path / "versions" / "r1.py"
    rev.parent.mkdir()
    rev.write_text(REVISION)
    path = tmp_path / "table-stats.json"
    path.write_text(json.dumps(stats))
    return rev.parent, path


def _by_rule_table(findings: list) -> dict[tuple[str, str | None], tuple[str, str]]:
    return {(f.rule, f.table): (f.severity, f.message) for f in findings}


STATS = {
    "tables": {
        "persona": {"rows": 200, "bytes": 65536},
        "public.orders": {"rows": 40_000_000, "bytes": 9_000_000_000},
        "audit.events": {"rows": 5_000},
    }
}


def test_small_tables_make_scans_and_builds_warnings_that_name_the_size(tmp_path: Path) -> None:
    folder, stats = _files(tmp_path, STATS)
    without = _by_rule_table(lint_paths([folder]).findings)
    found = _by_rule_table(lint_paths([folder], LintConfig(table_stats=stats)).findings)
    # without stats nothing changes
    assert without[("require-concurrent-index", "persona")][0] == "error"
    assert without[("set-not-null", "persona")][0] == "error"
    # the index build and the NOT NULL scan on a 200-row table are brief
    severity, message = found[("require-concurrent-index", "persona")]
    assert severity == "warning" and "persona: ~200 rows: the lock is brief" in message
    assert found[("set-not-null", "persona")][0] == "warning"
    assert found[("require-concurrent-index", "audit.events")][0] == "warning"
    # 40 million rows: still an error; a drop breaks the old color whatever the size
    assert found[("require-concurrent-index", "orders")][0] == "error"
    assert found[("drop-column", "persona")][0] == "error"
    # the lock-queue hazard is not about size
    assert (
        found[("missing-lock-timeout", "persona")] == without[("missing-lock-timeout", "persona")]
    )


def test_small_table_rows_sets_the_bound(tmp_path: Path) -> None:
    folder, stats = _files(tmp_path, STATS)
    config = LintConfig(table_stats=stats, small_table_rows=100)
    found = _by_rule_table(lint_paths([folder], config).findings)
    assert found[("require-concurrent-index", "persona")][0] == "error"
    with pytest.raises(InputError, match="small_table_rows"):
        config.small_table_rows = 500_000
        config.validate(set())


def test_unknown_or_never_analyzed_tables_keep_their_severity(tmp_path: Path) -> None:
    folder, stats = _files(tmp_path, {"tables": {"persona": {"rows": -1}, "x": {"rows": None}}})
    found = _by_rule_table(lint_paths([folder], LintConfig(table_stats=stats)).findings)
    assert found[("require-concurrent-index", "persona")][0] == "error"
    assert found[("require-concurrent-index", "orders")][0] == "error"


def test_a_schema_qualified_name_matches_the_bare_one_and_the_largest_schema_wins(
    tmp_path: Path,
) -> None:
    stats = tmp_path / "s.json"
    stats.write_text(
        json.dumps({"tables": {"a.t": {"rows": 10}, "b.t": {"rows": 10**7}, "u": {"rows": 5}}})
    )
    s = load(stats)
    assert s.rows("t") == 10**7 and s.rows("a.t") == 10 and s.rows("x.u") == 5
    assert s.rows("nothing") is None and s.rows(None) is None


@pytest.mark.parametrize(
    "doc, says",
    [
        ("not json", "not a table-stats JSON file"),
        ("[]", "expected"),
        ('{"tables": {"t": {"rows": "many"}}}', "tables.t.rows"),
        ('{"tables": {"t": {"rows": 1, "size": 2}}}', "unknown key 'size'"),
        ('{"tables": {"t": 5}}', "tables.t"),
        ('{"tables": {}, "extra": 1}', "unknown key 'extra'"),
        ('{"tables": {"t": {"rows": 1e999}}}', "tables.t.rows"),
    ],
)
def test_a_bad_stats_file_is_one_line_and_exit_2(tmp_path: Path, doc: str, says: str) -> None:
    folder, stats = _files(tmp_path, {})
    stats.write_text(doc)
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "lint", str(folder), "--table-stats", str(stats)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and str(stats) in lines[0], lines


def test_the_config_names_the_stats_file_relative_to_itself(tmp_path: Path) -> None:
    folder, _ = _files(tmp_path, STATS)
    (tmp_path / "deployer.toml").write_text(
        '[lint]\ntable_stats = "table-stats.json"\nsmall_table_rows = 1000\n'
    )
    config = load_config(folder)
    assert config.table_stats == tmp_path / "table-stats.json" and config.small_table_rows == 1000
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "lint", str(folder), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    doc = json.loads(proc.stdout)
    small = [f for f in doc if f["table"] == "persona" and f["rule"] == "set-not-null"]
    assert small and small[0]["severity"] == "warning"


#: what a write would change: every relation, and every table's rows
CATALOG = (
    "SELECT c.relname, c.relkind, c.reltuples, (SELECT count(*) FROM persona), "
    "(SELECT count(*) FROM audit.events) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname IN ('public', 'audit') ORDER BY 1"
)


@pytest.mark.testbed
def test_lint_stats_reads_a_real_database_read_only(pg_bed, tmp_path: Path) -> None:
    import psycopg

    admin = f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS lintstats")
        conn.execute("CREATE DATABASE lintstats")
    url = f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/lintstats"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA audit")
            conn.execute("CREATE TABLE persona (id int, name text)")
            conn.execute("INSERT INTO persona SELECT g, 'p' FROM generate_series(1, 200) g")
            conn.execute("CREATE TABLE audit.events (id int)")
            conn.execute("INSERT INTO audit.events SELECT generate_series(1, 50000)")
            conn.execute("CREATE TABLE never_analyzed (id int)")
            conn.execute("ANALYZE persona")
            conn.execute("ANALYZE audit.events")
            before = conn.execute(CATALOG).fetchall()
        env = {**os.environ, "REPLICA_URL": url}
        proc = subprocess.run(
            [sys.executable, "-m", "deployer", "lint", "stats", "env:REPLICA_URL"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        tables = doc["tables"]
        assert tables["public.persona"]["rows"] == 200
        assert tables["audit.events"]["rows"] == 50000 and tables["audit.events"]["bytes"] > 0
        assert tables["public.never_analyzed"]["rows"] is None  # unknown, not 0
        assert not any(k.startswith(("pg_catalog.", "information_schema.")) for k in tables)
        with psycopg.connect(url, autocommit=True) as conn:
            after = conn.execute(CATALOG).fetchall()
        assert before == after  # it changed nothing (its transaction is read-only too)
        # and the file it wrote is what lint reads
        (tmp_path / "stats.json").write_text(proc.stdout)
        assert load(tmp_path / "stats.json").rows("persona") == 200
        bad = subprocess.run(
            [sys.executable, "-m", "deployer", "lint", "stats", "env:NOT_SET_ANYWHERE"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert bad.returncode == 2 and "lint stats env:NOT_SET_ANYWHERE" in bad.stderr
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS lintstats WITH (FORCE)")
