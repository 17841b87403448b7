"""DROP TABLE while the old color still runs.

Breaks: every query of the old color on that table fails; also takes ACCESS EXCLUSIVE.

Safe alternative: expand/contract. Stop using the table in one release; drop it in a later
migration with an acknowledgement (`# deployer: ignore[drop-table] reason`).
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "drop-table",
    "error",
    "stop using the table in one release, drop it in a later one",
    claim="access-exclusive",
    phase="contract",
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind != k.DROP_TABLE or ctx.is_new(op.table):
        return None
    if op.if_exists and any(
        o.kind == k.CREATE_TABLE and o.table == op.table for o in ctx.operations
    ):
        return None  # DROP IF EXISTS then CREATE: a scratch table this revision rebuilds
    return f"dropping table {op.table} breaks the old color, which still uses it"
