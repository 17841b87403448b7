"""VALIDATE CONSTRAINT in the same transaction as the ADD ... NOT VALID.

The ADD took a lock that blocks writes and the transaction keeps it until COMMIT, so the
validation scan runs under it: NOT VALID bought nothing.

Safe alternative: validate in the next migration (a separate transaction).
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "validate-in-same-transaction",
    "error",
    "move the VALIDATE to a later migration",
    claim="blocks-writes",
    size_dependent=True,
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind != k.VALIDATE_CONSTRAINT or not op.in_transaction:
        return None
    for other in ctx.operations:
        if other is op:
            break
        if (
            other.kind == k.ADD_CONSTRAINT
            and other.name == op.name
            and other.in_transaction
            and other.tx == op.tx
        ):
            return (
                f"constraint {op.name} is validated in the transaction that added it: "
                "the scan runs under the ADD's lock"
            )
    return None
