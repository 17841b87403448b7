"""SQL the linter cannot read: built at run time (an f-string, `.format`, `%`, a variable
it cannot resolve) and given to `op.execute` or a connection's `execute`.

Lock: unknown: nothing in it was checked. A warning, so that you know, not an error.

Safe alternative: write the statement as a literal (module constants are resolved), or
acknowledge it with a reason:

    op.execute(f"ANALYZE {table}")  # deployer: ignore[unchecked-sql] ANALYZE blocks no one
"""

from __future__ import annotations

from deployer.lint import operations as k
from deployer.lint.operations import Operation
from deployer.lint.rules import Context, rule


@rule(
    "unchecked-sql",
    "warning",
    "write the SQL as a literal, or acknowledge it: # deployer: ignore[unchecked-sql] <why>",
)
def check(op: Operation, ctx: Context) -> str | None:
    if op.kind != k.UNCHECKED_SQL:
        return None
    if op.name == "DO block":
        return (
            "a DO block's statements are PL/pgSQL and are not read: check the DDL in it by "
            "hand (or run it with --prove)"
        )
    if op.name:
        return f"a {op.name} construct is not read: check the DDL it emits by hand"
    return "SQL built at run time is not checked (an f-string, .format or a variable)"
