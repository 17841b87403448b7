"""ALTER TABLE ... SET LOGGED / SET UNLOGGED.

Lock: ACCESS EXCLUSIVE while the table is rewritten (and written to WAL in full for LOGGED).

Safe alternative: create a new table with the wanted persistence, copy in batches, swap in a
later release.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "set-table-persistence",
    "error",
    "copy into a new table in batches instead",
    claim="rewrite",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.SET_TABLE_PERSISTENCE and not ctx.is_new(op.table):
        return f"SET LOGGED/UNLOGGED rewrites {op.table} under ACCESS EXCLUSIVE"
    return None
