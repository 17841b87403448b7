"""migrations_safe/ against a real PostgreSQL, with a writer that never stops writing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK_TIMEOUT_S = 2.0

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.testbed


def _admin(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def fresh_database(port: int, name: str) -> str:
    with psycopg.connect(_admin(port), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:{port}/{name}"


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(ROOT / "migrations_safe" / "alembic.ini"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


class Writer(threading.Thread):
    """Inserts accounts and orders and updates statuses until stopped (bounded)."""

    def __init__(self, url: str, max_seconds: float = 240, max_ops: int = 200_000):
        super().__init__(daemon=True)
        self.url, self.max_seconds, self.max_ops = url, max_seconds, max_ops
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.ops = 0
        self.slowest = 0.0

    def run(self) -> None:
        started = time.monotonic()
        with psycopg.connect(self.url, autocommit=True) as conn:
            ids: list[int] = []
            while (
                not self.stop.is_set()
                and self.ops < self.max_ops
                and time.monotonic() - started < self.max_seconds
            ):
                for sql, params in self._next(ids):
                    t0 = time.monotonic()
                    try:
                        row = (
                            conn.execute(sql, params).fetchone()
                            if "RETURNING" in sql
                            else conn.execute(sql, params)
                        )
                    except psycopg.Error as exc:
                        self.errors.append(f"{sql.split()[0]}: {exc}".splitlines()[0])
                        continue
                    self.slowest = max(self.slowest, time.monotonic() - t0)
                    self.ops += 1
                    if isinstance(row, tuple):
                        ids.append(int(row[0]))
                time.sleep(0.002)

    @staticmethod
    def _next(ids: list[int]) -> list[tuple[str, tuple[object, ...]]]:
        email = f"{uuid.uuid4().hex}@example.test"
        out: list[tuple[str, tuple[object, ...]]] = [
            ("INSERT INTO accounts (email, status) VALUES (%s, 'active') RETURNING id", (email,))
        ]
        if ids:
            out.append(("INSERT INTO orders (account_id, total) VALUES (%s, 9.5)", (ids[-1],)))
            out.append(
                ("UPDATE accounts SET status = 'active' WHERE id = %s", (ids[len(ids) // 2],))
            )
        return out


def test_safe_chain_upgrades_and_downgrades_while_a_writer_keeps_writing(pg_bed) -> None:
    url = fresh_database(pg_bed.ports.pg, "deployer_safe_chain")
    assert alembic(url, "upgrade", "0002").returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:  # rows for the backfills to move
        conn.execute(
            "INSERT INTO accounts (email, name) SELECT 'old' || g || '@x', 'n' || g "
            "FROM generate_series(1, 3000) g"
        )
    writer = Writer(url)
    writer.start()
    try:
        time.sleep(0.3)
        up = alembic(url, "upgrade", "head")
        assert up.returncode == 0, up.stderr
        current = alembic(url, "current").stdout
        assert "0018 (head)" in current
        with psycopg.connect(url) as conn:
            nulls = conn.execute(
                "SELECT count(*) FROM accounts WHERE status IS NULL "
                "OR display_name IS NULL AND email LIKE 'old%'"
            ).fetchone()
            assert nulls == (0,)
            notnull = conn.execute(
                "SELECT is_nullable FROM information_schema.columns WHERE "
                "table_name = 'accounts' AND column_name = 'status'"
            ).fetchone()
            assert notnull == ("NO",)
        down = alembic(url, "downgrade", "0002")
        assert down.returncode == 0, down.stderr
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert alembic(url, "downgrade", "base").returncode == 0
    print(f"writer: {writer.ops} writes, slowest {writer.slowest * 1000:.1f} ms")
    assert writer.errors == []
    assert writer.ops > 500, "the writer barely ran: the test proves nothing"
    assert writer.slowest < LOCK_TIMEOUT_S, f"a write waited {writer.slowest:.2f}s"


# (old type, new type): what column-type-change says, checked against PostgreSQL itself
TYPE_CASES = [
    ("text", "varchar"),
    ("varchar", "text"),
    ("varchar(10)", "varchar(20)"),
    ("varchar(10)", "varchar"),
    ("varchar(10)", "text"),
    ("numeric(10,2)", "numeric(12,2)"),
    ("numeric(10,2)", "numeric"),
    ("timestamp(3)", "timestamp(6)"),
    ("cidr", "inet"),
    ("text", "varchar(20)"),
    ("varchar(20)", "varchar(10)"),
    ("int4", "int8"),
    ("numeric(10,2)", "numeric(12,3)"),
]


@pytest.mark.parametrize("old,new", TYPE_CASES, ids=[f"{a}->{b}" for a, b in TYPE_CASES])
def test_column_type_change_matches_what_postgresql_rewrites(pg_bed, old: str, new: str) -> None:
    """The rule passes a type change only if PostgreSQL keeps the table's relfilenode (no
    rewrite); it flags every change that does rewrite."""
    from deployer.lint.rules.column_type_change import metadata_only

    url = fresh_database(pg_bed.ports.pg, "deployer_types")
    value = {"cidr": "'10.0.0.0/8'", "timestamp(3)": "now()"}.get(old, "'1'")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE t (c {old})")
        conn.execute("CREATE INDEX t_c ON t (c)")
        conn.execute(f"INSERT INTO t SELECT {value} FROM generate_series(1, 100)")
        before = conn.execute("SELECT pg_relation_filenode('t')").fetchone()
        conn.execute(f"ALTER TABLE t ALTER COLUMN c TYPE {new}")
        after = conn.execute("SELECT pg_relation_filenode('t')").fetchone()
    rewritten = before != after
    assert metadata_only(old, new) is not rewritten, f"{old} -> {new}: rewritten={rewritten}"
