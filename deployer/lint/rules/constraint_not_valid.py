"""Foreign key or check constraint added without NOT VALID.

Lock: adding it validates every existing row while holding its lock: a CHECK takes ACCESS
EXCLUSIVE (reads and writes wait), a foreign key SHARE ROW EXCLUSIVE on both tables (writes
wait). An inline `REFERENCES` on a new column, or `sa.ForeignKey` in `op.add_column`, is the
same.

Safe alternative: add it NOT VALID (new rows are checked at once), validate in a later
migration (SHARE UPDATE EXCLUSIVE: reads and writes go on):

    op.create_foreign_key("fk_orders_account", "orders", "accounts", ["account_id"], ["id"],
                          postgresql_not_valid=True)
    # next migration
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_account")
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "constraint-without-not-valid",
    "error",
    "add it with NOT VALID (postgresql_not_valid=True), VALIDATE in a later migration",
    claim="blocks-writes",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if (
        op.kind == k.ADD_CONSTRAINT
        and op.constraint in ("foreign_key", "check")
        and not op.not_valid
        and not ctx.is_new(op.table)
    ):
        if op.constraint == "foreign_key":
            return (
                f"foreign key {op.name or ''} on {op.table} validates every row under SHARE ROW "
                f"EXCLUSIVE on {op.table} and the referenced table: writes to both wait"
            ).replace("  ", " ")
        return (
            f"check constraint {op.name or ''} on {op.table} validates every row under ACCESS "
            "EXCLUSIVE: reads and writes wait"
        ).replace("  ", " ")
    return None
