"""VACUUM FULL.

Lock: ACCESS EXCLUSIVE while the whole table is rewritten (no reads, no writes).

Safe alternative: plain VACUUM (no blocking lock), or pg_repack / pg_squeeze to rebuild
online.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "vacuum-full",
    "error",
    "plain VACUUM, or pg_repack to rebuild online",
    claim="rewrite",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.VACUUM_FULL:
        return f"VACUUM FULL {op.table or ''} rewrites under ACCESS EXCLUSIVE".replace("  ", " ")
    return None
