"""Evidence stores: SQLite (WAL, the default) and PostgreSQL (SQLAlchemy Core, shared).

Appends are serialised so concurrent writers never fork the chain: SQLite takes the write
lock first (BEGIN IMMEDIATE), PostgreSQL a transaction-scoped advisory lock. Each row keeps
the record's canonical JSON; `verify` recomputes every hash from it. A record that cannot be
written after retries goes to a local spool file (fsynced) that the next command flushes.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tenacity import Retrying, stop_after_attempt, wait_exponential

from deployer.errors import DeployerError, InputError
from deployer.evidence.record import GENESIS, Sign, canonical, seal

ADVISORY_KEY = 0x64_65_70_6C  # "depl"


class EvidenceError(DeployerError):
    pass


class Store(Protocol):
    url: str

    def append(self, record: dict[str, Any], sign: Sign | None = None) -> dict[str, Any]: ...

    def records(self) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class SqliteStore:
    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = path
        self.url = f"sqlite:///{path}"
        if readonly:
            self.db = _open_readonly(path)
            return
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

    def append(self, record: dict[str, Any], sign: Sign | None = None) -> dict[str, Any]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute(
                    "SELECT seq, body FROM evidence ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (row[0] + 1, _head_hash(row[1])) if row else (1, GENESIS)
                sealed = seal(record, seq, prev, sign)
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
                # SQLite may have rolled back already (a full disk does): the error that
                # matters is the first one, never "cannot rollback"
                if self.db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise EvidenceError(f"evidence store {self.path}: {_said(exc)}") from exc
        return sealed

    def records(self) -> list[dict[str, Any]]:
        try:
            rows = self.db.execute("SELECT seq, body FROM evidence ORDER BY seq").fetchall()
        except sqlite3.Error as exc:
            raise EvidenceError(f"evidence store {self.path}: {_said(exc)}") from exc
        return [_parse_row(r[1], r[0]) for r in rows]

    def close(self) -> None:
        self.db.close()


def _said(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "disk is full" in text or "disk I/O error" in text:
        return f"{text} (no space left on the disk that holds it?)"
    return text


def _open_readonly(path: Path) -> sqlite3.Connection:
    """The store opened for reading only: nothing is created (a reading command that
    writes would hide a deleted store), and each way it can be gone is named."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StoreMissing(f"no evidence store at {path}") from None
    except OSError as exc:
        raise EvidenceError(f"evidence store {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise StoreMissing(
            f"the evidence store {path} is an empty file (0 bytes): its records are gone"
        )
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        found = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evidence'"
        ).fetchone()
    except sqlite3.Error as exc:
        raise EvidenceError(f"evidence store {path}: {_said(exc)} (not an SQLite file?)") from exc
    if found is None:
        db.close()
        raise StoreMissing(f"the evidence store {path} has no evidence table (dropped?)")
    return db


class StoreMissing(EvidenceError):
    """The store (or its table) is not there: never recorded, or removed."""


class PostgresStore:
    def __init__(self, url: str, *, readonly: bool = False):
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
        self.readonly = readonly

    def _ensure(self, conn: Any) -> None:
        if self._ready:
            return
        if self.readonly:  # reading never creates the table
            from sqlalchemy import inspect

            if not inspect(conn).has_table("deployer_evidence"):
                raise StoreMissing(
                    f"the evidence store {self._safe_url()} has no deployer_evidence table "
                    "(never written, or dropped?)"
                )
        else:
            self._meta.create_all(conn, checkfirst=True)
        self._ready = True

    def _run(self, fn: Callable[[Any], Any]) -> Any:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as conn:
                if not self.readonly:
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

    def append(self, record: dict[str, Any], sign: Sign | None = None) -> dict[str, Any]:
        from sqlalchemy import select

        t = self.table

        def write(conn: Any) -> dict[str, Any]:
            row = conn.execute(select(t.c.seq, t.c.body).order_by(t.c.seq.desc()).limit(1)).first()
            seq, prev = (row[0] + 1, _head_hash(row[1])) if row else (1, GENESIS)
            sealed = seal(record, seq, prev, sign)
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
        rows = self._run(
            lambda conn: conn.execute(select(t.c.seq, t.c.body).order_by(t.c.seq)).all()
        )
        return [_parse_row(r[1], r[0]) for r in rows]

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


