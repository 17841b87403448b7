"""No lock_timeout before the first statement that takes a table lock.

Breaks: a migration waiting for a lock (behind one long query) queues every later query on
that table behind it: a 1 ms ALTER becomes a minutes-long outage. With a lock_timeout the
migration fails fast instead and can be retried.

Satisfied by `SET lock_timeout` (or `SET LOCAL`) in the migration before its first locking
statement, by an Alembic env.py next to the versions that sets lock_timeout (detected), or by
`lock_timeout_in_env = true` in `[tool.deployer.lint]`. deployer's migrate step sets it too.

    op.execute("SET lock_timeout = '2s'")
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule

#: what helps a CONCURRENTLY statement in an autocommit block (SET LOCAL ended with the
#: transaction; a timed-out CREATE INDEX CONCURRENTLY leaves an INVALID index behind)
CONCURRENT_HINT = (
    "inside the autocommit block, SET lock_timeout = '2s' (session-level, not SET LOCAL: that "
    "ended with the transaction); if it times out, DROP INDEX CONCURRENTLY IF EXISTS the "
    "INVALID index it leaves, then retry"
)


@rule(
    "missing-lock-timeout",
    "warning",
    "SET lock_timeout = '2s' first (or in env.py)",
    scope="migration",
    claim="no-lock-timeout",
)
def check(ctx: Context) -> list[tuple[Operation, str | tuple[str, str]]]:
    if ctx.lock_timeout_in_env:
        return []
    created: set[str] = set()
    for op in ctx.operations:
        if op.kind == k.SET_LOCK_TIMEOUT:
            return []
        if op.kind == k.CREATE_TABLE and op.table:
            created.add(op.table)
            continue
        if op.kind in k.LOCK_FREE_KINDS or (op.table in created):
            continue
        what = f"{op.kind.replace('_', ' ')} takes a lock with no lock_timeout set"
        if op.concurrently and not op.in_transaction:
            return [(op, (f"{what} (CONCURRENTLY, outside a transaction)", CONCURRENT_HINT))]
        return [(op, what)]
    return []
