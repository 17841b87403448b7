"""What the measurements say: each static finding confirmed or not, the hazards the rules
did not predict, and whether `--prove` passes.

A run fails on a rewrite of a table that existed before the revision, on ACCESS EXCLUSIVE
held on such a table longer than the bound (from the statement that took it to COMMIT), and
on a revision that fails (the later ones are not run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.lint.rules import CLAIMS, Rule
from deployer.lint.runner import Finding, LintResult
from deployer.prove.instrument import ACCESS_EXCLUSIVE, Revision, Statement, sql_mode
from deployer.prove.run import ProveRun


@dataclass
class Confirmation:
    finding: Finding
    revision: str
    claim: str | None
    confirmed: bool | None  # None: nothing to measure (no claim, or the revision did not run)
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.finding.path,
            "line": self.finding.line,
            "rule": self.finding.rule,
            "revision": self.revision,
            "claim": self.claim,
            "confirmed": self.confirmed,
            "evidence": self.evidence,
        }


@dataclass
class Verdict:
    run: ProveRun
    lock_bound_s: float
    confirmations: list[Confirmation] = field(default_factory=list)
    hazards: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.hazards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.run.database,
            "rows": self.run.rows,
            "lock_bound_ms": round(self.lock_bound_s * 1000),
            "seconds": round(self.run.seconds, 3),
            "passed": not self.failed,
            "hazards": self.hazards,
            "findings": [c.to_dict() for c in self.confirmations],
            "revisions": [r.to_dict() for r in self.run.revisions],
        }


def _bare(name: str | None) -> str | None:
    return name.split(".")[-1].strip('"') if name else None


def _on(table: str | None, names: Any, s: Statement | None = None) -> list[str]:
    """The measured relations a finding's table names (any, when it names none; an index's
    table when it names an index, as REINDEX INDEX does)."""
    bare = _bare(table)
    if bare is not None and s is not None:
        bare = s.parents.get(bare, bare)
    return [n for n in names if bare is None or n == bare]


def _statements_of(rev: Revision, line: int) -> list[Statement]:
    """A .sql file's statement the finding's line is in; for Alembic, every statement."""
    lined = [s for s in rev.statements if s.line]
    if not lined:
        return rev.statements
    at = max((s.line for s in lined if s.line and s.line <= line), default=None)
    return [s for s in lined if s.line == at]


def _reads_as(s: Statement, kind: str, table: str | None, name: str | None) -> bool:
    """The statement, read by the linter's own SQL front end, is the flagged operation: the
    same kind, on the same table (and index, column or constraint, when the finding names
    one)."""
    from deployer.lint.sql import sql_operations

    try:
        ops, _ = sql_operations(s.sql)
    except Exception:
        return False
    return any(
        o.kind == kind
        and (table is None or _bare(o.table) == _bare(table))
        and (name is None or o.name is None or _bare(o.name) == _bare(name))
        for o in ops
    )


def _flagged(
    rev: Revision, line: int, kind: str | None, table: str | None, name: str | None
) -> list[Statement] | None:
    """The statements a finding is about: those that read as its operation (for a .sql file,
    the one at its line first); None when no statement that ran reads as it."""
    if kind is None:
        return _statements_of(rev, line) if line else rev.statements
    at = _statements_of(rev, line) if line else []
    for group in (at, rev.statements):
        hits = [s for s in group if _reads_as(s, kind, table, name)]
        if hits:
            return hits
    return None


def confirm(
    claim: str | None,
    table: str | None,
    rev: Revision,
    line: int = 0,
    kind: str | None = None,
    name: str | None = None,
) -> tuple[bool | None, str]:
    """Confirm or refute a finding's claim on the measurements of the statement it flags
    (matched by its operation: kind, table, name), never on another statement of the same
    revision."""
    if claim is None:
        return None, "nothing this rule claims can be measured"
    if not rev.ran:
        return None, "not run: an earlier revision failed"
    flagged = _flagged(rev, line, kind, table, name)
    if flagged is None:
        if rev.error:
            return None, f"the revision failed before its statement ran: {rev.error}"
        return None, f"no statement that ran reads as the flagged {kind} on {table or '?'}"
    sts = flagged
    if claim == "fails":
        failed = [s for s in sts if s.error]
        if failed:
            return True, f"statement {failed[0].index} ({failed[0].verb}) failed: {failed[0].error}"
        if rev.error and kind is None:
            return True, f"failed: {rev.error}"
        if rev.error:
            return None, f"another statement failed first: {rev.error}"
        return False, "the revision ran without error"
    if claim == "no-lock-timeout":
        first = next(
            (s for s in sts if any(m != "AccessShareLock" for m in s.tables.values())), None
        )
        if first is None:
            if rev.error:
                return None, f"the revision failed first: {rev.error}"
            return False, "no table lock was taken"
        if first.lock_timeout in ("0", "0ms", "0s"):
            return True, f"lock_timeout was 0 at statement {first.index} ({first.verb})"
        return False, f"lock_timeout was {first.lock_timeout} at statement {first.index}"
    for s in sts:
        hit = _hit(claim, table, s, rev)
        if hit:
            return True, f"statement {s.index} ({s.verb}): {hit}"
    if rev.error:  # the statement failed, or never ran: nothing to say of its claim
        return None, f"the revision failed before this could be seen: {rev.error}"
    return False, f"not seen: {CLAIMS[claim]}"


def _hit(claim: str, table: str | None, s: Statement, rev: Revision) -> str:
    if claim == "rewrite" and (names := _on(table, s.rewritten)):
        return f"{', '.join(names)} rewritten"
    if claim == "access-exclusive":
        names = [t for t in _on(table, s.tables, s) if s.tables[t] == ACCESS_EXCLUSIVE]
        if names:
            held = max(rev.exclusive_s.get(t, 0.0) for t in names)
            return f"ACCESS EXCLUSIVE on {', '.join(names)} (held {held * 1000:.0f} ms)"
    if claim in ("blocks-writes", "backfill-under-lock"):
        if claim == "backfill-under-lock" and s.verb not in ("UPDATE", "DELETE", "INSERT"):
            return ""
        names = _on(table, s.writers_blocked, s)
        if names:
            return f"a writer of {', '.join(names)} was blocked ({_modes(s, names)} held)"
    if claim == "blocks-row-writes" and (names := _on(table, s.row_writers_blocked, s)):
        return f"an UPDATE of a row of {', '.join(names)} was blocked ({s.rowcount} rows locked)"
    return ""


def _modes(s: Statement, names: list[str]) -> str:
    return ", ".join(f"{sql_mode(s.tables[n]) if n in s.tables else '?'} on {n}" for n in names)


def judge(result: LintResult, run: ProveRun, rules: dict[str, Rule], bound_s: float) -> Verdict:
    verdict = Verdict(run, bound_s)
    by_path = {str(Path(r.path).resolve()): r for r in run.revisions}
    for f in result.findings:
        rev = by_path.get(str(Path(f.path).resolve()))
        if rev is None:
            continue
        rule = rules.get(f.rule)
        claim = rule.claim if rule else None
        confirmed, evidence = confirm(claim, f.table, rev, f.line, f.op_kind, f.op_name)
        verdict.confirmations.append(
            Confirmation(f, rev.revision, rule.claim if rule else None, confirmed, evidence)
        )
    for rev in run.revisions:
        if rev.error:
            why = ""
            if any(rev.filled.values()):  # the scratch rows may be what it failed on
                why = (
                    " (the scratch rows are synthetic: if it failed on their values, try --rows 0)"
                )
            verdict.hazards.append(f"{rev.revision}: failed: {rev.error}{why}")
        for s in rev.statements:
            if not s.rewritten:
                continue
            tables = [n for n in s.rewritten if n not in s.parents]
            indexes = [n for n in s.rewritten if n in s.parents and s.parents[n] in tables]
            named = [n for n in s.rewritten if n not in indexes]
            also = f" (and {len(indexes)} of its indexes)" if indexes else ""
            verdict.hazards.append(
                f"{rev.revision}: statement {s.index} ({s.verb}) rewrote {', '.join(named)}{also}"
            )
        for table, held in sorted(rev.exclusive_s.items()):
            if held > bound_s:
                verdict.hazards.append(
                    f"{rev.revision}: ACCESS EXCLUSIVE on {table} held {held * 1000:.0f} ms "
                    f"(bound {bound_s * 1000:.0f} ms)"
                )
    return verdict


def _locks_text(s: Statement, rev: Revision) -> str:
    parts = []
    for t, mode in sorted(s.tables.items()):
        if t in rev.created or mode == "AccessShareLock":
            continue
        parts.append(f"{t} {sql_mode(mode)}")
    return ", ".join(parts)


def _statement_lines(s: Statement, rev: Revision, width: int) -> list[str]:
    text = s.sql if len(s.sql) <= width - 16 else s.sql[: width - 17] + "…"
    lines = [f"  {s.index:>3} {s.duration_s * 1000:>8.1f} ms  {text}"]
    facts = []
    if locks := _locks_text(s, rev):
        facts.append(f"locks: {locks}")
    if s.rewritten:
        facts.append(f"rewrote: {', '.join(s.rewritten)}")
    blocked = []
    if s.writers_blocked:
        blocked.append(f"writers of {', '.join(sorted(s.writers_blocked))}")
    elif s.row_writers_blocked:
        blocked.append(f"row updates of {', '.join(sorted(s.row_writers_blocked))}")
    if s.readers_blocked:
        blocked.append(f"readers of {', '.join(sorted(s.readers_blocked))}")
    if blocked:
        facts.append(f"blocked: {'; '.join(blocked)}")
    if s.error:
        facts.append(f"failed: {s.error}")
    lines += [f"{'':19}{fact}" for fact in facts]
    return lines


def print_text(out: Any, verdict: Verdict) -> None:
    """One table per revision, then the findings with their confirmation, then the verdict."""
    from rich.markup import escape

    run = verdict.run
    for rev in run.revisions:
        head = f"[bold]{escape(rev.revision)}[/] {escape(Path(rev.path).name)}"
        if not rev.ran:
            out.print(f"{head}: not run (an earlier revision failed)", markup=True)
            continue
        filled = ", ".join(f"{t} {n:,}" for t, n in rev.filled.items() if n)
        out.print(
            f"{head}: {rev.duration_s * 1000:.1f} ms"
            + (f", rows inserted first: {escape(filled)}" if filled else ""),
            markup=True,
            highlight=False,
        )
        for p in rev.fill_problems:
            out.print(f"  could not fill {p}", style="yellow", markup=False)
        width = max(out.width, 60)
        for s in rev.statements:
            for line in _statement_lines(s, rev, width):
                out.print(line, markup=False, highlight=False, overflow="ellipsis", no_wrap=True)
        if rev.exclusive_s:
            held = ", ".join(f"{t} {v * 1000:.0f} ms" for t, v in sorted(rev.exclusive_s.items()))
            out.print(f"  ACCESS EXCLUSIVE held until commit: {escape(held)}", markup=True)
        if rev.error:
            out.print(f"  failed: {rev.error}", style="red", markup=False)
    for c in verdict.confirmations:
        word = {True: "confirmed", False: "not confirmed", None: "not measured"}[c.confirmed]
        color = {True: "green", False: "yellow", None: "dim"}[c.confirmed]
        out.print(
            f"{escape(c.finding.path)}:{c.finding.line} {c.finding.rule}: "
            f"[{color}]{word}[/] ({escape(c.evidence)})",
            markup=True,
            highlight=False,
        )
    if verdict.hazards:
        for h in verdict.hazards:
            out.print(f"prove: {h}", style="red", markup=False)
    out.print(
        f"prove: {len(run.revisions)} revision(s) in {run.seconds:.1f} s on a scratch database "
        f"({run.rows:,} rows per touched table): " + ("FAILED" if verdict.failed else "passed"),
        markup=False,
        highlight=False,
    )
