"""Alembic front end: a version script read with ``ast`` (never imported, never run).

It walks ``upgrade()`` (and ``downgrade()`` on request) in order and turns ``op.*`` calls,
``with op.batch_alter_table(...)`` blocks, ``with op.get_context().autocommit_block():`` and
SQL given to ``op.execute(...)`` / ``bind.execute(...)`` (a string or ``sa.text(...)``)
into operations. A loop over constants is read once per value (deployer.lint.alembic_loops),
any other loop once; anything computed at run time is out of sight.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployer.lint import alembic_loops as loops
from deployer.lint import operations as k
from deployer.lint.alembic_ast import (
    _arg,
    _call_name,
    _const,
    _dialect_branch,
    _kw,
    _type_text,
)
from deployer.lint.alembic_columns import column_ddl, column_op, sync_enum
from deployer.lint.operations import Migration, Operation
from deployer.lint.sql import SqlError, sql_operations


@dataclass
class _Scope:
    in_transaction: bool = True
    tx: int = 0
    batch: dict[str, str] = field(default_factory=dict)  # alias -> table
    binds: set[str] = field(default_factory=set)  # names bound to op.get_bind()


class _Reader:
    def __init__(self, source: str):
        self.lines = source.splitlines()
        self.ops: list[Operation] = []
        self.errors: list[tuple[int, int, str]] = []  # SQL statements that did not parse
        self.constants: dict[str, ast.expr] = {}  # module-level NAME = "..." (resolved SQL)
        self.tables: dict[str, str] = {}  # NAME = sa.table("accounts", ...)
        #: module-level NAME = ("a", "b") / [("s", "t"), ...]: what loops over constants run on
        self.sequences: dict[str, list[Any]] = {}
        self.helpers: dict[str, ast.FunctionDef] = {}  # the file's other functions
        self.visiting: set[str] = set()
        #: local NAME = "..." / sa.text("...") / a Core statement, in the function being read
        self.sql_vars: dict[str, ast.expr] = {}

    # ---- statements in order ----
    def body(self, stmts: list[ast.stmt], scope: _Scope) -> bool:
        """Read ``stmts`` in order; True when they return on PostgreSQL (what follows does
        not run there: ``if bind.dialect.name != "mysql": return`` ends a MySQL-only
        revision's reading)."""
        for stmt in stmts:
            if isinstance(stmt, ast.Return):
                return True
            if isinstance(stmt, ast.If) and (branch := self._dialect(stmt.test)) is not None:
                # `if bind.dialect.name == "sqlite":` — only PostgreSQL's branch runs there
                if self.body(stmt.body if branch else stmt.orelse, scope):
                    return True
                continue
            self.statement(stmt, scope)
        return False

    def statement(self, stmt: ast.stmt, scope: _Scope) -> None:
        if isinstance(stmt, ast.With):
            inner = _Scope(scope.in_transaction, scope.tx, dict(scope.batch), set(scope.binds))
            for item in stmt.items:
                ctx = item.context_expr
                if isinstance(ctx, ast.Call) and _call_name(ctx) == "autocommit_block":
                    inner.in_transaction = False
                elif isinstance(ctx, ast.Call) and _call_name(ctx) == "batch_alter_table":
                    table = _const(_arg(ctx, 0, "table_name"))
                    if isinstance(item.optional_vars, ast.Name) and isinstance(table, str):
                        inner.batch[item.optional_vars.id] = table
            self.body(stmt.body, inner)
            return
        if (
            isinstance(stmt, ast.Assign)
            and isinstance(stmt.value, ast.Call)
            and _call_name(stmt.value) in ("get_bind", "connect")
        ):
            scope.binds |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):  # the latest value wins, in reading order
                sql = isinstance(stmt.value, ast.Constant | ast.JoinedStr | ast.Call)
                if sql or loops.literal(stmt.value) is not None:  # or what a loop runs over
                    self.sql_vars[target.id] = stmt.value
                else:
                    self.sql_vars.pop(target.id, None)
        if isinstance(stmt, ast.If) and (branch := self._dialect(stmt.test)) is not None:
            self.body(stmt.body if branch else stmt.orelse, scope)
            return
        if isinstance(stmt, ast.For) and (
            each := loops.bindings(stmt, self.sequences, self.sql_vars)
        ):
            known = {**self.constants, **self.sql_vars}  # module constants, then locals
            strings = {n: v for n, e in known.items() if isinstance(v := _const(e), str)}
            for names in each:  # a loop over constants: its body once per value
                self.body(loops.bound(stmt.body, {**strings, **names}), scope)
            self.body(stmt.orelse, scope)
            return
        if isinstance(stmt, ast.For | ast.While | ast.If | ast.AsyncFor):
            self.calls_in(stmt.test if isinstance(stmt, ast.While | ast.If) else stmt.iter, scope)
            self.body(stmt.body, scope)
            self.body(stmt.orelse, scope)
            return
        if isinstance(stmt, ast.Try):
            for block in (stmt.body, *[h.body for h in stmt.handlers], stmt.orelse, stmt.finalbody):
                self.body(block, scope)
            return
        self.calls_in(stmt, scope)

    def _dialect(self, test: ast.expr) -> bool | None:
        """:func:`_dialect_branch`, also through a helper of this file that returns such a
        test (``def is_postgres(): return op.get_context().dialect.name == "postgresql"``)."""
        negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        call = test.operand if isinstance(test, ast.UnaryOp) and negated else test
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.args:
            helper = self.helpers.get(call.func.id)
            body = [n for n in helper.body if not isinstance(n, ast.Expr)] if helper else []
            if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
                branch = _dialect_branch(body[0].value)
                if branch is not None:
                    return not branch if negated else branch
        return _dialect_branch(test)

    def calls_in(self, node: ast.AST, scope: _Scope) -> None:
        if (  # the common statement, `op.x(...)`: no need to walk its arguments
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and isinstance(node.value.func.value, ast.Name)
            and node.value.func.value.id == "op"
            and not (
                self.helpers
                and any(
                    isinstance(n, ast.Name) and n.id in self.helpers for n in ast.walk(node.value)
                )
            )
        ):
            self.call(node.value, scope)
            return
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
            self.call(call, scope)

    # ---- one call ----
    def call(self, call: ast.Call, scope: _Scope) -> None:
        f = call.func
        if isinstance(f, ast.Name) and f.id in self.helpers and f.id not in self.visiting:
            # a helper function of this file called from upgrade(): followed, once per call
            self.visiting.add(f.id)
            outer, self.sql_vars = self.sql_vars, {}  # the helper's own locals
            try:
                self.body(self.helpers[f.id].body, scope)
            finally:
                self.visiting.discard(f.id)
                self.sql_vars = outer
            return
        if not isinstance(f, ast.Attribute):
            return
        bind_call = (  # op.get_bind().execute(...), op.get_context().connection.execute(...)
            isinstance(f.value, ast.Call) and _call_name(f.value) in ("get_bind", "connect")
        ) or (isinstance(f.value, ast.Attribute) and f.value.attr == "connection")
        if not isinstance(f.value, ast.Name) and not bind_call:
            return
        owner, method = (f.value.id if isinstance(f.value, ast.Name) else ""), f.attr
        base: dict[str, Any] = {
            "line": call.lineno,
            "end_line": call.end_lineno or call.lineno,
            "column": call.col_offset + 1,
            "in_transaction": scope.in_transaction,
            "tx": scope.tx,
            # the call's first line, for display (get_source_segment re-splits the file)
            "sql": self.lines[call.lineno - 1].strip()[:200]
            if call.lineno <= len(self.lines)
            else "",
        }
        if owner in scope.batch:
            self.op_call(method, call, base, batch_table=scope.batch[owner])
        elif owner == "op":
            self.op_call(method, call, base, batch_table=None)
        elif (owner in scope.binds or bind_call) and method in ("execute", "exec_driver_sql"):
            self.execute(call, base)

    def execute(self, call: ast.Call, base: dict[str, Any]) -> None:
        arg = call.args[0] if call.args else _kw(call, "sqltext")
        if isinstance(arg, ast.Name) and arg.id in self.sql_vars:  # a local set earlier
            arg = self.sql_vars[arg.id]
        elif isinstance(arg, ast.Name) and arg.id in self.constants:  # a module constant
            arg = self.constants[arg.id]
        sql = _const(arg)
        if arg is None:
            return
        if not isinstance(sql, str):
            if isinstance(arg, ast.expr):
                self.ops += self._not_a_string(arg, base)
            return
        node: Any = arg.args[0] if isinstance(arg, ast.Call) and arg.args else arg
        problems: list[SqlError] = []
        ops, _ = sql_operations(
            sql,
            first_line=node.lineno,
            first_column=node.col_offset + 2,
            in_transaction=base["in_transaction"],
            tx=base["tx"],
            problems=problems,
        )
        for p in problems:  # this statement is not checked; the others are
            line = p.line if p.line != node.lineno else base["line"]
            self.errors.append((line, p.column, f"SQL in execute() does not parse: {p}"))
        # SQL in a one-line string keeps the call's own position for suppression comments
        self.ops += [
            replace(
                o,
                line=o.line if o.line != node.lineno else base["line"],
                end_line=max(o.end_line, base["end_line"]) if o.line == node.lineno else o.end_line,
            )
            for o in ops
        ]

    def _not_a_string(self, arg: ast.expr, base: dict[str, Any]) -> list[Operation]:
        """SQL given as something other than a literal: SQLAlchemy Core DML is read as the
        UPDATE or DELETE it is; SQL built at run time is reported as not checked."""
        node: ast.expr = arg
        chain: list[str] = []
        while isinstance(node, ast.Call):
            chain.append(_call_name(node))
            f = node.func
            node = f.value if isinstance(f, ast.Attribute) else f
        kind = next(
            (c for c in reversed(chain) if c in ("update", "delete", "select", "insert")), None
        )
        if kind in ("select", "insert") or any(c.endswith("insert") for c in chain):
            return []  # Core SELECT / INSERT (pg_insert too): no lock worth a rule
        construct = next((c for c in chain if c in SA_DDL), None)
        if construct is not None and SA_DDL[construct] is None:
            return []  # CREATE SCHEMA / SEQUENCE and the like: no table lock
        if construct is not None:
            return [Operation(k.UNCHECKED_SQL, **base, name=f"SQLAlchemy {construct}")]
        if kind is not None:
            table = self._table_of(arg)
            return [
                Operation(
                    k.UPDATE if kind == "update" else k.DELETE,
                    **base,
                    table=table,
                    has_where="where" in chain,
                )
            ]
        dynamic = isinstance(arg, ast.JoinedStr | ast.BinOp) or (
            isinstance(arg, ast.Call) and _call_name(arg) == "format"
        )
        if dynamic or isinstance(arg, ast.Name | ast.Attribute | ast.Subscript | ast.Call):
            return [Operation(k.UNCHECKED_SQL, **base)]
        return []

    def _table_of(self, expr: ast.expr) -> str | None:
        """The table a Core statement targets: ``sa.table("t")``, a name bound to one, or
        ``sa.update(t)``'s first argument."""
        for n in ast.walk(expr):
            if isinstance(n, ast.Call) and _call_name(n) in ("table", "Table") and n.args:
                name = _const(n.args[0])
                if isinstance(name, str):
                    return name
            if isinstance(n, ast.Name) and n.id in self.tables:
                return self.tables[n.id]
        return None

    def op_call(
        self, method: str, call: ast.Call, base: dict[str, Any], batch_table: str | None
    ) -> None:
        shift = 0 if batch_table is None else -1  # batch ops omit the table argument

        def table_at(i: int, name: str) -> str | None:
            if batch_table is not None:
                return batch_table
            v = _const(_arg(call, i, name))
            return v if isinstance(v, str) else None

        def arg(i: int, name: str) -> Any:
            return _const(_arg(call, i + shift, name))

        conc = bool(_const(_kw(call, "postgresql_concurrently")))
        not_valid = bool(_const(_kw(call, "postgresql_not_valid")))
        add = self.ops.append
        match method:
            case "create_table":
                add(Operation(k.CREATE_TABLE, **base, table=table_at(0, "table_name")))
            case "drop_table":
                gone = _const(_kw(call, "if_exists")) is True
                add(
                    Operation(k.DROP_TABLE, **base, table=table_at(0, "table_name"), if_exists=gone)
                )
            case "rename_table":
                add(
                    Operation(
                        k.RENAME_TABLE,
                        **base,
                        table=table_at(0, "old_table_name"),
                        name=arg(1, "new_table_name"),
                    )
                )
            case "create_index":
                add(
                    Operation(
                        k.CREATE_INDEX,
                        **base,
                        name=arg(0, "index_name"),
                        table=table_at(1, "table_name"),
                        concurrently=conc,
                        unique=bool(_const(_kw(call, "unique"))),
                    )
                )
            case "drop_index":
                add(
                    Operation(
                        k.DROP_INDEX,
                        **base,
                        name=arg(0, "index_name"),
                        table=_const(_arg(call, 1, "table_name")) or batch_table,
                        concurrently=conc,
                    )
                )
            case "add_column":
                column = _arg(call, 1 + shift, "column")
                table = table_at(0, "table_name")
                add(column_op(column, base, table))
                self.ops += column_ddl(column, base, table)
            case "drop_column":
                add(
                    Operation(
                        k.DROP_COLUMN,
                        **base,
                        table=table_at(0, "table_name"),
                        name=arg(1, "column_name"),
                    )
                )
            case "alter_column":
                self._alter_column(call, base, table_at(0, "table_name"), arg(1, "column_name"))
            case "create_foreign_key":
                add(
                    Operation(
                        k.ADD_CONSTRAINT,
                        **base,
                        name=arg(0, "constraint_name"),
                        table=table_at(1, "source_table"),
                        constraint="foreign_key",
                        not_valid=not_valid,
                    )
                )
            case "create_check_constraint":
                cond = _const(_arg(call, 2 + shift, "condition"))
                col: str | None = None
                if isinstance(cond, str) and cond.strip().lower().endswith("is not null"):
                    col = cond.strip()[: -len("is not null")].strip().strip('"')
                add(
                    Operation(
                        k.ADD_CONSTRAINT,
                        **base,
                        name=arg(0, "constraint_name"),
                        table=table_at(1, "table_name"),
                        constraint="check",
                        not_valid=not_valid,
                        check_not_null_of=col,
                    )
                )
            case "create_unique_constraint" | "create_primary_key":
                kind = "unique" if method == "create_unique_constraint" else "primary_key"
                add(
                    Operation(
                        k.ADD_CONSTRAINT,
                        **base,
                        name=arg(0, "constraint_name"),
                        table=table_at(1, "table_name"),
                        constraint=kind,
                    )
                )
            case "create_exclude_constraint":
                add(
                    Operation(
                        k.ADD_CONSTRAINT,
                        **base,
                        name=arg(0, "constraint_name"),
                        table=table_at(1, "table_name"),
                        constraint="exclusion",
                    )
                )
            case "execute":
                self.execute(call, base)
            case "sync_enum_values":  # alembic_postgresql_enum: recreates the type
                self.ops += sync_enum(call, base)
            case "get_bind" | "get_context" | "f" | "inline_literal":
                pass
            case "bulk_insert":
                pass
            case _:
                if method.startswith(("create_", "drop_", "alter_", "rename_")):
                    add(Operation(k.ALTER_OTHER, **base, table=table_at(0, "table_name")))

    def _alter_column(
        self, call: ast.Call, base: dict[str, Any], table: str | None, column: Any
    ) -> None:
        if _const(_kw(call, "nullable")) is False:
            self.ops.append(Operation(k.SET_NOT_NULL, **base, table=table, name=column))
        if _kw(call, "type_") is not None:
            type_to = _type_text(_kw(call, "type_"))
            if _kw(call, "postgresql_using") is not None:  # USING converts every row
                type_to = f"{type_to} USING an expression"
            self.ops.append(
                Operation(
                    k.ALTER_COLUMN_TYPE,
                    **base,
                    table=table,
                    name=column,
                    type_from=_type_text(_kw(call, "existing_type")),
                    type_to=type_to,
                )
            )
        new_name = _const(_kw(call, "new_column_name"))
        if new_name:
            self.ops.append(
                Operation(k.RENAME_COLUMN, **base, table=table, name=column, type_to=new_name)
            )
        if _kw(call, "server_default") is not None:
            self.ops.append(Operation(k.ALTER_OTHER, **base, table=table, name=column))


