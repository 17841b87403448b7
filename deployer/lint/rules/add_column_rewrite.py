"""ADD COLUMN that rewrites the table: a volatile default, serial/identity, or a stored
generated column (and any default before PostgreSQL 11).

Lock: ACCESS EXCLUSIVE for the whole rewrite of the table and its indexes (reads and writes
wait). `now()` and constant defaults are stored in the catalog on PostgreSQL 11+ and are fine;
`gen_random_uuid()`, `clock_timestamp()`, `random()` and `nextval()` are evaluated per row.

Safe alternative: add the column without a default (or with a constant one), set the default
for new rows separately, and backfill old rows in batches outside the schema transaction:

    op.add_column("orders", sa.Column("public_id", postgresql.UUID(), nullable=True))
    op.alter_column("orders", "public_id", server_default=sa.text("gen_random_uuid()"))
    # then a batched UPDATE in its own migration, in an autocommit block
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "add-column-rewrite",
    "error",
    "add it without the default, set the default separately, backfill in batches",
    claim="rewrite",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind != k.ADD_COLUMN or ctx.is_new(op.table):
        return None
    where = f"{op.table}.{op.name}"
    if op.default_volatile:
        return f"column {where} has a volatile default ({op.default_text}): the table is rewritten"
    if op.identity:
        return f"column {where} is serial/identity: the table is rewritten to fill it"
    if op.generated_stored:
        return f"column {where} is a stored generated column: the table is rewritten"
    if op.has_default and ctx.pg_version < 11:
        return f"column {where} has a default: before PostgreSQL 11 the table is rewritten"
    return None
