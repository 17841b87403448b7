"""SET NOT NULL on an existing column.

Lock: ACCESS EXCLUSIVE while every row is scanned, unless (PostgreSQL 12+) a validated
`CHECK (col IS NOT NULL)` constraint already proves it. deployer knows about such a constraint
when an earlier revision in the same chain added and validated it.

Safe alternative, three migrations:

    # 1: cheap, no scan
    op.create_check_constraint("ck_accounts_status_nn", "accounts", "status IS NOT NULL",
                               postgresql_not_valid=True)
    # 2: scans under SHARE UPDATE EXCLUSIVE (reads and writes go on)
    op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_accounts_status_nn")
    # 3: PostgreSQL 12+ uses the check: no scan
    op.alter_column("accounts", "status", nullable=False)
    op.drop_constraint("ck_accounts_status_nn", "accounts")
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "set-not-null",
    "error",
    "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL",
    claim="access-exclusive",
    phase="contract",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | tuple[str, str] | None:
    if op.kind != k.SET_NOT_NULL or ctx.is_new(op.table):
        return None
    if ctx.pg_version >= 12 and (op.table, op.name) in ctx.validated_not_null:
        return None
    added_here = any(
        o.kind == k.ADD_COLUMN and o.table == op.table and o.name == op.name for o in ctx.operations
    )
    message = f"SET NOT NULL on {op.table}.{op.name} scans the whole table under ACCESS EXCLUSIVE"
    if added_here:  # the one-step fix fits this case better than the three migrations
        return (
            message,
            "the column is added in this migration: add it NOT NULL with a constant "
            "server_default in the same add_column (PostgreSQL 11+: no rewrite, no scan)",
        )
    return message
