"""UPDATE or DELETE after a schema change, in the same transaction.

Lock: the schema change's lock (often ACCESS EXCLUSIVE) is held until COMMIT, so it is held
for the whole backfill, and the backfill's row locks pile up in one long transaction. A
schema change that runs *after* the backfill is not this hazard (its own rule judges it).

Safe alternative: backfill in its own migration, in batches, each committed on its own:

    with op.get_context().autocommit_block():
        conn = op.get_bind()
        while conn.execute(sa.text(
            "UPDATE accounts SET status = 'active' WHERE id IN "
            "(SELECT id FROM accounts WHERE status IS NULL LIMIT 1000)")).rowcount:
            pass
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "backfill-in-schema-transaction",
    "error",
    "move the backfill to its own migration, batched, in an autocommit block",
    claim="backfill-under-lock",
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind not in (k.UPDATE, k.DELETE) or not op.in_transaction or ctx.is_new(op.table):
        return None
    ops = ctx.operations
    here = next((i for i, o in enumerate(ops) if o is op), len(ops))
    schema = [
        o
        for o in ops[:here]  # only what already holds its lock when the backfill runs
        if o.kind in k.SCHEMA_KINDS
        and o.in_transaction
        and o.tx == op.tx
        and not ctx.is_new(o.table)
    ]
    schema.sort(key=lambda o: o.table != op.table)  # the backfilled table's own first
    if schema:
        return (
            f"{op.kind.upper()} of {op.table} runs in the transaction of a schema change "
            f"({schema[0].kind.replace('_', ' ')} on line {schema[0].line}): its lock is "
            "held for the whole backfill"
        )
    return None
