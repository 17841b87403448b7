"""UPDATE or DELETE without WHERE on an existing table.

Lock: every row of the table is locked in one transaction (concurrent updates of any row wait
for it to end), it writes a new version of every row at once (WAL, replication lag, bloat).

Safe alternative: batches by key range or `LIMIT` in a subquery, each committed on its own
(see `backfill-in-schema-transaction` for an Alembic example).
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "unbatched-backfill",
    "warning",
    "update in batches (WHERE id IN (... LIMIT 1000)), committing each batch",
    claim="blocks-row-writes",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind in (k.UPDATE, k.DELETE) and not op.has_where and not ctx.is_new(op.table):
        return f"{op.kind.upper()} of every row of {op.table} in one statement"
    return None
