"""LOCK TABLE.

Lock: whatever mode it names, held until COMMIT: the default ACCESS EXCLUSIVE stops all
traffic to the table for the rest of the migration.

Safe alternative: rely on the locks the statements take themselves, with a lock_timeout.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "lock-table", "error", "drop the explicit LOCK; set lock_timeout instead", claim="blocks-writes"
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.LOCK_TABLE and not ctx.is_new(op.table):
        return f"explicit LOCK TABLE {op.table} holds its lock until the migration commits"
    return None
