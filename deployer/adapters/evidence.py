"""Evidence stores: SQLite (WAL, the default) and PostgreSQL (SQLAlchemy Core, shared).

Appends are serialised so concurrent writers never fork the chain: SQLite takes the write
lock first (BEGIN IMMEDIATE), PostgreSQL a transaction-scoped advisory lock. Each row keeps
the record's canonical JSON; `verify` recomputes every hash from it. A record that cannot be
written after retries goes to a local spool file (fsynced) that the next command flushes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tenacity import Retrying, stop_after_attempt, wait_exponential

from deployer.errors import DeployerError, InputError
from deployer.evidence.record import GENESIS, canonical, seal

ADVISORY_KEY = 0x64_65_70_6C  # "depl"


class EvidenceError(DeployerError):
    pass


class Store(Protocol):
    url: str

    def append(self, record: dict[str, Any]) -> dict[str, Any]: ...

    def records(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class SqliteStore:
    def __init__(self, path: Path):
        self.path = path
        self.url = f"sqlite:///{path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # created 0600 like the journal (SQLite gives its -wal/-shm files the same mode)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS evidence (seq INTEGER PRIMARY KEY, "
                "id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, app TEXT, environment TEXT, "
                "started_at TEXT, body TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise EvidenceError(f"evidence store {path}: {exc}") from exc

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute(
                    "SELECT seq, body FROM evidence ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (row[0] + 1, _head_hash(row[1])) if row else (1, GENESIS)
                sealed = seal(record, seq, prev)
                self.db.execute(
                    "INSERT INTO evidence (seq, id, kind, app, environment, started_at, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        seq,
                        sealed["id"],
                        sealed["kind"],
                        sealed.get("app"),
                        sealed.get("environment"),
                        sealed.get("started_at"),
                        canonical(sealed).decode(),
                    ),
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise EvidenceError(f"evidence store {self.path}: {exc}") from exc
        return sealed

    def records(self) -> list[dict[str, Any]]:
        try:
            rows = self.db.execute("SELECT body FROM evidence ORDER BY seq").fetchall()
        except sqlite3.Error as exc:
            raise EvidenceError(f"evidence store {self.path}: {exc}") from exc
        return [_parse_row(r[0]) for r in rows]

    def close(self) -> None:
        self.db.close()


class PostgresStore:
    def __init__(self, url: str):
        try:
            from sqlalchemy import (
                Column,
                Integer,
                MetaData,
                Table,
                Text,
                create_engine,
            )
        except ImportError as exc:
            raise InputError(
                "a PostgreSQL evidence store needs SQLAlchemy and psycopg: "
                "pip install 'deployer[postgres]'"
            ) from exc
        self.url = url
        driver_url = (
            url.replace("postgresql://", "postgresql+psycopg://", 1)
            if url.startswith("postgresql://")
            else url
        )
        self.engine = create_engine(
            driver_url, pool_pre_ping=True, connect_args={"connect_timeout": 5}
        )
        meta = MetaData()
        self.table = Table(
            "deployer_evidence",
            meta,
            Column("seq", Integer, primary_key=True, autoincrement=False),
            Column("id", Text, nullable=False, unique=True),
            Column("kind", Text, nullable=False),
            Column("app", Text),
            Column("environment", Text),
            Column("started_at", Text),
            Column("body", Text, nullable=False),
        )
        self._meta = meta
        self._ready = False

    def _ensure(self, conn: Any) -> None:
        if not self._ready:
            self._meta.create_all(conn, checkfirst=True)
            self._ready = True

    def _run(self, fn: Callable[[Any], Any]) -> Any:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})
                self._ensure(conn)
                return fn(conn)
        except SQLAlchemyError as exc:
            first = str(exc).splitlines()[0]
            raise EvidenceError(f"evidence store {self._safe_url()}: {first}") from exc

    def _safe_url(self) -> str:
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "postgresql://***"

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        from sqlalchemy import select

        t = self.table

        def write(conn: Any) -> dict[str, Any]:
            row = conn.execute(select(t.c.seq, t.c.body).order_by(t.c.seq.desc()).limit(1)).first()
            seq, prev = (row[0] + 1, _head_hash(row[1])) if row else (1, GENESIS)
            sealed = seal(record, seq, prev)
            conn.execute(
                t.insert().values(
                    seq=seq,
                    id=sealed["id"],
                    kind=sealed["kind"],
                    app=sealed.get("app"),
                    environment=sealed.get("environment"),
                    started_at=sealed.get("started_at"),
                    body=canonical(sealed).decode(),
                )
            )
            return sealed

        result: dict[str, Any] = self._run(write)
        return result

    def records(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        t = self.table
        rows = self._run(lambda conn: conn.execute(select(t.c.body).order_by(t.c.seq)).all())
        return [_parse_row(r[0]) for r in rows]

    def close(self) -> None:
        self.engine.dispose()


def _head_hash(body: Any) -> str:
    """The hash of the chain's last row; a damaged row stops appends (verify names it)."""
    try:
        value = json.loads(body)["hash"]
    except (ValueError, TypeError, KeyError) as exc:
        raise EvidenceError(
            "the last evidence record is damaged; `deployer evidence verify` names it"
        ) from exc
    if not isinstance(value, str):
        raise EvidenceError("the last evidence record has no hash")
    return value


