"""Alembic on a host: the command with the database URL (a secret) and timeouts in its env."""

from __future__ import annotations

import re
import shlex

from deployer.values import REDACTED, Secret, Shell, Token, join, merge_env, quote, secret_env

_REV = re.compile(r"^([0-9A-Za-z_]+)(?: \(head\))?(?: \(.*\))?\s*$")
LOCK_TIMEOUT_MARKERS = ("lock timeout", "LockNotAvailable", "canceling statement due to lock")


def _ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


def alembic(
    command: Shell, database_url: Token, lock_timeout: float, statement_timeout: float, *args: str
) -> Shell:
    """``env DATABASE_URL=... PGOPTIONS=... <command> <args>``.

    PGOPTIONS sets the timeouts for any libpq connection (psycopg 2 and 3); the
    DEPLOYER_* variables are for an env.py that sets them itself, as migrations_safe's does.
    """
    url = Secret(database_url.value if isinstance(database_url, Secret) else database_url)
    pgoptions = f"-c lock_timeout={_ms(lock_timeout)} -c statement_timeout={_ms(statement_timeout)}"
    # assignments before the command: the URL is in the process's environment, not its argv
    assigns = (
        f"DATABASE_URL={quote(url)[0]} PGOPTIONS={shlex.quote(pgoptions)} "
        f"DEPLOYER_LOCK_TIMEOUT={_ms(lock_timeout)} "
        f"DEPLOYER_STATEMENT_TIMEOUT={_ms(statement_timeout)}"
    )
    tail = join(args)
    # the template may be compound (`cd dir && alembic`): run it in sh -c with the args after;
    # what `plan` shows is that same command (it runs as shown once *** is the real URL)
    script = join([command.text + ' "$@"']).text
    shown_script = shlex.quote(command.shown + ' "$@"')
    shown_assigns = assigns.replace(quote(url)[0], REDACTED, 1)
    return Shell(
        f"{assigns} sh -c {script} alembic {tail.text}",
        f"{shown_assigns} sh -c {shown_script} alembic {tail.shown}",
        merge_env(secret_env([url]), command.env, tail.env),
    )


def parse_current(stdout: str) -> str | None:
    """The revision `alembic current` printed (None: the database is at base)."""
    for line in stdout.splitlines():
        m = _REV.match(line.strip())
        if m:
            return m.group(1)
    return None


def is_lock_timeout(stderr: str) -> bool:
    return any(marker in stderr for marker in LOCK_TIMEOUT_MARKERS)
