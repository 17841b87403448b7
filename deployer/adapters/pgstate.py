"""The deploy lock and the unfinished operation's record in PostgreSQL, for a target with no
host of its own (Vercel) or several runners without a shared router host.

The lock is a session-level advisory lock (``pg_try_advisory_lock``) taken on a connection
the running deployer keeps open for the whole operation: PostgreSQL releases it the moment
that session ends, whatever ended it (a kill -9 of deployer, a reclaimed CI runner, a lost
network), so a dead holder never blocks anyone for a TTL. The holder's description (who,
where, which operation, its server pid) is a row beside it, shown to whoever is refused. The
operation record is a row per app and environment, written before the operation changes
anything and deleted when it ends, so `deployer recover` finds it from any runner.

Library errors (psycopg) become deployer's: a store that cannot be reached is exit 7.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import threading
import time
from typing import Any

from deployer.adapters.process import process_start
from deployer.commands import lock as lock_cmd
from deployer.errors import HostError, LockHeldError, LockLost
from deployer.redaction import scrub
from deployer.values import Shell

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployer_lock_holders (
    key bigint PRIMARY KEY, scope text NOT NULL, info jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS deployer_operations (
    scope text PRIMARY KEY, id text NOT NULL, doc jsonb NOT NULL
);
"""


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:  # the postgres extra
        raise HostError(
            "a PostgreSQL lock.url needs psycopg: pip install 'deployer[postgres]'"
        ) from exc
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        conn.execute(SCHEMA)
        return conn
    except psycopg.Error as exc:
        raise HostError(f"state store {_safe(url)}: {_first(exc)}") from exc


def _safe(url: str) -> str:
    _, at, tail = url.rpartition("@")
    return f"postgresql://***@{tail}" if at else scrub(url)


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class PgLock:
    """The same surface as :class:`deployer.engine.locking.DeployLock`."""

    def __init__(self, url: str, scope: str, ttl: float):
        self.url, self.scope, self.ttl = url, scope, ttl
        self.path = f"{_safe(url)} (advisory lock {scope})"
        self.key = int.from_bytes(hashlib.sha256(scope.encode()).digest()[:8], "big", signed=True)
        self.conn: Any = None
        self.lost: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _holder_row(self, conn: Any) -> lock_cmd.LockState:
        held = conn.execute(
            "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (self.key,),
        ).fetchone()
        row = conn.execute(
            "SELECT info FROM deployer_lock_holders WHERE key = %s", (self.key,)
        ).fetchone()
        if held is None:
            return lock_cmd.LockState("absent")
        info = json.dumps(row[0]) if row else ""
        return lock_cmd.LockState("dir", info)

    def state(self) -> lock_cmd.LockState:
        conn = _connect(self.url)
        try:
            return self._holder_row(conn)
        finally:
            conn.close()

    def holder(self) -> lock_cmd.LockInfo | None:
        return self.state().info

    def acquire(self, op_id: str) -> None:
        conn = _connect(self.url)
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
            if not got:
                state = self._holder_row(conn)
                holder = state.info
                who = holder.describe() if holder else "a session that did not say who it is"
                raise LockHeldError(
                    f"locked by {who}, whose PostgreSQL session is alive ({self.path}); it is "
                    "freed the moment that session ends"
                )
            now = time.time()
            info = lock_cmd.LockInfo(
                op_id, getpass.getuser(), socket.gethostname(), os.getpid(), now, self.ttl,
                now, os.getuid(), process_start(),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO deployer_lock_holders (key, scope, info) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET info = EXCLUDED.info, scope = EXCLUDED.scope",
                (self.key, self.scope, info.to_json()),
            )
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    # the session itself is the heartbeat: a thread notices when it is gone
    def start_heartbeat(self) -> None:
        if self.conn is None:
            return
        self._stop.clear()
        interval = max(0.5, min(self.ttl / 3, 10.0))

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self.conn.execute("SELECT 1")
                except Exception:  # the session (and so the lock) is gone
                    self.lost = LockLost(f"the PostgreSQL session holding {self.path} ended")
                    return

        self._thread = threading.Thread(target=beat, name="deployer-pg-lock", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def release(self, op_id: str, also: Shell | None = None) -> None:
        self.stop_heartbeat()
        if self.conn is None:
            return
        try:
            self.conn.execute("DELETE FROM deployer_lock_holders WHERE key = %s", (self.key,))
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except Exception:
            pass  # the session is gone: so is the lock
        finally:
            self.conn.close()
            self.conn = None

    def break_(self) -> lock_cmd.LockState:
        """`deployer unlock`: a lock held by a live session cannot be broken (end that
        session); a holder row left without its lock is removed."""
        conn = _connect(self.url)
        try:
            state = self._holder_row(conn)
            if state.kind != "absent":
                raise LockHeldError(
                    f"{self.path} is held by a live PostgreSQL session; it is freed when that "
                    "session ends (stop the deployer that holds it, or end its session)"
                )
            conn.execute("DELETE FROM deployer_lock_holders WHERE key = %s", (self.key,))
            return state
        finally:
            conn.close()


class PgOperationState:
    """The same surface as :class:`deployer.engine.opstate.OperationState`."""

    def __init__(self, url: str, scope: str):
        self.url, self.scope = url, scope
        self.path = f"{_safe(url)} (operation record {scope})"

    @property
    def where(self) -> str:
        return self.path

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        conn = _connect(self.url)
        try:
            return (
                conn.execute(sql, params).fetchone()
                if sql.startswith("SELECT")
                else (conn.execute(sql, params))
            )
        finally:
            conn.close()

    def read(self) -> dict[str, Any] | None:
        row = self._run("SELECT doc FROM deployer_operations WHERE scope = %s", (self.scope,))
        if row is None:
            return None
        doc = row[0]
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            return {"id": "?", "phase": "unreadable", "damaged": True}
        return doc

    def write(self, doc: dict[str, Any]) -> None:
        self._run(
            "INSERT INTO deployer_operations (scope, id, doc) VALUES (%s, %s, %s) "
            "ON CONFLICT (scope) DO UPDATE SET id = EXCLUDED.id, doc = EXCLUDED.doc",
            (self.scope, str(doc.get("id")), json.dumps(doc)),
        )

    def clear(self, op_id: str) -> None:
        self._run(
            "DELETE FROM deployer_operations WHERE scope = %s AND id = %s", (self.scope, op_id)
        )

    def read_deferred(self) -> dict[str, Any] | None:
        row = self._run(
            "SELECT doc FROM deployer_operations WHERE scope = %s", (self.scope + "#deferred",)
        )
        return row[0] if row and isinstance(row[0], dict) else None

    def write_deferred(self, doc: dict[str, Any] | None) -> None:
        scope = self.scope + "#deferred"
        if doc is None:
            self._run("DELETE FROM deployer_operations WHERE scope = %s", (scope,))
            return
        self._run(
            "INSERT INTO deployer_operations (scope, id, doc) VALUES (%s, %s, %s) "
            "ON CONFLICT (scope) DO UPDATE SET id = EXCLUDED.id, doc = EXCLUDED.doc",
            (scope, "deferred", json.dumps(doc)),
        )

    def write_command(self, doc: dict[str, Any]) -> Shell | None:
        return None  # not a file on a host: written with write()

    def clear_command(self, op_id: str) -> Shell | None:
        return None
