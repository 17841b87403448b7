"""ALTER TYPE ... ADD VALUE inside a transaction (PostgreSQL before 12).

Before PostgreSQL 12 it cannot run in a transaction block at all; from 12 it can, but the new
value cannot be used until COMMIT.

Safe alternative: run it in an autocommit block:

    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE order_state ADD VALUE IF NOT EXISTS 'refunded'")
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "enum-add-value-in-transaction",
    "error",
    "run it in op.get_context().autocommit_block()",
    claim="fails",
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.ENUM_ADD_VALUE and op.in_transaction and ctx.pg_version < 12:
        return (
            f"ALTER TYPE {op.name} ADD VALUE cannot run in a transaction block before PostgreSQL 12"
        )
    return None
