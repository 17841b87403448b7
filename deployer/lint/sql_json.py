"""Parsed statements -> operations, read from libpg_query's JSON parse tree (through pglast:
PostgreSQL's own parser). Reading the JSON is ten times cheaper than building pglast's Python
AST, which is what keeps `deployer lint` fast on long histories."""

from __future__ import annotations

import json
from typing import Any

from pglast.parser import parse_sql_json

from deployer.lint import operations as k
from deployer.lint.operations import Operation


def parse(text: str) -> list[dict[str, Any]]:
    """The raw statements of ``text``: ``{"stmt": {Type: body}, "stmt_location",
    "stmt_len"}`` (raises pglast's ParseError)."""
    stmts: list[dict[str, Any]] = json.loads(parse_sql_json(text)).get("stmts", [])
    return stmts


def node(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    stmt = raw.get("stmt") or {}
    name, body = next(iter(stmt.items()), ("", {}))
    return name, body or {}


def _relname(rel: Any) -> str | None:
    if isinstance(rel, dict) and "RangeVar" in rel:  # wrapped in a list of nodes
        rel = rel["RangeVar"]
    return rel.get("relname") if isinstance(rel, dict) else None


def _names(items: Any) -> list[str]:
    """A qualified name: [{"String": {"sval": ...}}, ...]."""
    out = []
    for item in items or ():
        if isinstance(item, dict) and "String" in item:
            out.append(item["String"].get("sval", ""))
    return out


def _defnames(items: Any) -> set[str]:
    return {i["DefElem"].get("defname", "") for i in items or () if "DefElem" in i}


SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"})
CONSTRAINTS = {
    "CONSTR_FOREIGN": "foreign_key",
    "CONSTR_CHECK": "check",
    "CONSTR_UNIQUE": "unique",
    "CONSTR_PRIMARY": "primary_key",
    "CONSTR_EXCLUSION": "exclusion",
}


def _type_text(type_name: Any) -> str:
    names = _names((type_name or {}).get("names"))
    base = names[-1] if names else "?"
    mods = []
    for m in (type_name or {}).get("typmods") or ():
        const = m.get("A_Const", {})
        if "ival" in const:  # an integer (0 is written as an empty object)
            mods.append(str(const["ival"].get("ival", 0)))
    return f"{base}({','.join(mods)})" if mods else base


def _functions(node: Any) -> list[str]:
    """Names of every function called inside an expression tree."""
    out: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if "FuncCall" in n:
                names = _names(n["FuncCall"].get("funcname"))
                if names:
                    out.append(names[-1])
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return out


def _not_null_column(expr: Any) -> str | None:
    """CHECK (col IS NOT NULL): the column."""
    test = (expr or {}).get("NullTest")
    if not test or test.get("nulltesttype") != "IS_NOT_NULL":
        return None
    fields = _names(test.get("arg", {}).get("ColumnRef", {}).get("fields"))
    return fields[-1] if fields else None


def _constraint(c: dict[str, Any], base: dict[str, Any]) -> Operation:
    contype = c.get("contype")
    return Operation(
        k.ADD_CONSTRAINT,
        **base,
        name=c.get("conname"),
        constraint=CONSTRAINTS.get(str(contype), "other"),
        not_valid=bool(c.get("skip_validation")),
        using_index=bool(c.get("indexname")),
        check_not_null_of=_not_null_column(c.get("raw_expr"))
        if contype == "CONSTR_CHECK"
        else None,
    )


def _add_column(col: dict[str, Any], base: dict[str, Any]) -> list[Operation]:
    type_to = _type_text(col.get("typeName"))
    not_null = has_default = volatile = generated = False
    identity = type_to.split("(")[0] in SERIAL_TYPES
    default_text = ""
    extra: list[Operation] = []
    for wrapped in col.get("constraints") or ():
        c = wrapped.get("Constraint", {})
        contype = c.get("contype")
        if contype == "CONSTR_NOTNULL":
            not_null = True
        elif contype == "CONSTR_DEFAULT":
            has_default = True
            calls = [f for f in _functions(c.get("raw_expr")) if f in k.VOLATILE_FUNCTIONS]
            volatile = bool(calls)
            default_text = f"{calls[0]}()" if calls else ""
        elif contype == "CONSTR_IDENTITY":
            identity = True
        elif contype == "CONSTR_GENERATED":
            generated = True
        elif contype == "CONSTR_PRIMARY":
            not_null = True
            extra.append(_constraint(c, base))
        elif contype in CONSTRAINTS:
            extra.append(_constraint(c, base))
    op = Operation(
        k.ADD_COLUMN,
        **base,
        name=col.get("colname"),
        not_null=not_null,
        has_default=has_default,
        default_volatile=volatile,
        default_text=default_text,
        identity=identity,
        generated_stored=generated,
        type_to=type_to,
    )
    return [op, *extra]


_SIMPLE = {
    "AT_DropColumn": k.DROP_COLUMN,
    "AT_SetNotNull": k.SET_NOT_NULL,
    "AT_ValidateConstraint": k.VALIDATE_CONSTRAINT,
}


def _alter_table(body: dict[str, Any], base: dict[str, Any]) -> list[Operation]:
    out: list[Operation] = []
    for wrapped in body.get("cmds") or ():
        cmd = wrapped.get("AlterTableCmd", {})
        t, definition = cmd.get("subtype"), cmd.get("def") or {}
        if t == "AT_AddColumn":
            out += _add_column(definition.get("ColumnDef", {}), base)
        elif t in _SIMPLE:
            out.append(Operation(_SIMPLE[t], **base, name=cmd.get("name")))
        elif t == "AT_AlterColumnType":
            type_name = definition.get("ColumnDef", {}).get("typeName")
            out.append(
                Operation(
                    k.ALTER_COLUMN_TYPE, **base, name=cmd.get("name"), type_to=_type_text(type_name)
                )
            )
        elif t == "AT_AddConstraint":
            out.append(_constraint(definition.get("Constraint", {}), base))
        elif t in ("AT_SetLogged", "AT_SetUnLogged"):
            out.append(Operation(k.SET_TABLE_PERSISTENCE, **base))
        else:
            out.append(Operation(k.ALTER_OTHER, **base, name=cmd.get("name")))
    return out


def operations(name: str, body: dict[str, Any], base: dict[str, Any]) -> list[Operation]:
    """Operations for one statement. ``base`` has line, column, in_transaction, sql."""
    table = _relname(body.get("relation"))
    b = {**base, "table": table}
    match name:
        case "AlterTableStmt":
            return _alter_table(body, b)
        case "CreateStmt":
            return [Operation(k.CREATE_TABLE, **b)]
        case "CreateTableAsStmt" if body.get("objtype") in (None, "OBJECT_TABLE"):
            into = (body.get("into") or {}).get("IntoClause") or body.get("into") or {}
            return [Operation(k.CREATE_TABLE, **{**b, "table": _relname(into.get("rel"))})]
        case "DoStmt":
            return [Operation(k.UNCHECKED_SQL, **b, name="DO block")]
        case "IndexStmt":
            return [
                Operation(
                    k.CREATE_INDEX,
                    **b,
                    name=body.get("idxname"),
                    concurrently=bool(body.get("concurrent")),
                    unique=bool(body.get("unique")),
                )
            ]
        case "DropStmt" if body.get("removeType") in ("OBJECT_INDEX", "OBJECT_TABLE"):
            kind = k.DROP_INDEX if body["removeType"] == "OBJECT_INDEX" else k.DROP_TABLE
            out = []
            for obj in body.get("objects") or ():
                names = _names(obj.get("List", {}).get("items"))
                target = names[-1] if names else None
                out.append(
                    Operation(
                        kind,
                        **{**b, "table": None if kind == k.DROP_INDEX else target},
                        name=target,
                        concurrently=bool(body.get("concurrent")),
                        if_exists=bool(body.get("missing_ok")),
                    )
                )
            return out
        case "RenameStmt" if body.get("renameType") == "OBJECT_COLUMN":
            return [
                Operation(
                    k.RENAME_COLUMN, **b, name=body.get("subname"), type_to=body.get("newname")
                )
            ]
        case "RenameStmt" if body.get("renameType") == "OBJECT_TABLE":
            return [Operation(k.RENAME_TABLE, **b, name=body.get("newname"))]
        case "UpdateStmt":
            return [Operation(k.UPDATE, **b, has_where="whereClause" in body)]
        case "DeleteStmt":
            return [Operation(k.DELETE, **b, has_where="whereClause" in body)]
        case "VacuumStmt" if "full" in _defnames(body.get("options")):
            body.setdefault("rels", [])
            rels = [
                _relname(r.get("VacuumRelation", {}).get("relation"))
                for r in body.get("rels") or ()
            ]
            return [Operation(k.VACUUM_FULL, **{**b, "table": next(filter(None, rels), None)})]
        case "ClusterStmt":
            return [Operation(k.CLUSTER, **b)]
        case "ReindexStmt":
            conc = "concurrently" in _defnames(body.get("params"))
            return [Operation(k.REINDEX, **b, name=body.get("name"), concurrently=conc)]
        case "TruncateStmt" | "LockStmt":
            tables = [_relname(r) for r in body.get("relations") or ()]
            kind = k.TRUNCATE if name == "TruncateStmt" else k.LOCK_TABLE
            return [Operation(kind, **{**b, "table": next(filter(None, tables), None)})]
        case "AlterEnumStmt" if body.get("newVal"):
            names = _names(body.get("typeName"))
            return [Operation(k.ENUM_ADD_VALUE, **b, name=names[-1] if names else None)]
        case "VariableSetStmt" if body.get("name") == "lock_timeout":
            return [Operation(k.SET_LOCK_TIMEOUT, **b)]
    return [Operation(k.OTHER, **b)]
