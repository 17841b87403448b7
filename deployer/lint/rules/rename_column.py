"""RENAME COLUMN while the old color still runs.

Breaks: the old color reads and writes the old name; every such query fails until the switch.

Safe alternative: expand/contract: add the new column, write both from the app, backfill,
switch reads to the new one, drop the old column in a later release.

    op.add_column("accounts", sa.Column("display_name", sa.Text(), nullable=True))
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "rename-column",
    "error",
    "add the new column, write both, backfill, drop the old later",
    claim="access-exclusive",
    phase="contract",
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.RENAME_COLUMN and not ctx.is_new(op.table):
        return (
            f"renaming {op.table}.{op.name} to {op.type_to} breaks the old color, which "
            "uses the old name"
        )
    return None