#: SQLAlchemy DDL constructs given to execute(): None when they take no table lock (nothing
#: to check); otherwise what to call them in the unchecked-sql warning
SA_DDL: dict[str, str | None] = {
    "CreateSchema": None,
    "DropSchema": None,
    "CreateSequence": None,
    "DropSequence": None,
    "CreateTable": "CreateTable",
    "DropTable": "DropTable",
    "CreateIndex": "CreateIndex",
    "DropIndex": "DropIndex",
    "AddConstraint": "AddConstraint",
    "DropConstraint": "DropConstraint",
    "CreateColumn": "CreateColumn",
}


def _revisions(node: ast.expr | None) -> tuple[str, ...]:
    """``down_revision``: one id, a tuple or list of them (a merge), or None."""
    value = _const(node) if node is not None else None
    if isinstance(value, str):
        return (value,)
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(v for v in (_const(e) for e in node.elts) if isinstance(v, str))
    return ()


def read_alembic(path: Path, source: str, *, include_downgrade: bool = False) -> Migration:
    mig = Migration(path)
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        mig.parse_error = (exc.lineno or 1, (exc.offset or 1), f"Python syntax error: {exc.msg}")
        return mig
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id in ("revision", "down_revision"):
                    value = _const(node.value)
                    setattr(mig, t.id, value if isinstance(value, str) else None)
                if isinstance(t, ast.Name) and t.id == "down_revision":
                    mig.parents = _revisions(node.value)
    if "upgrade" not in funcs:
        mig.is_migration = False
        return mig
    reader = _Reader(source)
    reader.helpers = {n: f for n, f in funcs.items() if n not in ("upgrade", "downgrade")}
    for node in tree.body:  # module constants: SQL strings and sa.table(...) handles
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(_const(node.value), str):
                reader.constants[target.id] = node.value
            elif isinstance(target, ast.Name) and (seq := loops.literal(node.value)) is not None:
                reader.sequences[target.id] = seq
            elif (
                isinstance(target, ast.Name)
                and isinstance(node.value, ast.Call)
                and _call_name(node.value) in ("table", "Table")
                and node.value.args
                and isinstance(_const(node.value.args[0]), str)
            ):
                reader.tables[target.id] = _const(node.value.args[0])
    linted = [funcs["upgrade"]]
    if include_downgrade and "downgrade" in funcs:
        linted.append(funcs["downgrade"])
    mig.linted_lines = [(f.lineno, f.end_lineno or f.lineno) for f in linted]
    for tx, func in enumerate(linted):  # downgrade runs in a transaction of its own
        reader.body(func.body, _Scope(tx=tx * 1000))
    mig.operations = reader.ops
    mig.statement_errors = reader.errors
    return mig
