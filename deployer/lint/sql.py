"""SQL front end: a SQL text -> operations, statement positions and transaction blocks
(pglast, PostgreSQL's own parser; each statement is read by :mod:`sql_json`)."""

from __future__ import annotations

from typing import Any

from pglast.parser import ParseError, scan

from deployer.lint import sql_json
from deployer.lint.binds import neutralize
from deployer.lint.operations import Operation


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
        pieces = [(0, sql_json.parse(text))]
    except ParseError as exc:
        if problems is None:
            raise _placed(exc, text, 0, source, first_line, first_column) from None
        pieces = _statement_by_statement(text, first_line, first_column, problems)
    out: list[Operation] = []
    in_tx = in_transaction
    for offset, stmts in pieces:
        for raw in stmts:
            start = offset + (raw.get("stmt_location") or 0)
            line, col = _position(source, start)
            length = raw.get("stmt_len") or (len(source) - start)
            end = start + length
            stmt_text = source[start:end].decode(errors="replace").strip()
            name, body = sql_json.node(raw)
            if name == "TransactionStmt":
                if body.get("kind") in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
                    in_tx, tx = True, tx + 1
                elif body.get("kind") in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
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
            out += sql_json.operations(name, body, base)
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
) -> list[tuple[int, list[dict[str, Any]]]]:
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
    out: list[tuple[int, list[dict[str, Any]]]] = []
    begin = 0
    for end in [*cuts, len(source)]:
        piece = source[begin:end].decode(errors="replace")
        if piece.strip():
            try:
                out.append((begin, sql_json.parse(piece)))
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
