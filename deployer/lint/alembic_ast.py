"""Reading values out of an Alembic script's syntax tree: literals, call names and
arguments, SQLAlchemy types and server defaults, dialect tests."""

from __future__ import annotations

import ast
from typing import Any

VOLATILE_SA = {"gen_random_uuid", "uuid_generate_v4", "clock_timestamp", "random", "nextval"}
SERIAL_TYPES = {"Serial", "BigSerial", "SmallSerial"}


def _const(node: ast.AST | None) -> Any:
    """The value of a literal (str, number, bool, None), of ``sa.text('...')``, or None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call) and _call_name(node) in ("text", "literal_column") and node.args:
        return _const(node.args[0])
    if isinstance(node, ast.Call) and _call_name(node) == "f" and node.args:  # op.f("name")
        return _const(node.args[0])
    return None


def _dialect_branch(test: ast.expr) -> bool | None:
    """For ``X.dialect.name == "name"`` (or ``!=``, or ``in (...)``), or a URL's
    ``url.startswith("mysql")`` (``url = str(bind.engine.url)``, as CTFd writes it): whether
    the body is what runs on PostgreSQL (True) or the else branch (False); None for any other
    test."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _dialect_branch(test.operand)
        return None if inner is None else not inner
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Attribute)
        and test.func.attr == "startswith"
        and len(test.args) == 1
        and isinstance(prefix := _const(test.args[0]), str)
        and prefix.split("+")[0] in ("postgresql", "postgres", "mysql", "sqlite", "mssql", "oracle")
        and "url" in ast.unparse(test.func.value).lower()
    ):
        return prefix.startswith("postgres")
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    is_name = (
        isinstance(left, ast.Attribute)
        and left.attr == "name"
        and isinstance(left.value, ast.Attribute)
        and left.value.attr == "dialect"
    )
    if not is_name:
        return None
    if isinstance(op, ast.Eq | ast.NotEq) and isinstance(_const(right), str):
        postgres = _const(right) in ("postgresql", "postgres")
        return postgres if isinstance(op, ast.Eq) else not postgres
    if isinstance(op, ast.In | ast.NotIn) and isinstance(right, ast.Tuple | ast.List | ast.Set):
        names = {_const(e) for e in right.elts}
        postgres = bool(names & {"postgresql", "postgres"})
        return postgres if isinstance(op, ast.In) else not postgres
    return None


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _arg(call: ast.Call, index: int, name: str) -> ast.AST | None:
    if len(call.args) > index:
        return call.args[index]
    return _kw(call, name)


def _type_text(node: ast.AST | None) -> str | None:
    """``sa.String(100)`` -> ``varchar(100)``; ``sa.Text()`` -> ``text`` (for type rules)."""
    if node is None:
        return None
    name = ""
    args: list[Any] = []
    if isinstance(node, ast.Call):
        name = _call_name(node)
        args = [_const(a) for a in node.args]
        length = _const(_kw(node, "length"))
        if length is not None:
            args = [length]
    elif isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Name):
        name = node.id
    mapping = {
        "String": "varchar",
        "VARCHAR": "varchar",
        "Unicode": "varchar",
        "Text": "text",
        "TEXT": "text",
        "UnicodeText": "text",
        "Integer": "int4",
        "INTEGER": "int4",
        "BigInteger": "int8",
        "BIGINT": "int8",
        "SmallInteger": "int2",
        "Numeric": "numeric",
        "NUMERIC": "numeric",
        "TIMESTAMP": "timestamp",
        "DateTime": "timestamp",
        "Time": "time",
        "TIME": "time",
        "Interval": "interval",
        "INTERVAL": "interval",
        "CIDR": "cidr",
        "INET": "inet",
        "BIT": "bit",
    }
    base = mapping.get(name, name.lower())
    if isinstance(node, ast.Call) and base in ("timestamp", "time"):
        if _const(_kw(node, "timezone")) is True:
            base += "tz"
        precision = _const(_kw(node, "precision"))
        if isinstance(precision, int):
            args = [precision]
    mods = [str(a) for a in args if isinstance(a, int)]
    return f"{base}({','.join(mods)})" if mods else base


def _default_info(node: ast.AST | None) -> tuple[bool, bool, str]:
    """(has default, volatile, text) of a ``server_default=`` value."""
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return False, False, ""
    text = _const(node)
    if isinstance(text, str):
        lowered = text.lower()
        return True, any(f"{f}(" in lowered for f in VOLATILE_SA), text
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        # sa.func.gen_random_uuid()
        name = node.func.attr
        if name == "next_value":  # sa.Sequence("s").next_value(): nextval() per row
            return True, True, "nextval() of a sequence"
        return True, name in VOLATILE_SA, f"{name}()"
    return True, False, ast.unparse(node)
