"""CLUSTER.

Lock: ACCESS EXCLUSIVE while the table is rewritten in index order.

Safe alternative: pg_repack --order-by, which reorders online.
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "cluster", "error", "pg_repack --order-by reorders online", claim="rewrite", size_dependent=True
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind == k.CLUSTER:
        return "CLUSTER rewrites the table under ACCESS EXCLUSIVE"
    return None
