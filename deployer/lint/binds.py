"""Bind parameters as PostgreSQL placeholders, so that SQL written for a driver parses.

``sa.text("... WHERE b = :b")`` (SQLAlchemy) and ``"... %s"`` / ``"... %(name)s"`` (DB-API)
are valid SQL once the driver substitutes them, but not for PostgreSQL's parser. Each
becomes ``$1`` padded with spaces to the same length, so every line and column the parser
reports is still the source's. Strings, quoted identifiers, comments, dollar quotes and
``::`` casts are left alone.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYFORMAT = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)s")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
#: the characters that can start something this module looks at
_SPECIAL = re.compile(r"['\"\-/$:\\%]")


def _placeholder(length: int, in_list: bool = False) -> str:
    """A parameter of the same length (positions stay true); after IN, a parenthesized one:
    psycopg and SQLAlchemy's expanding parameters turn ``IN %s`` / ``IN :ids`` with a tuple
    into ``IN (1, 2, 3)``."""
    if in_list:
        return "($1)" + " " * max(0, length - 4)
    return "$1" + " " * (length - 2)


_IN = re.compile(r"(?i)(?:^|[^A-Za-z0-9_])in\s*$")


def _after_in(out: list[str]) -> bool:
    """The text before this parameter ends with the keyword IN."""
    tail = "".join(out[-3:])[-12:]
    return _IN.search(tail) is not None


def neutralize(sql: str) -> str:
    if ":" not in sql and "%" not in sql:
        return sql  # nothing to replace (the common case)
    out: list[str] = []
    i, n = 0, len(sql)
    pyformat = "%s" in sql or _PYFORMAT.search(sql) is not None
    while i < n:
        c = sql[i]
        two = sql[i : i + 2]
        if c in "'\"":  # a string or a quoted identifier ('' and "" escape themselves)
            j = i + 1
            while j < n:
                if sql[j] == c and sql[j + 1 : j + 2] == c:
                    j += 2
                    continue
                if sql[j] == c:
                    break
                if c == "'" and sql[j] == "\\" and i > 0 and sql[i - 1] in "eE":
                    j += 1
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif two == "--":
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif two == "/*":
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif c == "$" and (m := _DOLLAR.match(sql, i)) and not sql[i + 1 : i + 2].isdigit():
            tag = m.group(0)
            j = sql.find(tag, m.end())
            j = n if j < 0 else j + len(tag)
            out.append(sql[i:j])
            i = j
        elif two == "::":
            out.append(two)
            i += 2
        elif c == "\\" and sql[i + 1 : i + 2] == ":":  # SQLAlchemy's escaped colon
            out.append(" :")
            i += 2
        elif c == ":" and (m := _NAME.match(sql, i + 1)) and not _word_before(sql, i):
            out.append(_placeholder(m.end() - i, _after_in(out)))
            i = m.end()
        elif pyformat and two == "%%":
            out.append("% ")
            i += 2
        elif pyformat and two == "%s":
            out.append("($1)" if _after_in(out) else "$1")
            i += 2
        elif pyformat and (m := _PYFORMAT.match(sql, i)):
            out.append(_placeholder(m.end() - i, _after_in(out)))
            i = m.end()
        else:  # plain text up to the next character that may matter
            m = _SPECIAL.search(sql, i + 1)
            j = m.start() if m else n
            out.append(sql[i:j])
            i = j
    return "".join(out)


def _word_before(sql: str, i: int) -> bool:
    """``a:b`` (an array slice, a time literal) is not a bind parameter."""
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_]")
