"""CONCURRENTLY inside the migration's transaction.

PostgreSQL refuses `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY` and
`REINDEX ... CONCURRENTLY` in a transaction block ("cannot run inside a transaction block"),
and Alembic runs each migration in a transaction: the migration fails in production.

Safe alternative: put the statement in an autocommit block:

    with op.get_context().autocommit_block():
        op.create_index("ix_t_a", "t", ["a"], postgresql_concurrently=True)
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "concurrently-in-transaction",
    "error",
    "wrap it in `with op.get_context().autocommit_block():` (SQL: outside BEGIN/COMMIT)",
    claim="fails",
)
def check(op: Operation, ctx: Context) -> str | None:
    if (
        op.concurrently
        and op.in_transaction
        and op.kind in (k.CREATE_INDEX, k.DROP_INDEX, k.REINDEX)
    ):
        return f"{op.kind.replace('_', ' ')} CONCURRENTLY cannot run inside a transaction block"
    return None
