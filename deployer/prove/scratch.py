"""The scratch database `--prove` works in: created on the server a URL names, dropped after.

deployer never migrates the database the URL names. It refuses a URL whose database already
holds tables (a production URL given by mistake) unless the user says `--i-know`, creates
``deployer_prove_<time>_<random>`` beside it, and drops it at the end (also after an error
or a signal). A run killed with SIGKILL leaves its scratch database behind: the next run
drops those older than an hour that nobody is connected to.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deployer import redaction
from deployer.errors import DeployerError, HostError, InputError, printable

PREFIX = "deployer_prove_"
STALE_AFTER_S = 3600


def _libs() -> tuple[Any, Any]:
    try:
        import alembic  # noqa: F401  (the revisions run through it)
        import psycopg
        import sqlalchemy
    except ImportError as exc:
        raise InputError(
            f"--prove needs PostgreSQL libraries ({exc.name} is missing): "
            "pip install 'deployer[postgres]'"
        ) from exc
    return psycopg, sqlalchemy


def resolve_url(value: str, what: str = "--prove") -> str:
    """The URL itself, or ``env:NAME`` to read it from the environment (a password in an
    argument shows in the process list)."""
    if value.startswith("env:"):
        name = value[4:]
        url = os.environ.get(name)
        if not url:
            raise InputError(f"{what} env:{printable(name)}: the variable is not set")
        value = url
    if not re.match(r"^postgres(ql)?(\+\w+)?://", value):
        raise InputError(f"{what} takes a postgresql:// URL (or env:NAME)")
    return value


class Server:
    """The PostgreSQL server of the URL; connections by database name."""

    def __init__(self, url: str):
        self.psycopg, sqlalchemy = _libs()
        try:
            parsed = sqlalchemy.engine.make_url(url)
        except Exception as exc:  # sqlalchemy.exc.ArgumentError
            raise InputError(f"--prove: not a database URL: {printable(exc)}") from exc
        self.url = parsed.set(drivername="postgresql")
        if parsed.password:
            redaction.register([str(parsed.password)])
        self.database = parsed.database or "postgres"
        self.shown = self.url.render_as_string(hide_password=True)

    def dsn(self, database: str | None = None) -> str:
        return str(self.url.set(database=database or self.database).render_as_string(False))

    def sqlalchemy_url(self, database: str) -> Any:
        return self.url.set(drivername="postgresql+psycopg", database=database)

    def connect(self, database: str | None = None, autocommit: bool = True) -> Any:
        try:
            return self.psycopg.connect(
                self.dsn(database), autocommit=autocommit, connect_timeout=10
            )
        except self.psycopg.Error as exc:
            raise HostError(
                f"--prove: cannot connect to {self.shown}: "
                + printable(redaction.scrub(str(exc).strip().splitlines()[0]), 200)
            ) from exc

    def user_tables(self) -> int:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN "
                "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
            ).fetchone()
        return int(row[0]) if row else 0

    def drop_stale(self) -> list[str]:
        """Scratch databases of runs that were killed: older than an hour, nobody connected."""
        dropped = []
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database d WHERE datname LIKE %s AND NOT EXISTS "
                "(SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
                (PREFIX + "%",),
            ).fetchall()
            for (name,) in rows:
                m = re.match(rf"^{PREFIX}(\d+)_[0-9a-f]+$", name)
                if m and time.time() - int(m.group(1)) > STALE_AFTER_S:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    dropped.append(name)
        return dropped

    @contextmanager
    def scratch(self, i_know: bool) -> Iterator[str]:
        tables = self.user_tables()
        if tables and not i_know:
            raise InputError(
                f"--prove: {self.shown} has {tables} table(s): deployer only creates a "
                "scratch database beside it, but this looks like a real database; point it "
                "at a scratch server, or add --i-know"
            )
        self.drop_stale()
        name = f"{PREFIX}{int(time.time())}_{secrets.token_hex(4)}"
        with self.connect() as conn:
            try:
                conn.execute(f'CREATE DATABASE "{name}"')
            except self.psycopg.Error as exc:
                raise DeployerError(
                    f"--prove: cannot create a scratch database on {self.shown}: "
                    + printable(str(exc).strip().splitlines()[0], 200)
                ) from exc
        try:
            yield name
        finally:
            try:
                with self.connect() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except (DeployerError, self.psycopg.Error):
                pass  # the next run drops it (stale after an hour)
