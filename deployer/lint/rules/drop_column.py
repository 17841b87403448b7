"""DROP COLUMN while the old color still runs.

Breaks: the old color's queries that name the column fail, and its ORM (which selects or
inserts every mapped column) fails on every query of that table, from the moment the
migration commits until the switch.

Safe alternative: expand/contract. Release N stops reading and writing the column (and
tells the ORM to ignore it); a later migration, once no running version uses it, drops it
with an acknowledgement:

    op.drop_column("accounts", "name")  # deployer: ignore[drop-column] unused since 2026.11.3
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "drop-column",
    "error",
    "expand/contract: stop using it in one release, drop it in a later one (with a reason)",
    claim="access-exclusive",
    phase="contract",
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.DROP_COLUMN and not ctx.is_new(op.table):
        return f"dropping {op.table}.{op.name} breaks the old color, which still uses it"
    return None
