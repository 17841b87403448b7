"""Per-statement measurements, taken while a migration runs.

Three connections to the scratch database: the migration's own; an observer that reads
``pg_locks`` for the migration's backend (after each statement, and every few milliseconds
while one runs, so locks released at the statement's end are seen too); and a prober that
tries, with NOWAIT, what a concurrent writer and reader would do on each table the migration
holds a lock on (or on one of its indexes): ``LOCK TABLE ... IN ROW EXCLUSIVE MODE`` (an
INSERT, UPDATE or DELETE), ``SELECT 1 FROM ... LIMIT 1`` (a reader, who also opens the
table's indexes) and ``SELECT ... FOR UPDATE NOWAIT`` of one row (an UPDATE of an existing
row). The prober's lock_timeout (20 ms) bounds each probe, so it never holds the migration up,
and the time deployer spends measuring is not counted in how long a lock was held.

Rewrites are seen in the catalog: a relation whose ``relfilenode`` changed got a new file
(the table, or an index, was rewritten). Relations created in the same revision are nobody
else's yet, so their locks and rewrites are not hazards.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: PostgreSQL's lock modes, weakest first (pg_locks spells them this way)
MODES = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]
#: modes a writer's ROW EXCLUSIVE waits for (the documented conflict table)
BLOCKS_WRITERS = frozenset(MODES[4:])
ACCESS_EXCLUSIVE = "AccessExclusiveLock"
POLL_S = 0.005
FIRST_USER_OID = 16384

RELATIONS_SQL = """
SELECT c.oid::int8, n.nspname, c.relname, c.relkind, c.relfilenode::int8,
       coalesce(t.relname, c.relname), coalesce(t.oid, c.oid)::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE c.oid >= 16384 AND c.relkind IN ('r', 'p', 'm', 'i', 'I')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'
