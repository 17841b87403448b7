#!/usr/bin/env python3
"""Rewrite README.md's playbook reference table from the model (`deployer docs`)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deployer.playbook.docs import reference  # noqa: E402

START, END = "<!-- reference:start -->", "<!-- reference:end -->"


def table() -> str:
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for r in reference():
        default = (
            "**required**"
            if r["required"]
            else ("" if r["default"] is None else f"`{r['default']}`")
        )
        rows.append(f"| `{r['key']}` | {r['type']} | {default} | {r['description']} |")
    return "\n".join(rows)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
