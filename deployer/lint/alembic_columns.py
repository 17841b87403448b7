"""`sa.Column(...)` in `op.add_column` read the way Alembic renders it (the column, and the
FOREIGN KEY / UNIQUE / INDEX it implies), and alembic_postgresql_enum's `sync_enum_values`."""

from __future__ import annotations

import ast
from typing import Any

from deployer.lint import operations as k
from deployer.lint.alembic_ast import (
    SERIAL_TYPES,
    _arg,
    _call_name,
    _const,
    _default_info,
    _kw,
    _type_text,
)
from deployer.lint.operations import Operation


def column_op(col: ast.AST | None, base: dict[str, Any], table: str | None) -> Operation:
    if not isinstance(col, ast.Call):
        return Operation(k.ADD_COLUMN, **base, table=table)
    name = _const(col.args[0]) if col.args else _const(_kw(col, "name"))
    type_node = col.args[1] if len(col.args) > 1 else _kw(col, "type_")
    nullable = _const(_kw(col, "nullable"))
    primary = bool(_const(_kw(col, "primary_key")))
    has_default, volatile, text = _default_info(_kw(col, "server_default"))
    identity = any(isinstance(a, ast.Call) and _call_name(a) == "Identity" for a in col.args[1:])
    type_text = _type_text(type_node)
    if not identity and isinstance(type_node, ast.AST):
        shown = ast.unparse(type_node).lower()  # once, not once per serial type
        identity = any(s in shown for s in SERIAL_TYPES)
    computed = [a for a in col.args[1:] if isinstance(a, ast.Call) and _call_name(a) == "Computed"]
    return Operation(
        k.ADD_COLUMN,
        **base,
        table=table,
        name=name,
        not_null=nullable is False or primary,
        has_default=has_default,
        default_volatile=volatile,
        default_text=text,
        identity=identity,
        generated_stored=bool(computed),
        type_to=type_text,
    )


def column_ddl(col: ast.AST | None, base: dict[str, Any], table: str | None) -> list[Operation]:
    """What Alembic emits after ADD COLUMN for the Column's own arguments (its
    ``add_column`` runs AddConstraint for each constraint and CreateIndex for each index
    of the column): a validating FOREIGN KEY for ``sa.ForeignKey(...)``, ADD UNIQUE for
    ``unique=True``, a plain CREATE INDEX for ``index=True``."""
    if not isinstance(col, ast.Call):
        return []
    name = _const(col.args[0]) if col.args else _const(_kw(col, "name"))
    out = []
    for a in col.args[1:]:
        if isinstance(a, ast.Call) and _call_name(a) == "ForeignKey":
            fk = _const(_kw(a, "name"))
            out.append(
                Operation(
                    k.ADD_CONSTRAINT,
                    **base,
                    table=table,
                    name=fk if isinstance(fk, str) else f"foreign key on {name}",
                    constraint="foreign_key",
                    not_valid=False,
                )
            )
    if _const(_kw(col, "unique")) is True:
        out.append(
            Operation(
                k.ADD_CONSTRAINT,
                **base,
                table=table,
                name=f"unique on {name}",
                constraint="unique",
            )
        )
    if _const(_kw(col, "index")) is True:
        out.append(
            Operation(
                k.CREATE_INDEX,
                **base,
                table=table,
                name=f"ix_{table}_{name}" if table and name else None,
                concurrently=False,
            )
        )
    return out


def sync_enum(call: ast.Call, base: dict[str, Any]) -> list[Operation]:
    """``op.sync_enum_values(schema, enum_name, new_values, affected_columns)`` creates
    a new type and converts every listed column to it with USING: each table is
    rewritten under ACCESS EXCLUSIVE."""
    enum = _const(_arg(call, 1, "enum_name"))
    refs: list[ast.Call | None] = [
        n
        for n in ast.walk(_arg(call, 3, "affected_columns") or ast.List(elts=[]))
        if isinstance(n, ast.Call) and _call_name(n) == "TableReference"
    ]
    out = []
    for ref in refs or [None]:
        table = _const(_arg(ref, 1, "table_name")) if ref is not None else None
        column = _const(_arg(ref, 2, "column_name")) if ref is not None else None
        out.append(
            Operation(
                k.ALTER_COLUMN_TYPE,
                **base,
                table=table if isinstance(table, str) else "every table using it",
                name=column if isinstance(column, str) else enum,
                type_from=f"enum {enum}",
                type_to=f"enum {enum} with new values (sync_enum_values, USING)",
            )
        )
    return out
