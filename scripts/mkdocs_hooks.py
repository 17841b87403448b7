"""MkDocs hooks (mkdocs.yml `hooks:`): the pages written from deployer's own sources when the
site is built, so nothing is written twice.

- `<!-- generated: playbook-reference -->`: every playbook key, from the models, as
  `deployer docs` prints them (deployer.playbook.docs.reference);
- `<!-- generated: lint-rules -->`: every lint rule's explanation, as `deployer lint
  --explain RULE` prints it (the rule module's docstring), with its severity, phase and what
  `--prove` measures; then the linter's own findings (deployer.lint.runner.META).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def playbook_reference() -> str:
    from deployer.playbook.docs import reference

    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for r in reference():
        default = (
            "**required**"
            if r["required"]
            else ("" if r["default"] is None else f"`{r['default']}`")
        )
        rows.append(
            f"| `{r['key']}` | {_cell(str(r['type']))} | {default} | {_cell(r['description'])} |"
        )
    return "\n".join(rows)


def lint_rules() -> str:
    from deployer.lint.rules import CLAIMS, load_rules
    from deployer.lint.runner import META

    out = []
    for rule in sorted(load_rules().values(), key=lambda r: r.id):
        proves = f"; `--prove` checks that {CLAIMS[rule.claim]}" if rule.claim else ""
        sized = (
            "; a warning on a table the table-stats file says is small"
            if rule.size_dependent
            else ""
        )
        out += [
            f"## {rule.id}",
            "",
            f"**{rule.severity}**, {rule.phase} phase{proves}{sized}.",
            "",
            "```text",
            rule.doc,
            "```",
            "",
        ]
    out += ["## The linter's own findings", ""]
    for name, (severity, text) in sorted(META.items()):
        out += [f"### {name}", "", f"**{severity}**. {text}", ""]
    return "\n".join(out)


GENERATED = {
    "<!-- generated: playbook-reference -->": playbook_reference,
    "<!-- generated: lint-rules -->": lint_rules,
}


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, make in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
