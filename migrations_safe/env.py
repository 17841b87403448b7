"""Alembic environment for the safe-patterns chain.

Every session gets a lock_timeout (a migration that cannot get its lock fails fast instead of
queueing every query behind it) and a statement_timeout; each migration runs in its own
transaction, so an autocommit block or a VALIDATE in the next revision really is separate.
DEPLOYER_LOCK_TIMEOUT and DEPLOYER_STATEMENT_TIMEOUT override the defaults (2s, 60s).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

config = context.config


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL (or pass -x url=postgresql://...)")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(
            text(
                "SELECT set_config('lock_timeout', :lt, false), "
                "set_config('statement_timeout', :st, false)"
            ),
            {
                "lt": os.environ.get("DEPLOYER_LOCK_TIMEOUT", "2s"),
                "st": os.environ.get("DEPLOYER_STATEMENT_TIMEOUT", "60s"),
            },
        )
        connection.commit()
        context.configure(
            connection=connection, target_metadata=None, transaction_per_migration=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: migrations here read the database")
run_migrations_online()