def _parse_row(body: Any) -> dict[str, Any]:
    """A stored record; a damaged one comes back as a stub that verification rejects."""
    try:
        rec = json.loads(body)
    except (ValueError, TypeError):
        rec = None
    if not isinstance(rec, dict):
        return {"id": "?", "kind": "?", "damaged": True, "seq": None}
    return rec


def open_store(url: str | None, default_path: Path) -> Store:
    if not url:
        return SqliteStore(default_path)
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url[len("sqlite:///") :]))
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return PostgresStore(url.replace("postgres://", "postgresql://", 1))
    raise InputError(
        f"evidence url {url.split(':')[0]}:...: use sqlite:///PATH or postgresql://..."
    )


class Spool:
    """Records that could not be stored, kept in order until a store takes them."""

    def __init__(self, path: Path):
        self.path = path
        self.warnings: list[str] = []

    @property
    def quarantine(self) -> Path:
        return self.path.with_name(self.path.name + ".quarantine")

    def put(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, canonical(record) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[dict[str, Any]]:
        """Spooled records in order; a line that is not a record (a torn write) is moved to
        the quarantine file beside the spool, with a warning, and never blocks the rest."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        good: list[dict[str, Any]] = []
        bad: list[bytes] = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                rec = None
            if isinstance(rec, dict) and isinstance(rec.get("id"), str) and rec.get("kind"):
                good.append(rec)
            else:
                bad.append(line)
        if bad:
            fd = os.open(self.quarantine, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"".join(b + b"\n" for b in bad))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._rewrite(good)
            self.warnings.append(
                f"{len(bad)} unreadable line(s) of {self.path} moved to {self.quarantine}"
            )
        return good

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        if not records:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(canonical(r) + b"\n" for r in records))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def flush(self, store: Store) -> int:
        """Append every spooled record to ``store`` in order; keep what was not written."""
        pending = self.pending()
        done = 0
        try:
            for rec in pending:
                store.append(rec)
                done += 1
        finally:
            if done:
                self._rewrite(pending[done:])
        return done


def append_or_spool(
    open_: Callable[[], Store], record: dict[str, Any], spool: Spool, attempts: int = 3
) -> tuple[dict[str, Any] | None, str | None]:
    """(the sealed record, None) or (None, why it was spooled). Flushes the spool first."""
    last: Exception | None = None
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        ):
            with attempt:
                store = open_()
                try:
                    spool.flush(store)
                    return store.append(record), None
                finally:
                    store.close()
    except Exception as exc:  # any store failure: the record waits in the spool
        last = exc
    spool.put(record)
    return None, f"{last}; kept in {spool.path}, the next release flushes it"
