"""Expand or contract: what each pending revision is, from the linter's own reading of it.

A revision **contracts** the schema when one of its operations is flagged by a
contract-phase rule (the rule's metadata says which: dropping or renaming a column or table,
a type the old version cannot write, NOT NULL it may not satisfy), whatever ignore comments
say; otherwise it **expands** it. A revision that does both contracts. The revision itself
may say which it is, and then that is what it is:

    # deployer: phase=contract      (a comment line anywhere in the file)
    deployer_phase = "expand"       (or a module-level assignment)

Expand revisions run before a release's switch (old and new versions both work with them);
contract revisions wait until no version that could be rolled back to needs the old shape
(``migrate.contract: deferred``). Alembic applies revisions in order and cannot skip one, so
an expand revision after a contract revision that has not run yet cannot run first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deployer.lint.config import LintConfig
from deployer.lint.runner import Linter

Phase = Literal["expand", "contract"]
_COMMENT = re.compile(r"^\s*#\s*deployer:\s*phase\s*=\s*(expand|contract)\b", re.MULTILINE)
_ASSIGN = re.compile(r"""^deployer_phase\s*(?::\s*str\s*)?=\s*["'](expand|contract)["']""", re.M)


@dataclass
class RevisionPhase:
    revision: str
    path: Path
    phase: Phase
    #: why: the contract findings ("drop-column: dropping accounts.name ..."), or "marked"
    why: list[str] = field(default_factory=list)
    marked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "file": self.path.name,
            "phase": self.phase,
            "why": self.why,
            "marked": self.marked,
        }


def contract_rules() -> set[str]:
    from deployer.lint.rules import load_rules

    return {r.id for r in load_rules().values() if r.phase == "contract"}


def marked_phase(text: str) -> Phase | None:
    """The phase a revision's file declares, if it declares one."""
    m = _COMMENT.search(text) or _ASSIGN.search(text)
    return m.group(1) if m else None  # type: ignore[return-value]


def classify(folder: Path, after: str | None) -> list[RevisionPhase]:
    """Each revision after ``after`` (None: all), in the order Alembic applies them."""
    rules = contract_rules()
    config = LintConfig(
        enable=rules, start_after=after, honor_ignores=False, include_downgrade=False
    )
    result = Linter(config).lint([folder])
    out: list[RevisionPhase] = []
    by_path: dict[Path, RevisionPhase] = {}
    for m in result.migrations:
        try:
            text = m.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        mark = marked_phase(text)
        rp = RevisionPhase(m.revision or "?", m.path, mark or "expand", marked=mark is not None)
        if mark:
            rp.why.append(f"marked `phase={mark}` in the revision")
        out.append(rp)
        by_path[m.path.resolve()] = rp
    for f in result.findings:
        found = by_path.get(Path(f.path).resolve())
        if found is None or f.rule not in rules:
            continue
        if not found.marked:
            found.phase = "contract"
            found.why.append(f"{f.rule}: {f.message}")
    return out


def order_problem(phases: list[RevisionPhase], runnable: set[str]) -> str | None:
    """Why this pending chain cannot run as expand-now, contract-later: an expand revision
    that comes after a contract revision which may not run yet (``runnable``: the contract
    revisions allowed to run now)."""
    for i, rp in enumerate(phases):
        if rp.phase != "contract" or rp.revision in runnable:
            continue
        later = next((x for x in phases[i + 1 :] if x.phase == "expand"), None)
        if later is not None:
            return (
                f"expand revision {later.revision} ({later.path.name}) comes after contract "
                f"revision {rp.revision} ({rp.path.name}), which cannot run yet; Alembic "
                "cannot skip a revision. Move the contract to a later release (its revision "
                f"after {later.revision}), or let it run first (`deployer migrate --contract` "
                "once the rollback window has closed)"
            )
    return None
