"""Loops over constants, read once per value: a revision that runs

    TABLES = (("public", "answers"), ("public", "questions"))

    def upgrade():
        for schema, table in TABLES:
            op.execute(f"ALTER TABLE {schema}.{table} ALTER COLUMN value TYPE JSON USING ...")

does that ALTER on each table: the linter reads the loop's body once per value, with the loop
variables (and the module's string constants) put in place and each f-string of constants
folded to the string it makes, so every statement is checked as if it had been written out.
A loop over anything else (a query's rows, a computed list) is read once, as before.
"""

from __future__ import annotations

import ast
import copy
from typing import Any

#: a loop longer than this is read once (a generated list, not a handful of tables)
MAX_UNROLL = 100

Value = str | int | float | bool | None


def literal(node: ast.expr | None) -> Any:
    """A tuple or list of constants (or of tuples of them), as Python values; else None."""
    if not isinstance(node, ast.Tuple | ast.List):
        return None
    out: list[Any] = []
    for e in node.elts:
        if isinstance(e, ast.Constant) and isinstance(e.value, Value):
            out.append(e.value)
        elif isinstance(e, ast.Tuple | ast.List):
            inner = literal(e)
            if inner is None:
                return None
            out.append(tuple(inner))
        else:
            return None
    return out


def bindings(
    stmt: ast.For, sequences: dict[str, list[Any]], local: dict[str, ast.expr]
) -> list[dict[str, Any]] | None:
    """One name -> value map per iteration, or None when the loop is not over constants."""
    it = stmt.iter
    values = None
    if isinstance(it, ast.Name):
        values = sequences.get(it.id)
        if values is None and it.id in local:
            values = literal(local[it.id])
    else:
        values = literal(it)
    if values is None or not values or len(values) > MAX_UNROLL:
        return None
    out = []
    for value in values:
        bound = _unpack(stmt.target, value)
        if bound is None:
            return None
        out.append(bound)
    return out


def _unpack(target: ast.expr, value: Any) -> dict[str, Any] | None:
    if isinstance(target, ast.Name):  # a constant, or a tuple of them (a column list)
        plain = isinstance(value, Value) or (
            isinstance(value, tuple) and all(isinstance(v, Value) for v in value)
        )
        return {target.id: value} if plain else None
    if isinstance(target, ast.Tuple | ast.List) and isinstance(value, tuple):
        if len(target.elts) != len(value):
            return None
        out: dict[str, Any] = {}
        for t, v in zip(target.elts, value, strict=True):
            part = _unpack(t, v)
            if part is None:
                return None
            out.update(part)
        return out
    return None


class _Bind(ast.NodeTransformer):
    def __init__(self, names: dict[str, Any]):
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.names:
            value = self.names[node.id]
            if isinstance(value, tuple):  # a column list: ["a", "b"]
                elts: list[ast.expr] = [ast.Constant(v) for v in value]
                return ast.copy_location(ast.List(elts, ast.Load()), node)
            return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        self.generic_visit(node)
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            elif (
                isinstance(v, ast.FormattedValue)
                and v.conversion == -1
                and v.format_spec is None
                and isinstance(v.value, ast.Constant)
            ):
                parts.append(str(v.value.value))
            else:
                return node  # something computed at run time: left as it is
        return ast.copy_location(ast.Constant("".join(parts)), node)


def bound(stmts: list[ast.stmt], names: dict[str, Any]) -> list[ast.stmt]:
    """A copy of ``stmts`` with ``names`` put in place and f-strings of constants folded."""
    binder = _Bind(names)
    out = []
    for s in stmts:
        new = binder.visit(copy.deepcopy(s))
        out.append(ast.fix_missing_locations(new))
    return out
