"""TRUNCATE.

Lock: ACCESS EXCLUSIVE; and it deletes every row the old color still serves.

Safe alternative: DELETE in batches if the data must go; never in a schema migration.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule("truncate", "error", "DELETE in batches, outside schema migrations", claim="access-exclusive")
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.TRUNCATE and not ctx.is_new(op.table):
        return f"TRUNCATE {op.table} takes ACCESS EXCLUSIVE and removes live data"
    return None
