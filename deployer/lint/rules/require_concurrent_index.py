"""Index created or dropped without CONCURRENTLY.

Lock: CREATE INDEX takes a SHARE lock on the table for the whole build (every INSERT, UPDATE
and DELETE waits: minutes on a big table); DROP INDEX takes ACCESS EXCLUSIVE (reads wait too).
Unique indexes are no different. Tables created earlier in the same migration are exempt.

Safe alternative: build it concurrently, outside the migration's transaction:

    with op.get_context().autocommit_block():
        op.create_index("ix_orders_account_id", "orders", ["account_id"],
                        postgresql_concurrently=True)

and `op.drop_index(..., postgresql_concurrently=True)` the same way. In SQL:
`CREATE INDEX CONCURRENTLY ...` / `DROP INDEX CONCURRENTLY ...` outside BEGIN/COMMIT.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule

HINT = "use CONCURRENTLY (postgresql_concurrently=True) inside op.get_context().autocommit_block()"


@rule("require-concurrent-index", "error", HINT, claim="blocks-writes", size_dependent=True)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.CREATE_INDEX and not op.concurrently and not ctx.is_new(op.table):
        what = "unique index" if op.unique else "index"
        return (
            f"{what} {op.name or ''} on {op.table} is built without CONCURRENTLY: writes to "
            f"{op.table} are blocked for the whole build"
        ).replace("  ", " ")
    if (
        op.kind == k.DROP_INDEX
        and not op.concurrently
        and not ctx.is_new(op.table)
        and not ctx.is_dropped(op.table)
    ):
        created_here = any(o.kind == k.CREATE_INDEX and o.name == op.name for o in ctx.operations)
        if not created_here:
            return (
                f"index {op.name or '(name not known statically)'} is dropped without "
                "CONCURRENTLY: ACCESS EXCLUSIVE lock on its table while it waits and drops"
            )
    return None
