"""REINDEX without CONCURRENTLY.

Lock: blocks writes to the table (and, for the index being rebuilt, reads that would use it)
for the whole rebuild.

Safe alternative (PostgreSQL 12+): `REINDEX INDEX CONCURRENTLY ...` in an autocommit block.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "reindex-not-concurrent",
    "error",
    "REINDEX ... CONCURRENTLY in an autocommit block",
    claim="blocks-writes",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.REINDEX and not op.concurrently:
        return f"REINDEX {op.name or ''} without CONCURRENTLY blocks writes".replace("  ", " ")
    return None
