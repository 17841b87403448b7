"""Lint files: read them (Alembic or SQL), order each folder's revisions as a chain, run the
rules with what earlier revisions established, apply inline ignores, report findings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deployer.lint import operations as k
from deployer.lint.chain import Chain, ancestors, order
from deployer.lint.config import LintConfig
from deployer.lint.files import collect, display, read
from deployer.lint.operations import Migration, Operation
from deployer.lint.rules import Context, Rule, load_rules
from deployer.lint.stats import load as load_stats
from deployer.lint.suppress import find_ignores, suppressing

#: findings about the lint run itself (documented by `--explain` too)
META = {
    "parse-error": (
        "error",
        "A file (Python) or a SQL statement that cannot be parsed, so it was not checked. "
        "Bind parameters (:name, %s, %(name)s) are understood; anything else that is valid "
        "for your driver but not for PostgreSQL's parser can be acknowledged like any rule: "
        "`# deployer: ignore[parse-error] <why it is safe>` on the line, or `severity = "
        '{parse-error = "warning"}` / `disable = ["parse-error"]` in the config. A '
        "statement that does not parse never stops the file's other statements from being "
        "checked.",
    ),
    "ignore-without-reason": (
        "error",
        "An inline ignore with no reason after it, like "
        "`# deployer: ignore[drop-column]`: say why it is safe.",
    ),
    "duplicate-revision": (
        "error",
        "Two files declare the same revision id. Alembic refuses such a history; the "
        "linter reads both (each file's operations are checked) and orders neither in the "
        "chain.",
    ),
    "revision-cycle": (
        "error",
        "Revisions whose down_revision leads back to themselves. Alembic refuses such a "
        "history; the linter checks their operations but cannot order them.",
    ),
    "unused-ignore": (
        "warning",
        "An inline ignore that suppresses nothing (the hazard is gone, "
        "or the comment is on the wrong line): remove it.",
    ),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    rule: str
    severity: str
    message: str
    hint: str
    table: str | None = None  # the table the operation works on, when known
    #: the flagged operation's kind and name (what --prove matches the statement by)
    op_kind: str | None = field(default=None, compare=False)
    op_name: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        del doc["op_kind"], doc["op_name"]
        return doc


@dataclass
class LintResult:
    findings: list[Finding]
    files: int
    migrations: list[Migration]
    revisions: set[str] = field(default_factory=set)  # every revision read, skipped or not
    skipped: dict[str, str] = field(default_factory=dict)  # folder -> why it was not linted

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")


def _env_sets_lock_timeout(folder: Path, cache: dict[Path, bool]) -> bool:
    if folder not in cache:
        env = folder.parent / "env.py"
        cache[folder] = env.is_file() and "lock_timeout" in env.read_text(encoding="utf-8")
    return cache[folder]


class Linter:
    def __init__(self, config: LintConfig):
        self.config = config
        self.rules = load_rules()
        config.validate(set(self.rules) | {"parse-error"})
        enabled = config.enable if config.enable is not None else set(self.rules)
        self.active: list[Rule] = [
            r
            for rid, r in sorted(self.rules.items())
            if rid in enabled and rid not in config.disable and config.severity.get(rid) != "off"
        ]
        self.stats = load_stats(config.table_stats) if config.table_stats else None
        #: (rule, its check) per scope, split once: every operation meets every rule
        self._per_op = [(r, r.check) for r in self.active if r.scope == "operation"]
        self._per_migration = [r for r in self.active if r.scope == "migration"]

    def severity(self, rule: Rule) -> str:
        return self.config.severity.get(rule.id, rule.severity)

    def _small(self, rule: Rule, table: str | None) -> str | None:
        """Why a size-dependent finding is brief on ``table`` ("persona: ~200 rows: the
        lock is brief"), from the table-stats file; None without stats, for a table they do
        not list, or one at or above small_table_rows."""
        if self.stats is None or not rule.size_dependent:
            return None
        rows = self.stats.rows(table)
        if rows is None or rows >= self.config.small_table_rows:
            return None
        return f"{table}: ~{rows:,} rows: the lock is brief"

    def lint(self, paths: list[Path]) -> LintResult:
        skipped: dict[str, str] = {}
        files = collect(paths, self.config.exclude, skipped)
        reported = set(files)
        # a revision file given alone (a pre-commit hook passes the staged ones) is read with
        # its sibling revisions for context (a CHECK validated earlier, the chain's order);
        # only the given files are reported
        siblings: list[Path] = []
        for p in paths:
            if p.is_file() and p.suffix == ".py":
                siblings += [s for s in sorted(p.parent.glob("*.py")) if s not in reported]
        files_read = files + list(dict.fromkeys(siblings))
        read_files = [(f, *read(f, self.config)) for f in files_read]
        findings: list[Finding] = []
        env_cache: dict[Path, bool] = {}
        by_folder: dict[Path, list[tuple[Path, Migration, str]]] = {}
        for f, mig, src in read_files:
            by_folder.setdefault(f.parent, []).append((f, mig, src))
        linted: list[Migration] = []
        for folder, group in by_folder.items():
            sources = {m.path: src for _, m, src in group}
            chain = order([m for _, m, _ in group if m.is_migration])
            skip = ancestors(chain, self.config.start_after)
            findings += _chain_findings(chain, reported)
            # what earlier revisions established (validated CHECK constraints): a revision
            # knows its ancestors' facts (every parent's, after a merge); files outside the
            # graph (SQL files, duplicates, cycles) what came before them by file name
            after: dict[str, Facts] = {}
            running: Facts = ({}, set())
            for mig in chain.ordered:
                if chain.in_graph(mig):
                    assert mig.revision is not None
                    facts = _merged(after[p] for p in chain.parents[mig.revision])
                else:
                    facts = (dict(running[0]), set(running[1]))
                checks, validated = facts
                if mig.revision in skip or mig.path not in reported:
                    self._learn(mig, checks, validated)
                else:
                    linted.append(mig)
                    env_lt = self.config.lock_timeout_in_env or _env_sets_lock_timeout(
                        folder, env_cache
                    )
                    findings += self._lint_one(mig, sources[mig.path], set(validated), env_lt)
                    self._learn(mig, checks, validated)
                if chain.in_graph(mig):
                    assert mig.revision is not None
                    after[mig.revision] = facts
                else:
                    running = facts
        findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
        revisions = {m.revision for _, m, _ in read_files if m.revision}
        return LintResult(findings, len(files), linted, revisions, skipped)

    def _parse_errors(
        self, path: str, errors: list[tuple[int, int, str]], ignores: list[Any], hint: str
    ) -> list[Finding]:
        severity = _parse_error_severity(self.config)
        out = []
        for line, col, msg in errors:
            ig = suppressing(ignores, "parse-error", line, line)
            if ig is not None and self.config.honor_ignores:
                ig.used.add("parse-error")
                continue
            if severity is not None:
                out.append(Finding(path, line, col, "parse-error", severity, msg, hint))
        return out

    @staticmethod
    def _learn(
        mig: Migration, checks: dict[str, tuple[str, str]], validated: set[tuple[str, str]]
    ) -> None:
        """Remember validated CHECK (col IS NOT NULL) constraints for later revisions."""
        for op in mig.operations:
            if op.kind == k.ADD_CONSTRAINT and op.check_not_null_of and op.table:
                pair = (op.table, op.check_not_null_of)
                if op.name:
                    checks[op.name] = pair
                if not op.not_valid:
                    validated.add(pair)
            elif op.kind == k.VALIDATE_CONSTRAINT and op.name in checks:
                validated.add(checks[op.name])

    def _lint_one(
        self, mig: Migration, source: str, validated: set[tuple[str, str]], env_lock_timeout: bool
    ) -> list[Finding]:
        path = display(mig.path)
        ignores = find_ignores(source, python=mig.path.suffix == ".py") if source else []
        if mig.parse_error:
            line, col, msg = mig.parse_error
            hint = "fix the syntax; nothing in this file was checked"
            return self._parse_errors(path, [(line, col, msg)], ignores, hint)
        out = self._parse_errors(
            path,
            mig.statement_errors,
            ignores,
            "this statement was not checked (the others were); see --explain parse-error",
        )
        ctx = Context(mig, self.config.postgres_version, set(), validated, env_lock_timeout)
        raw: list[tuple[Rule, Operation, Any]] = []
        per_op = self._per_op
        for op in mig.operations:
            for rule, check in per_op:
                if msg := check(op, ctx):
                    raw.append((rule, op, msg))
            if op.kind == k.CREATE_TABLE and op.table:
                ctx.created_tables.add(op.table)
        ctx.created_tables = set()
        for rule in self._per_migration:
            raw += [(rule, op, msg) for op, msg in rule.check(ctx)]
        seen: set[Finding] = set()
        for rule, op, msg in raw:
            ig = suppressing(ignores, rule.id, op.line, op.end_line)
            if ig is not None and self.config.honor_ignores:
                ig.used.add(rule.id)
                continue
            hint = rule.hint
            if isinstance(msg, tuple):  # a rule may give a hint that fits this case
                msg, hint = msg
            severity = self.severity(rule)
            small = self._small(rule, op.table)
            if small is not None and severity == "error":
                severity, msg = "warning", f"{msg} ({small})"
            finding = Finding(
                path, op.line, op.column, rule.id, severity, msg, hint, op.table, op.kind, op.name
            )
            if finding not in seen:  # the same finding on one spot (a loop's body) is one
                seen.add(finding)
                out.append(finding)
        if mig.linted_lines is not None:  # ignores in functions not linted are not judged
            ignores = [
                ig for ig in ignores if any(a - 1 <= ig.line <= b for a, b in mig.linted_lines)
            ]
        for ig in ignores:
            if not ig.reason:
                out.append(
                    Finding(
                        path,
                        ig.line,
                        ig.column,
                        "ignore-without-reason",
                        "error",
                        f"ignore[{', '.join(ig.rules)}] has no reason",
                        "write why it is safe after the brackets",
                    )
                )
                continue
            for rid in ig.rules:
                if rid not in ig.used:
                    known = rid in self.rules or rid in META
                    why = "suppresses nothing" if known else "names no known rule"
                    out.append(
                        Finding(
                            path,
                            ig.line,
                            ig.column,
                            "unused-ignore",
                            "warning",
                            f"ignore[{rid}] {why}",
                            "remove it",
                        )
                    )
        return out


#: constraint name -> (table, column) of CHECK (column IS NOT NULL); the validated pairs
Facts = tuple[dict[str, tuple[str, str]], set[tuple[str, str]]]


def _merged(parents: Any) -> Facts:
    checks: dict[str, tuple[str, str]] = {}
    validated: set[tuple[str, str]] = set()
    for c, v in parents:
        checks.update(c)
        validated |= v
    return checks, validated


def _chain_findings(chain: Chain, reported: set[Path]) -> list[Finding]:
    """A revision id declared twice, and revisions in (or after) a cycle: Alembic refuses
    both, so each is an error, naming the files."""
    out = []
    for dup, first in chain.duplicates:
        if dup.path in reported:
            out.append(
                Finding(
                    display(dup.path),
                    1,
                    1,
                    "duplicate-revision",
                    "error",
                    f"revision {dup.revision} is declared here and in {display(first.path)}: "
                    "Alembic refuses a history with a revision id twice",
                    "give one of them a new revision id (and fix its children's down_revision)",
                )
            )
    if chain.cyclic and any(m.path in reported for m in chain.cyclic):
        first = min(chain.cyclic, key=lambda m: str(m.path))
        names = ", ".join(
            f"{m.revision} ({display(m.path)})"
            for m in sorted(chain.cyclic, key=lambda m: str(m.path))[:10]
        )
        more = f" and {len(chain.cyclic) - 10} more" if len(chain.cyclic) > 10 else ""
        out.append(
            Finding(
                display(first.path),
                1,
                1,
                "revision-cycle",
                "error",
                f"these revisions form a cycle (or come after one) through their "
                f"down_revision: {names}{more}; Alembic refuses the history",
                "break the cycle: one of them must name an earlier revision as its parent",
            )
        )
    return out


def _parse_error_severity(config: LintConfig) -> str | None:
    """parse-error is a rule like any other: disabled, or given a severity, in the config."""
    if "parse-error" in config.disable:
        return None
    severity = config.severity.get("parse-error", "error")
    return None if severity == "off" else severity


def lint_paths(paths: list[Path], config: LintConfig | None = None) -> LintResult:
    return Linter(config or LintConfig()).lint(paths)