"""
LOCKS_SQL = (
    "SELECT relation::int8, mode FROM pg_locks WHERE pid = %s AND locktype = 'relation' "
    "AND granted AND relation::int8 >= 16384"
)


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    kind: str  # r, p, m: table; i, I: index
    filenode: int
    table: str  # the table itself, or an index's table
    table_oid: int

    @property
    def is_table(self) -> bool:
        return self.kind in ("r", "p", "m")


def relations(conn: Any) -> dict[int, Relation]:
    """What the connection sees (its own uncommitted changes included)."""
    return {
        row[0]: Relation(*row)
        for row in conn.execute(RELATIONS_SQL).fetchall()
        if row[5] != "alembic_version"  # Alembic's own bookkeeping
    }


def sql_mode(mode: str) -> str:
    """``AccessExclusiveLock`` as the documentation and LOCK TABLE spell it."""
    import re as _re

    return " ".join(_re.findall(r"[A-Z][a-z]+", mode.removesuffix("Lock"))).upper()


def stronger(a: str | None, b: str) -> str:
    return b if a is None or MODES.index(b) > MODES.index(a) else a


@dataclass
class Statement:
    index: int
    sql: str
    started: float
    lock_timeout: str = ""
    duration_s: float = 0.0
    rowcount: int | None = None
    locks: dict[str, str] = field(default_factory=dict)  # relation -> strongest mode
    tables: dict[str, str] = field(default_factory=dict)  # table -> strongest mode
    parents: dict[str, str] = field(default_factory=dict)  # index -> its table
    rewritten: list[str] = field(default_factory=list)
    writers_blocked: set[str] = field(default_factory=set)  # every write to the table waits
    row_writers_blocked: set[str] = field(default_factory=set)  # updates of rows wait
    readers_blocked: set[str] = field(default_factory=set)
    error: str | None = None
    line: int | None = None  # in a .sql file

    @property
    def verb(self) -> str:
        m = re.match(r"\s*(\w+)", self.sql)
        return m.group(1).upper() if m else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "sql": self.sql[:500],
            "duration_ms": round(self.duration_s * 1000, 2),
            "rows": self.rowcount,
            "lock_timeout": self.lock_timeout,
            "locks": dict(sorted(self.locks.items())),
            "rewritten": self.rewritten,
            "writers_blocked": sorted(self.writers_blocked),
            "row_writers_blocked": sorted(self.row_writers_blocked),
            "readers_blocked": sorted(self.readers_blocked),
            "error": self.error,
        }


@dataclass
class Revision:
    revision: str
    path: str
    statements: list[Statement] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    ran: bool = True
    filled: dict[str, int] = field(default_factory=dict)
    fill_problems: list[str] = field(default_factory=list)
    #: the longest time each pre-existing table (or index) was held under ACCESS EXCLUSIVE
    exclusive_s: dict[str, float] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    index_of: dict[str, str] = field(default_factory=dict)  # index -> its table

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "path": self.path,
            "ran": self.ran,
            "duration_ms": round(self.duration_s * 1000, 2),
            "error": self.error,
            "rows_inserted": self.filled,
            "fill_problems": self.fill_problems,
            "access_exclusive_ms": {
                t: round(s * 1000, 2) for t, s in sorted(self.exclusive_s.items())
            },
            "statements": [s.to_dict() for s in self.statements],
        }


class Probe:
    """Measures the statements of one revision at a time on the migration's connection."""

    def __init__(self, observer: Any, prober: Any, psycopg: Any):
        self.observer, self.prober, self.psycopg = observer, prober, psycopg
        self.pid = 0
        self.revision: Revision | None = None
        self.before: dict[int, Relation] = {}  # committed when the revision started
        self.seen: dict[int, Relation] = {}
        #: (oid, mode) -> (since, measuring time spent so far): a lock's hold excludes the
        #: time deployer itself spent measuring while it was held
        self.held: dict[tuple[int, str], tuple[float, float]] = {}
        self.measuring = 0.0
        self.current: Statement | None = None
        self._pre: dict[int, Relation] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- revision boundaries ------------------------------------------------------------
    def start_revision(self, revision: Revision) -> None:
        self.revision = revision
        self.before = relations(self.observer)
        self.seen = dict(self.before)
        self.held = {}

    def committed(self) -> None:
        """After COMMIT (or ROLLBACK): every lock is gone."""
        now = time.monotonic()
        for key in list(self.held):
            self._release(key, now)

    def end_revision(self) -> None:
        self.committed()
        if self.revision is not None:
            spent = self.revision.exclusive_s
            for index, table in self.revision.index_of.items():
                if table in spent:  # said once, on the table itself
                    spent.pop(index, None)
            after = relations(self.observer)
            self.revision.created = {
                r.name for oid, r in after.items() if oid not in self.before
            } | {r.name for oid, r in self.seen.items() if oid not in self.before}
        self.revision = None

    # -- statements -----------------------------------------------------------------------
    def statement_start(self, conn: Any, pid: int, sql: str, line: int | None = None) -> None:
        assert self.revision is not None
        self.pid = pid
        entered = now = time.monotonic()  # a COMMIT since the last statement (an autocommit block)
        held_now = set(self._locks())
        for key in [k for k in self.held if k not in held_now]:
            self._release(key, now)
        lock_timeout = conn.execute("SHOW lock_timeout").fetchone()[0]
        self._pre = relations(conn)
        self.seen.update(self._pre)
        index = len(self.revision.statements) + 1
        self.current = Statement(
            index, " ".join(sql.split()), time.monotonic(), lock_timeout, line=line
        )
        self.revision.statements.append(self.current)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        self.measuring += time.monotonic() - entered
        self.current.started = time.monotonic()

    def forget(self) -> None:
        """The statement is run again (outside a transaction): drop its record."""
        self.statement_end(None, None, "retried")
        if self.revision is not None and self.revision.statements:
            self.revision.statements.pop()

    def statement_end(self, conn: Any, rowcount: int | None, error: str | None = None) -> None:
        st = self.current
        if st is None:
            return
        entered = time.monotonic()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        st.duration_s = entered - st.started
        st.rowcount = rowcount if rowcount is not None and rowcount >= 0 else None
        st.error = error
        now = time.monotonic()
        self._sample(st)
        held_now = {(oid, mode) for oid, mode in self._locks()}
        for key in list(self.held):
            if key not in held_now:
                self._release(key, now)
        if error is None:
            post = relations(conn)
            self.seen.update(post)
            new_files = [
                r
                for oid, r in post.items()
                if oid in self.before and oid in self._pre and r.filenode != self._pre[oid].filenode
            ]
            st.rewritten = sorted(r.name for r in new_files)
            st.parents.update({r.name: r.table for r in new_files if not r.is_table})
        self.current = None
        self.measuring += time.monotonic() - entered

    # -- measurements ---------------------------------------------------------------------
    def _poll(self) -> None:
        st = self.current
        while st is not None and not self._stop.is_set():
            try:
                self._sample(st)
            except self.psycopg.Error:
                return
            self._stop.wait(POLL_S)

    def _locks(self) -> list[tuple[int, str]]:
        return [(int(o), str(m)) for o, m in self.observer.execute(LOCKS_SQL, (self.pid,))]

    def _sample(self, st: Statement) -> None:
        table_modes: dict[int, str] = {}
        index_exclusive: set[int] = set()
        for oid, mode in self._locks():
            rel = self.seen.get(oid)
            if rel is None:
                continue
            self.held.setdefault((oid, mode), (st.started, self.measuring))
            st.locks[rel.name] = stronger(st.locks.get(rel.name), mode)
            if rel.is_table:
                st.tables[rel.name] = stronger(st.tables.get(rel.name), mode)
                table_modes[oid] = stronger(table_modes.get(oid), mode)
            else:
                st.parents[rel.name] = rel.table
                if mode == ACCESS_EXCLUSIVE:  # queries planned on the table open the index
                    index_exclusive.add(rel.table_oid)
        for oid in set(table_modes) | index_exclusive:
            rel = self.before.get(oid)
            if rel is not None:  # tables created in this revision are nobody else's yet
                self._probe(st, rel, table_modes.get(oid), oid in index_exclusive)

    def _probe(self, st: Statement, rel: Relation, mode: str | None, index_ae: bool) -> None:
        """What a concurrent writer or reader of ``rel`` would meet now (each probe is
        bounded by the prober's lock_timeout and rolled back)."""
        sql = self.psycopg.sql
        checks = []
        if rel.name not in st.writers_blocked and (mode in BLOCKS_WRITERS or index_ae):
            checks.append((st.writers_blocked, "LOCK TABLE {} IN ROW EXCLUSIVE MODE"))
        if rel.name not in st.readers_blocked and (mode == ACCESS_EXCLUSIVE or index_ae):
            checks.append((st.readers_blocked, "SELECT 1 FROM {} LIMIT 1"))
        if (
            rel.name not in st.row_writers_blocked
            and rel.name not in st.writers_blocked
            and mode == "RowExclusiveLock"
        ):
            checks.append((st.row_writers_blocked, "SELECT 1 FROM {} LIMIT 1 FOR UPDATE NOWAIT"))
        for blocked, statement in checks:
            try:
                with self.prober.transaction():
                    self.prober.execute(
                        sql.SQL(statement).format(sql.Identifier(rel.schema, rel.name))
                    )
                    raise _Rollback
            except _Rollback:
                pass
            except self.psycopg.errors.LockNotAvailable:
                blocked.add(rel.name)
            except self.psycopg.Error:
                pass  # gone, or not visible: nothing a concurrent session could meet

    def _release(self, key: tuple[int, str], now: float) -> None:
        since, measured_before = self.held.pop(key)
        oid, mode = key
        rel = self.seen.get(oid)
        if mode != ACCESS_EXCLUSIVE or rel is None or oid not in self.before:
            return
        if self.revision is not None:
            spent = self.revision.exclusive_s
            held = max(0.0, now - since - (self.measuring - measured_before))
            spent[rel.name] = max(spent.get(rel.name, 0.0), held)
            if not rel.is_table:
                self.revision.index_of[rel.name] = rel.table


class _Rollback(Exception):
    """Leave a probe's transaction without keeping anything."""
