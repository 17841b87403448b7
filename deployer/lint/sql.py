"""SQL front end: pglast (PostgreSQL's own parser) statements -> operations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import (
    AlterTableType,
    ConstrType,
    NullTestType,
    ObjectType,
    TransactionStmtKind,
)
from pglast.parser import ParseError, scan

from deployer.lint import operations as k
from deployer.lint.binds import neutralize
from deployer.lint.operations import Operation

SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"})
CONSTRAINTS = {
    ConstrType.CONSTR_FOREIGN: "foreign_key",
    ConstrType.CONSTR_CHECK: "check",
    ConstrType.CONSTR_UNIQUE: "unique",
    ConstrType.CONSTR_PRIMARY: "primary_key",
    ConstrType.CONSTR_EXCLUSION: "exclusion",
}


class SqlError(Exception):
    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.line, self.column = line, column


def _position(source: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset, skipping whitespace and -- comments."""
    n = len(source)
    while offset < n:
        if source[offset : offset + 1].isspace():
            offset += 1
        elif source[offset : offset + 2] == b"--":
            nl = source.find(b"\n", offset)
            offset = n if nl < 0 else nl + 1
        else:
            break
    before = source[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return line, column


def _type_text(type_name: Any) -> str:
    names = [str(n.sval) for n in type_name.names if isinstance(n, ast.String)]
    base = names[-1] if names else "?"
    mods = []
    for m in type_name.typmods or ():
        val = getattr(m, "val", None)
        if isinstance(val, ast.Integer):
            mods.append(str(val.ival))
    return f"{base}({','.join(mods)})" if mods else base


def _functions(node: Any) -> Iterator[str]:
    """Names of every function called inside an expression tree."""
    if isinstance(node, ast.FuncCall):
        funcname: Any = node.funcname
        yield str(funcname[-1].sval)
    if isinstance(node, ast.Node):
        for slot in node:
            yield from _functions(getattr(node, slot))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _functions(item)


def _expr_text(node: Any) -> str:
    try:
        from pglast.stream import RawStream

        return str(RawStream()(node))
    except Exception:  # a display string only
        return type(node).__name__


def _not_null_column(expr: Any) -> str | None:
    if (
        isinstance(expr, ast.NullTest)
        and expr.nulltesttype == NullTestType.IS_NOT_NULL
        and isinstance(expr.arg, ast.ColumnRef)
    ):
        parts: Any = expr.arg.fields
        fields = [f.sval for f in parts if isinstance(f, ast.String)]
        return fields[-1] if fields else None
    return None


def _constraint(c: Any, base: dict[str, Any]) -> Operation:
    return Operation(
        k.ADD_CONSTRAINT,
        **base,
        name=c.conname,
        constraint=CONSTRAINTS.get(c.contype, "other"),
        not_valid=bool(c.skip_validation),
        using_index=bool(c.indexname),
        check_not_null_of=_not_null_column(c.raw_expr)
        if c.contype == ConstrType.CONSTR_CHECK
        else None,
    )


def _add_column(col: Any, base: dict[str, Any]) -> list[Operation]:
    type_to = _type_text(col.typeName)
    not_null = has_default = volatile = generated = False
    identity = type_to.split("(")[0] in SERIAL_TYPES
    default_text = ""
    extra: list[Operation] = []
    for c in col.constraints or ():
        if c.contype == ConstrType.CONSTR_NOTNULL:
            not_null = True
        elif c.contype == ConstrType.CONSTR_DEFAULT:
            has_default = True
            default_text = _expr_text(c.raw_expr)
            volatile = any(f in k.VOLATILE_FUNCTIONS for f in _functions(c.raw_expr))
        elif c.contype == ConstrType.CONSTR_IDENTITY:
            identity = True
        elif c.contype == ConstrType.CONSTR_GENERATED:
            generated = True
        elif c.contype == ConstrType.CONSTR_PRIMARY:
            not_null = True
            extra.append(_constraint(c, base))
        elif c.contype in CONSTRAINTS:
            extra.append(_constraint(c, base))
    op = Operation(
        k.ADD_COLUMN,
        **base,
        name=col.colname,
        not_null=not_null,
        has_default=has_default,
        default_volatile=volatile,
        default_text=default_text,
        identity=identity,
        generated_stored=generated,
        type_to=type_to,
    )
    return [op, *extra]


def _alter_table(stmt: Any, base: dict[str, Any]) -> list[Operation]:
    out: list[Operation] = []
    for cmd in stmt.cmds or ():
        t = cmd.subtype
        if t == AlterTableType.AT_AddColumn:
            out += _add_column(cmd.def_, base)
        elif t == AlterTableType.AT_DropColumn:
            out.append(Operation(k.DROP_COLUMN, **base, name=cmd.name))
        elif t == AlterTableType.AT_AlterColumnType:
            out.append(
                Operation(
                    k.ALTER_COLUMN_TYPE,
                    **base,
                    name=cmd.name,
                    type_to=_type_text(cmd.def_.typeName),
                )
            )
        elif t == AlterTableType.AT_SetNotNull:
            out.append(Operation(k.SET_NOT_NULL, **base, name=cmd.name))
        elif t == AlterTableType.AT_AddConstraint:
            out.append(_constraint(cmd.def_, base))
        elif t == AlterTableType.AT_ValidateConstraint:
            out.append(Operation(k.VALIDATE_CONSTRAINT, **base, name=cmd.name))
        elif t in (AlterTableType.AT_SetLogged, AlterTableType.AT_SetUnLogged):
            out.append(Operation(k.SET_TABLE_PERSISTENCE, **base))
        else:
            out.append(Operation(k.ALTER_OTHER, **base, name=cmd.name))
    return out


def statement_operations(stmt: Any, base: dict[str, Any]) -> list[Operation]:
    """Operations for one parsed statement. ``base`` has line, column, in_transaction, sql."""
    rel = getattr(stmt, "relation", None)
    table = rel.relname if isinstance(rel, ast.RangeVar) else None
    b = {**base, "table": table}
    match stmt:
        case ast.CreateStmt():
            return [Operation(k.CREATE_TABLE, **b)]
        case ast.IndexStmt():
            return [
                Operation(
                    k.CREATE_INDEX,
                    **b,
                    name=stmt.idxname,
                    concurrently=bool(stmt.concurrent),
                    unique=bool(stmt.unique),
                )
            ]
        case ast.DropStmt() if stmt.removeType in (
            ObjectType.OBJECT_INDEX,
            ObjectType.OBJECT_TABLE,
        ):
            kind = k.DROP_INDEX if stmt.removeType == ObjectType.OBJECT_INDEX else k.DROP_TABLE
            out = []
            for obj in stmt.objects or ():
                names = [n.sval for n in obj if isinstance(n, ast.String)]
                target = names[-1] if names else None
                out.append(
                    Operation(
                        kind,
                        **{**b, "table": None if kind == k.DROP_INDEX else target},
                        name=target,
                        concurrently=bool(stmt.concurrent),
                    )
                )
            return out
        case ast.AlterTableStmt():
            return _alter_table(stmt, b)
        case ast.RenameStmt() if stmt.renameType == ObjectType.OBJECT_COLUMN:
            return [Operation(k.RENAME_COLUMN, **b, name=stmt.subname, type_to=stmt.newname)]
        case ast.RenameStmt() if stmt.renameType == ObjectType.OBJECT_TABLE:
            return [Operation(k.RENAME_TABLE, **b, name=stmt.newname)]
        case ast.UpdateStmt():
            return [Operation(k.UPDATE, **b, has_where=stmt.whereClause is not None)]
        case ast.DeleteStmt():
            return [Operation(k.DELETE, **b, has_where=stmt.whereClause is not None)]
        case ast.VacuumStmt() if any(o.defname == "full" for o in stmt.options or ()):
            tables = [r.relation.relname for r in stmt.rels or () if r.relation]
            return [Operation(k.VACUUM_FULL, **{**b, "table": tables[0] if tables else None})]
        case ast.ClusterStmt():
            return [Operation(k.CLUSTER, **b)]
        case ast.ReindexStmt():
            conc = any(p.defname == "concurrently" for p in stmt.params or ())
            return [Operation(k.REINDEX, **b, name=stmt.name, concurrently=conc)]
        case ast.TruncateStmt():
            tables = [r.relname for r in stmt.relations or ()]
            return [Operation(k.TRUNCATE, **{**b, "table": tables[0] if tables else None})]
        case ast.LockStmt():
            tables = [r.relname for r in stmt.relations or ()]
            return [Operation(k.LOCK_TABLE, **{**b, "table": tables[0] if tables else None})]
        case ast.AlterEnumStmt() if stmt.newVal:
            names = [n.sval for n in stmt.typeName or ()]
            return [Operation(k.ENUM_ADD_VALUE, **b, name=names[-1])]
        case ast.VariableSetStmt() if stmt.name == "lock_timeout":
            return [Operation(k.SET_LOCK_TIMEOUT, **b)]
    return [Operation(k.OTHER, **b)]


def sql_operations(
    sql: str,
    *,
    first_line: int = 1,
    first_column: int = 1,
    in_transaction: bool = False,
    tx: int = 0,
    problems: list[SqlError] | None = None,
) -> tuple[list[Operation], bool]:
    """Operations of a SQL text (a file, or a string passed to ``op.execute``).

    Returns the operations and whether a transaction is still open at the end. BEGIN and
    COMMIT in the text change ``in_transaction`` for what follows. Bind parameters (``:name``,
    ``%s``, ``%(name)s``) are read as placeholders. A statement that does not parse raises
    :class:`SqlError` with its position, unless ``problems`` is given: then it is added there
    and the other statements are still read.
    """
    text = neutralize(sql)
    source = text.encode()
    try:
        pieces = [(0, parse_sql(text))]
    except ParseError as exc:
        if problems is None:
            raise _placed(exc, text, 0, source, first_line, first_column) from None
        pieces = _statement_by_statement(text, first_line, first_column, problems)
    out: list[Operation] = []
    in_tx = in_transaction
    for offset, stmts in pieces:
        for raw in stmts:
            start = offset + (raw.stmt_location or 0)
            line, col = _position(source, start)
            length = raw.stmt_len or (len(source) - start)
            end = start + length
            stmt_text = source[start:end].decode(errors="replace").strip()
            if isinstance(raw.stmt, ast.TransactionStmt):
                if raw.stmt.kind in (
                    TransactionStmtKind.TRANS_STMT_BEGIN,
                    TransactionStmtKind.TRANS_STMT_START,
                ):
                    in_tx, tx = True, tx + 1
                elif raw.stmt.kind in (
                    TransactionStmtKind.TRANS_STMT_COMMIT,
                    TransactionStmtKind.TRANS_STMT_ROLLBACK,
                ):
                    in_tx, tx = False, tx + 1
                continue
            end_line = first_line + source[: max(end - 1, start)].rstrip().count(b"\n")
            base = {
                "line": first_line + line - 1,
                "end_line": end_line,
                "column": col if line > 1 else first_column + col - 1,
                "in_transaction": in_tx,
                "tx": tx,
                "sql": stmt_text[:200],
            }
            out += statement_operations(raw.stmt, base)
    return out, in_tx


def _placed(
    exc: ParseError, piece: str, offset: int, source: bytes, first_line: int, first_column: int
) -> SqlError:
    loc = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
    line, col = _position(source, offset + len(piece[: max(loc, 0)].encode()))
    return SqlError(
        str(exc.args[0]) if exc.args else "syntax error",
        first_line + line - 1,
        col if line > 1 else first_column + col - 1,
    )


def _statement_by_statement(
    text: str, first_line: int, first_column: int, problems: list[SqlError]
) -> list[tuple[int, Any]]:
    """Parse each statement on its own (cut at the semicolons PostgreSQL's own scanner
    sees, so none inside a string or a dollar quote), so that one that does not parse never
    hides the others; returns (byte offset, parsed statements) per statement."""
    source = text.encode()
    try:
        tokens = scan(text)
    except Exception as exc:  # the scanner itself failed (an unterminated quote)
        problems.append(SqlError(f"cannot read the SQL: {exc}", first_line, first_column))
        return []
    cuts = [t.start for t in tokens if t.name == "ASCII_59"]
    out: list[tuple[int, Any]] = []
    begin = 0
    for end in [*cuts, len(source)]:
        piece = source[begin:end].decode(errors="replace")
        if piece.strip():
            try:
                out.append((begin, parse_sql(piece)))
            except ParseError as exc:
                problems.append(_placed(exc, piece, begin, source, first_line, first_column))
        begin = end + 1
    return out


def split_statements(text: str) -> list[tuple[int, str]]:
    """The statements of a SQL file as (first line, text), cut where PostgreSQL's scanner
    sees a semicolon (never inside a string, a comment or a dollar quote); empty ones
    dropped."""
    source = text.encode()
    tokens = [t for t in scan(text) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    cuts = [t.start for t in tokens if t.name == "ASCII_59"]
    out, begin = [], 0
    for end in [*cuts, len(source)]:
        first = next((t.start for t in tokens if begin <= t.start < end), None)
        if first is not None:  # a piece with only comments has no token
            line = source[:first].count(b"\n") + 1
            out.append((line, source[first:end].decode(errors="replace").strip()))
        begin = end + 1
    return out
