"""Run the pending migrations in the scratch database, one revision at a time, measured.

Alembic revisions run online through Alembic itself (no env.py: deployer configures the
migration context on its own instrumented connection, one transaction per revision, as
``transaction_per_migration`` does), so `op.get_bind()`, data queries and autocommit blocks
behave as in production. `.sql` files run statement by statement as psql runs them
(autocommit; BEGIN/COMMIT in the file honoured; the whole file in one transaction when
``sql_in_transaction`` is set).

The schema the pending revisions start from is the chain itself (every revision up to
``--start-after``, applied unmeasured), or ``--schema-from`` a ``pg_dump --schema-only`` file
(then ``--start-after`` names the revision that dump is at).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer import redaction
from deployer.errors import InputError, printable
from deployer.lint.operations import Migration
from deployer.lint.sql import split_statements
from deployer.lint.stats import TableStats
from deployer.prove.fill import fill
from deployer.prove.instrument import Probe, Revision, relations
from deployer.prove.scratch import Server

#: statements deployer does not measure: Alembic's version table and catalog look-ups
_NOT_MEASURED = re.compile(r"^\s*(SELECT|SHOW)\b|alembic_version", re.IGNORECASE)
_TX_CONTROL = re.compile(r"\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b", re.I)
#: statements PostgreSQL refuses in a transaction block
_NO_TX = re.compile(
    r"\bCONCURRENTLY\b|^\s*(VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|"
    r"CREATE\s+TABLESPACE|DROP\s+TABLESPACE|REINDEX\s+(SYSTEM|DATABASE))\b",
    re.I,
)


@dataclass
class ProveOptions:
    rows: int = 10_000
    lock_bound_s: float = 1.0
    schema_from: Path | None = None
    start_after: str | None = None
    i_know: bool = False
    sql_in_transaction: bool = False
    #: a table-stats file's sizes: each touched table gets its own row count, at most
    #: ``rows`` (a table it does not list gets ``rows``)
    stats: TableStats | None = None

    def rows_of(self, schema: str, table: str) -> int:
        known = self.stats.rows(f"{schema}.{table}") if self.stats is not None else None
        return self.rows if known is None else min(known, self.rows)


@dataclass
class ProveRun:
    database: str  # the server, password hidden
    rows: int
    revisions: list[Revision] = field(default_factory=list)
    seconds: float = 0.0


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc  # the driver's error under SQLAlchemy's
    text = str(cause).strip()
    first = text.splitlines()[0] if text else type(cause).__name__
    return printable(redaction.scrub(f"{type(cause).__name__}: {first}"), 300)


def _table_name(name: str) -> tuple[str | None, str]:
    parts = [p.strip('"') for p in name.split(".")]
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


class _Runner:
    def __init__(self, server: Server, database: str, options: ProveOptions):
        self.server, self.options = server, options
        self.psycopg = server.psycopg
        self.observer = server.connect(database)
        self.prober = server.connect(database)
        # every probe is bounded: SELECT ... FOR UPDATE NOWAIT still waits for its table lock
        self.prober.execute("SET lock_timeout = '20ms'")
        self.prober.execute("SET statement_timeout = '2s'")
        self.filler = server.connect(database)
        self.probe = Probe(self.observer, self.prober, self.psycopg)
        self.database = database
        self.filled: dict[str, int] = {}

    def close(self) -> None:
        for conn in (self.observer, self.prober, self.filler):
            conn.close()

    def load_schema(self, dump: Path) -> None:
        try:
            text = dump.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--schema-from {dump}: cannot read: {exc}") from exc
        # psql's meta-commands (\connect, \restrict) are not SQL
        body = "\n".join(line for line in text.splitlines() if not line.startswith("\\"))
        try:
            with self.server.connect(self.database) as conn:
                conn.execute(body)
        except self.psycopg.Error as exc:
            raise InputError(f"--schema-from {dump}: does not load: {_one_line(exc)}") from exc

    def fill_for(self, rev: Revision, mig: Migration) -> None:
        """Rows in the existing, empty tables this revision works on: each operation's
        table (or an index's table), and the tables its statement names (the other side of
        a foreign key)."""
        rels = list(relations(self.filler).values())
        wanted: set[tuple[str | None, str]] = set()
        for op in mig.operations:
            if op.table:
                wanted.add(_table_name(op.table))
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", op.sql))
            wanted |= {(None, r.name) for r in rels if r.name in words}
        tables = {
            (r.schema, r.table)
            for r in rels
            if any(r.name == name and schema in (None, r.schema) for schema, name in wanted)
        }
        for schema, table in sorted(tables):
            before = set(self.filled)
            fill(
                self.filler,
                self.psycopg,
                schema,
                table,
                self.options.rows_of,
                self.filled,
                rev.fill_problems,
            )
            rev.filled.update({k: v for k, v in self.filled.items() if k not in before})

    # -- Alembic ----------------------------------------------------------------------------
    def alembic(self, folder: Path, pending: list[Migration]) -> list[Revision]:
        from alembic.config import Config
        from alembic.runtime.environment import EnvironmentContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import create_engine, event, pool

        for p in (str(folder.parent.parent), str(Path.cwd())):
            if p not in sys.path:
                sys.path.insert(0, p)
        cfg = Config()
        cfg.set_main_option("script_location", str(folder.parent))
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("version_locations", str(folder))
        try:
            script = ScriptDirectory.from_config(cfg)
            script.get_heads()  # loads every revision now: a broken import is one clear error
        except Exception as exc:
            raise InputError(
                f"--prove: cannot load the revisions in {folder}: {_one_line(exc)}"
            ) from exc
        engine = create_engine(self.server.sqlalchemy_url(self.database), poolclass=pool.NullPool)
        probe = self.probe

        def raw(conn: Any) -> Any:
            return conn.connection.driver_connection

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if probe.revision is not None and not _NOT_MEASURED.search(statement):
                r = raw(conn)
                probe.statement_start(r, r.info.backend_pid, statement)

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if probe.current is not None:
                probe.statement_end(raw(conn), cursor.rowcount)

        @event.listens_for(engine, "handle_error")
        def _error(ctx: Any) -> None:
            if probe.current is not None:
                probe.statement_end(None, None, _one_line(ctx.original_exception))

        def upgrade(conn: Any, target: str) -> None:
            def steps(rev: Any, context: Any) -> Any:
                return script._upgrade_revs(target, rev)

            env = EnvironmentContext(cfg, script, fn=steps, destination_rev=target)
            env.configure(connection=conn, transaction_per_migration=True)
            with env.begin_transaction():
                env.run_migrations()

        out: list[Revision] = []
        try:
            with engine.connect() as conn:
                if self.options.schema_from is not None and self.options.start_after:
                    self._stamp(self.options.start_after)
                elif self.options.start_after:
                    try:
                        upgrade(conn, self.options.start_after)
                    except Exception as exc:
                        raise InputError(
                            f"--prove: the chain up to {self.options.start_after} does not "
                            f"apply to an empty database: {_one_line(exc)} (give --schema-from)"
                        ) from exc
                failed = False
                for mig in pending:
                    rev = Revision(mig.revision or "?", str(mig.path))
                    out.append(rev)
                    if failed:
                        rev.ran = False
                        continue
                    self.fill_for(rev, mig)
                    probe.start_revision(rev)
                    started = time.monotonic()
                    try:
                        upgrade(conn, rev.revision)
                    except Exception as exc:
                        rev.error = _one_line(exc)
                        failed = True
                        if conn.in_transaction():
                            conn.rollback()
                    finally:
                        rev.duration_s = time.monotonic() - started
                        probe.end_revision()
        finally:
            engine.dispose()
        return out

    def _stamp(self, revision: str) -> None:
        with self.server.connect(self.database) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS alembic_version "
                "(version_num varchar(32) NOT NULL PRIMARY KEY)"
            )
            conn.execute("DELETE FROM alembic_version")
            conn.execute("INSERT INTO alembic_version VALUES (%s)", (revision,))

    def _sql_statement(self, conn: Any, pid: int, stmt: str, line: int) -> None:
        """One statement as psql runs it. Outside the file's own transaction it runs in a
        transaction of its own, so that its locks are still held when deployer reads them
        (a statement PostgreSQL refuses in a transaction block runs bare, sampled)."""
        idle = self.psycopg.pq.TransactionStatus.IDLE
        control = _TX_CONTROL.match(stmt)
        own = conn.info.transaction_status == idle and not control and not _NO_TX.search(stmt)
        if control:  # BEGIN, COMMIT, ROLLBACK themselves are not measured
            conn.execute(stmt)
            if conn.info.transaction_status == idle:
                self.probe.committed()
            return
        if own:
            conn.execute("BEGIN")
        self.probe.statement_start(conn, pid, stmt, line)
        try:
            cur = conn.execute(stmt)
        except self.psycopg.errors.ActiveSqlTransaction:
            if not own:
                self.probe.statement_end(conn, None, "cannot run inside a transaction block")
                raise
            conn.execute("ROLLBACK")
            self.probe.forget()
            self.probe.statement_start(conn, pid, stmt, line)
            own = False
            try:
                cur = conn.execute(stmt)
            except self.psycopg.Error as exc:
                self.probe.statement_end(conn, None, _one_line(exc))
                raise
        except self.psycopg.Error as exc:
            self.probe.statement_end(conn, None, _one_line(exc))
            raise
        self.probe.statement_end(conn, cur.rowcount)
        if own:
            conn.execute("COMMIT")
            self.probe.committed()

    # -- .sql files ---------------------------------------------------------------------------
    def sql_files(self, pending: list[Migration]) -> list[Revision]:
        out: list[Revision] = []
        failed = False
        conn = self.server.connect(self.database)
        pid = conn.info.backend_pid
        try:
            for mig in pending:
                rev = Revision(mig.path.name, str(mig.path))
                out.append(rev)
                if failed:
                    rev.ran = False
                    continue
                self.fill_for(rev, mig)
                self.probe.start_revision(rev)
                started = time.monotonic()
                try:
                    statements = split_statements(mig.path.read_text(encoding="utf-8"))
                    wrap = self.options.sql_in_transaction and not any(
                        _TX_CONTROL.match(s) for _, s in statements
                    )
                    if wrap:
                        statements = [(0, "BEGIN"), *statements, (0, "COMMIT")]
                    for line, stmt in statements:
                        self._sql_statement(conn, pid, stmt, line)
                    if conn.info.transaction_status != self.psycopg.pq.TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                        raise InputError("BEGIN without COMMIT: psql would roll it back")
                except Exception as exc:  # a statement, the file, or the SQL scanner
                    rev.error = _one_line(exc)
                    failed = True
                    if conn.info.transaction_status != self.psycopg.pq.TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                finally:
                    rev.duration_s = time.monotonic() - started
                    self.probe.end_revision()
        finally:
            conn.close()
        return out


def prove(pending: list[Migration], url: str, options: ProveOptions) -> ProveRun:
    """Create the scratch database, bring it to the schema the pending revisions start from,
    run them measured, drop it."""
    python = [m for m in pending if m.path.suffix == ".py"]
    sql = [m for m in pending if m.path.suffix == ".sql"]
    if python and sql:
        raise InputError("--prove runs one kind at a time: Alembic revisions or .sql files")
    folders = {m.path.parent.resolve() for m in python}
    if len(folders) > 1:
        raise InputError("--prove runs one Alembic versions folder at a time")
    server = Server(url)
    report = ProveRun(server.shown, options.rows)
    started = time.monotonic()
    with server.scratch(options.i_know) as database:
        runner = _Runner(server, database, options)
        try:
            if options.schema_from is not None:
                runner.load_schema(options.schema_from)
            if python:
                report.revisions = runner.alembic(folders.pop(), python)
            elif sql:
                report.revisions = runner.sql_files(sql)
        finally:
            runner.close()
    report.seconds = time.monotonic() - started
    return report
