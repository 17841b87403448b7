"""Inline ignores: `# deployer: ignore[RULE-ID] reason` (Python) or `-- deployer: ...` (SQL),
on the operation's line or the line above. A reason is required; unused ignores are reported.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

PATTERN = re.compile(r"deployer:\s*ignore\[([A-Za-z0-9_,\s-]+)\]\s*(.*)$")


@dataclass
class Ignore:
    line: int
    column: int
    rules: list[str]
    reason: str
    standalone: bool = True  # the comment is alone on its line (so it may cover the next)
    used: set[str] = field(default_factory=set)


def _python_comments(source: str) -> list[tuple[int, int, str, bool]]:
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                alone = not tok.line[: tok.start[1]].strip()
                out.append((tok.start[0], tok.start[1] + 1, tok.string, alone))
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _sql_comments(source: str) -> list[tuple[int, int, str, bool]]:
    out = []
    for number, line in enumerate(source.splitlines(), 1):
        pos = line.find("--")
        if pos >= 0:
            out.append((number, pos + 1, line[pos:], not line[:pos].strip()))
    return out


def find_ignores(source: str, *, python: bool) -> list[Ignore]:
    if "deployer:" not in source:  # the common case: skip tokenizing
        return []
    comments = _python_comments(source) if python else _sql_comments(source)
    out = []
    for line, col, text, alone in comments:
        m = PATTERN.search(text)
        if m:
            rules = [r.strip() for r in m.group(1).split(",") if r.strip()]
            out.append(Ignore(line, col, rules, m.group(2).strip(), alone))
    return out


def suppressing(ignores: list[Ignore], rule_id: str, line: int, end_line: int = 0) -> Ignore | None:
    """The ignore on the operation's first line, else on another of its lines (formatters
    move trailing comments to a call's closing line), else a comment alone on the line
    above."""
    for at in (line, *range(line + 1, max(end_line, line) + 1), line - 1):
        for ig in ignores:
            if (
                ig.line == at
                and rule_id in ig.rules
                and ig.reason
                and (at != line - 1 or ig.standalone)
            ):
                return ig
    return None
