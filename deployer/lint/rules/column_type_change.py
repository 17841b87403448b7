"""Column type change that is not metadata-only.

Lock: ACCESS EXCLUSIVE while the table (and every index on the column) is rewritten; the old
color may also break on the new type. PostgreSQL skips the rewrite when the cast is binary
coercible and no length or precision shrinks; those pass: text and varchar (no length) either
way, varchar(n) to a longer varchar, to varchar or to text, numeric(p,s) to a larger
precision with the same scale or to numeric, varbit(n) widened, time/timestamp/interval
precision increased, cidr to inet (deployer needs the old type: Alembic's `existing_type`).
text or varchar to varchar(n) is flagged (every row is checked and rewritten), as is anything
else, or an unknown old type. Each case is checked on a real PostgreSQL (relfilenode kept or
changed) in tests/test_migrations_pg.py.

Safe alternative: expand/contract: add a column of the new type, write both from the app,
backfill in batches, switch reads, drop the old column in a later release.

    op.add_column("orders", sa.Column("total_v2", sa.Numeric(12, 2), nullable=True))
"""

from __future__ import annotations

import re

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule

_T = re.compile(r"^(\w+)(?:\((\d+)(?:,(\d+))?\))?$")


#: same family, binary coercible both ways when unconstrained
_TEXTS = ("text", "varchar")
_WIDENABLE = ("varchar", "varbit", "timestamp", "timestamptz", "time", "timetz", "interval")


def metadata_only(old: str | None, new: str | None) -> bool:
    if not old or not new:
        return False
    a, b = _T.match(old), _T.match(new)
    if not a or not b:
        return False
    (ta, na, sa_), (tb, nb, sb) = a.groups(), b.groups()
    if ta in _TEXTS and tb in _TEXTS and nb is None:
        return True  # text <-> varchar, varchar(n) -> varchar or text: no check, no rewrite
    if ta == tb and ta in _WIDENABLE:
        return nb is None or (na is not None and int(nb) >= int(na))
    if ta == "numeric" and tb == "numeric":
        if nb is None:
            return True
        return na is not None and int(nb) >= int(na) and (sa_ or "0") == (sb or "0")
    if (ta, tb) == ("cidr", "inet"):
        return True
    return old == new


@rule(
    "column-type-change",
    "error",
    "expand/contract: add a new column, backfill, switch reads, drop the old one later",
    claim="rewrite",
    phase="contract",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind != k.ALTER_COLUMN_TYPE or ctx.is_new(op.table):
        return None
    if metadata_only(op.type_from, op.type_to):
        return None
    old = op.type_from or "an unknown type"
    return (
        f"{op.table}.{op.name} changes type from {old} to {op.type_to}: not provably "
        "metadata-only, the table may be rewritten under ACCESS EXCLUSIVE"
    )
