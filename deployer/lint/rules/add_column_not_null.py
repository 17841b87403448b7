"""ADD COLUMN ... NOT NULL without a default.

It fails on any table that has rows ("column contains null values"), and if it succeeds the
old color, which does not know the column, cannot insert rows any more.

Safe alternative: add it nullable (or NOT NULL with a constant server_default, which
PostgreSQL 11+ stores without rewriting), backfill in batches, then make it NOT NULL with the
CHECK ... NOT VALID sequence (see `set-not-null`):

    op.add_column("accounts", sa.Column("status", sa.Text(), nullable=True))
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "add-column-not-null-without-default",
    "error",
    "add it nullable (or with a constant server_default), backfill, then SET NOT NULL safely",
    claim="fails",
    phase="contract",
)
def check(op: Operation, ctx: Context) -> str | None:
    if (
        op.kind == k.ADD_COLUMN
        and op.not_null
        and not op.has_default
        and not op.identity
        and not op.generated_stored
        and not ctx.is_new(op.table)
    ):
        return (
            f"column {op.table}.{op.name} is added NOT NULL without a default: fails on "
            "existing rows and breaks inserts from the old color"
        )
    return None
