"""UNIQUE or PRIMARY KEY constraint added to an existing table.

Lock: it builds its index while holding ACCESS EXCLUSIVE (no reads, no writes) for the whole
build.

Safe alternative: build the unique index concurrently, then attach it (a brief lock):

    with op.get_context().autocommit_block():
        op.create_index("ux_accounts_email", "accounts", ["email"], unique=True,
                        postgresql_concurrently=True)
    op.execute("ALTER TABLE accounts ADD CONSTRAINT uq_accounts_email "
               "UNIQUE USING INDEX ux_accounts_email")
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "unique-constraint-builds-index",
    "error",
    "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
    claim="access-exclusive",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if (
        op.kind == k.ADD_CONSTRAINT
        and op.constraint in ("unique", "primary_key")
        and not op.using_index
        and not ctx.is_new(op.table)
    ):
        what = "unique constraint" if op.constraint == "unique" else "primary key"
        return (
            f"{what} {op.name or ''} on {op.table} builds its index under ACCESS EXCLUSIVE"
        ).replace("  ", " ")
    return None