def _parse_row(body: Any, seq: Any = None) -> dict[str, Any]:
    """A stored record; a damaged one comes back as a stub (with the row's own seq and
    what is wrong) that verification names."""
    try:
        rec = json.loads(body)
    except (ValueError, TypeError):
        return {"id": "?", "kind": "?", "seq": seq, "damaged": "its body is not JSON"}
    if not isinstance(rec, dict):
        return {"id": "?", "kind": "?", "seq": seq, "damaged": "its body is not a record"}
    return rec


def open_store(url: str | None, default_path: Path, *, readonly: bool = False) -> Store:
    if not url:
        return SqliteStore(default_path, readonly=readonly)
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url[len("sqlite:///") :]), readonly=readonly)
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return PostgresStore(url.replace("postgres://", "postgresql://", 1), readonly=readonly)
    raise InputError(
        f"evidence url {url.split(':')[0]}:...: use sqlite:///PATH or postgresql://..."
    )


class Spool:
    """Records that could not be stored, kept in order until a store takes them."""

    def __init__(self, path: Path):
        self.path = path
        self.warnings: list[str] = []

    @property
    def head_path(self) -> Path:
        """Where the chain's head is kept after each append (see :func:`write_head`)."""
        return self.path.with_name(
            self.path.name.replace("spool", "head").replace(".jsonl", ".json")
        )

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

    def pending_readonly(self) -> list[dict[str, Any]]:
        """The spooled records that can be read, touching nothing (reading commands)."""
        try:
            raw = self.path.read_bytes()
        except OSError:
            return []
        out = []
        for line in raw.split(b"\n"):
            with contextlib.suppress(UnicodeDecodeError, ValueError):
                rec = json.loads(line.decode("utf-8"))
                if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                    out.append(rec)
        return out

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

    def flush(self, store: Store, sign: Sign | None = None) -> int:
        """Append every spooled record to ``store`` in order; keep what was not written."""
        pending = self.pending()
        done = 0
        try:
            for rec in pending:
                store.append(rec, sign)
                done += 1
        finally:
            if done:
                self._rewrite(pending[done:])
        return done


def write_head(path: Path, sealed: dict[str, Any]) -> None:
    """Keep the chain's head (seq and hash of the record just appended) beside the store:
    `deployer evidence verify` then finds a deleted or rewritten newest record, a dropped
    table or an emptied file, which a hash chain alone cannot show. Whoever can write both
    the store and this file can still rewrite history: keep a checkpoint elsewhere too.
    Best effort (the record is stored already)."""
    doc = {"seq": sealed.get("seq"), "hash": sealed.get("hash")}
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(OSError):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(doc) + "\n")
        os.replace(tmp, path)


def read_head(path: Path) -> tuple[int, str] | None:
    """The head kept by :func:`write_head` (None: none, or unreadable)."""
    try:
        doc = json.loads(path.read_text()[:1000])
        seq, digest = doc["seq"], doc["hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(seq, int) or not isinstance(digest, str) or len(digest) != 64:
        return None
    return seq, digest


def append_or_spool(
    open_: Callable[[], Store],
    record: dict[str, Any],
    spool: Spool,
    attempts: int = 3,
    sign: Sign | None = None,
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
                    spool.flush(store, sign)
                    sealed = store.append(record, sign)
                finally:
                    store.close()
                write_head(spool.head_path, sealed)
                return sealed, None
    except Exception as exc:  # any store failure: the record waits in the spool
        last = exc
    spool.put(record)
    return None, f"{last}; kept in {spool.path}, the next release flushes it"
