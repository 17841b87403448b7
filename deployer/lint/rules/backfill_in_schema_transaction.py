"""UPDATE or DELETE after a schema change, in the same transaction.

Lock: the schema change's lock (often ACCESS EXCLUSIVE) is held until COMMIT, so it is held
for the whole backfill, and the backfill's row locks pile up in one long transaction. A
schema change that runs *after* the backfill is not this hazard (its own rule judges it), nor
is a keyed UPDATE of another table (a bookkeeping row); an UPDATE of the changed table, or of
every row of any table, is.

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
    size_dependent=True,
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
    # what the backfill touches: its own table changed earlier (or renamed to it), or every
    # row of another table while the lock is held; a keyed UPDATE of another table (one
    # bookkeeping row) is not a backfill
    own = [o for o in schema if op.table in (o.table, o.name if o.kind == k.RENAME_TABLE else None)]
    schema = own or (schema if not op.has_where or op.table is None else [])
    if schema:
        return (
            f"{op.kind.upper()} of {op.table} runs in the transaction of a schema change "
            f"({schema[0].kind.replace('_', ' ')} on line {schema[0].line}): its lock is "
            "held for the whole backfill"
        )
    return None
