"""RENAME TABLE while the old color still runs.

Breaks: every query of the old color on the old name fails until the switch.

Safe alternative: create the new table (or a view with the new name), write both, backfill,
switch reads, drop the old one in a later release.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "rename-table",
    "error",
    "expand/contract, or a view under the new name during the move",
    claim="access-exclusive",
    phase="contract",
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.RENAME_TABLE and not ctx.is_new(op.table):
        return f"renaming table {op.table} to {op.name} breaks the old color"
    return None
