"""Lint files: read them (Alembic or SQL), order each folder's revisions as a chain, run the
rules with what earlier revisions established, apply inline ignores, report findings."""

from __future__ import annotations

import configparser
import fnmatch
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import InputError
from deployer.lint import operations as k
from deployer.lint.alembic import read_alembic
from deployer.lint.config import LintConfig
from deployer.lint.operations import Migration, Operation
from deployer.lint.rules import Context, Rule, load_rules
from deployer.lint.sql import SqlError, sql_operations
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def default_paths(cwd: Path) -> list[Path]:
    """The versions folder of the alembic.ini in ``cwd``, if there is one."""
    ini = cwd / "alembic.ini"
    if not ini.is_file():
        return []
    parser = configparser.ConfigParser(defaults={"here": str(cwd)})
    parser.read(ini)
    location = parser.get("alembic", "script_location", fallback=None)
    if not location:
        return []
    folder = Path(location.replace("%(here)s", str(cwd)))
    folder = folder if folder.is_absolute() else cwd / folder
    return [folder / "versions" if (folder / "versions").is_dir() else folder]


def _sqlite_history(folder: Path, cache: dict[Path, bool]) -> bool:
    """A versions folder that migrates SQLite, not PostgreSQL: a folder named for it
    (``versions/sqlite``), or an env.py / alembic.ini beside it that names sqlite and never
    postgres."""
    if folder not in cache:
        named = "sqlite" in folder.name.lower()
        texts = []
        for f in (
            folder.parent / "env.py",
            folder.parent / "alembic.ini",
            folder.parent.parent / "alembic.ini",
        ):
            try:
                texts.append(f.read_text(encoding="utf-8", errors="replace").lower())
            except OSError:
                continue
        text = "\n".join(texts)
        cache[folder] = named or ("sqlite" in text and "postgres" not in text)
    return cache[folder]


def collect(
    paths: list[Path], exclude: list[str] | None = None, skipped: dict[str, str] | None = None
) -> list[Path]:
    """The files to lint. Walking a folder skips ``exclude`` globs (matched against the path
    below the folder) and SQLite histories (named in ``skipped``); a file given by name is
    always linted."""
    files: list[Path] = []
    sqlite: dict[Path, bool] = {}
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                parts = f.relative_to(p).parts
                if (
                    f.suffix not in (".py", ".sql")
                    or not f.is_file()
                    or any(x.startswith(".") or x == "__pycache__" for x in parts)
                ):
                    continue
                rel = f.relative_to(p).as_posix()
                if any(
                    fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g.rstrip("/") + "/*")
                    for g in exclude or []
                ):
                    continue
                if f.suffix == ".py" and _sqlite_history(f.parent, sqlite):
                    if skipped is not None:
                        skipped[_display(f.parent)] = "an SQLite history"
                    continue
                files.append(f)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return list(dict.fromkeys(files))


def read(path: Path, config: LintConfig) -> tuple[Migration, str]:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        mig = Migration(path, parse_error=(1, 1, f"cannot read: {exc}"))
        return mig, ""
    if path.suffix == ".py":
        return read_alembic(path, source, include_downgrade=config.include_downgrade), source
    mig = Migration(path)
    problems: list[SqlError] = []
    mig.operations, _ = sql_operations(
        source, in_transaction=config.sql_in_transaction, problems=problems
    )
    mig.statement_errors = [(p.line, p.column, f"SQL does not parse: {p}") for p in problems]
    return mig, source


def chain_order(migs: list[Migration]) -> list[Migration]:
    """Alembic revisions in chain order (base first); anything else by file name."""
    by_rev = {m.revision: m for m in migs if m.revision}
    children: dict[str | None, list[Migration]] = {}
    for m in migs:
        if m.revision:
            parent = m.down_revision if m.down_revision in by_rev else None
            children.setdefault(parent, []).append(m)
    ordered: list[Migration] = []
    queue = sorted(children.get(None, []), key=lambda m: str(m.path))
    while queue:
        m = queue.pop(0)
        ordered.append(m)
        queue = sorted(children.get(m.revision, []), key=lambda x: str(x.path)) + queue
    placed = {id(m) for m in ordered}
    rest = sorted((m for m in migs if id(m) not in placed), key=lambda m: str(m.path))
    return ordered + rest


def skipped_by_start_after(migs: list[Migration], start_after: str | None) -> set[str]:
    """``start_after`` and every revision before it."""
    if not start_after:
        return set()
    by_rev = {m.revision: m for m in migs if m.revision}
    skip: set[str] = set()
    rev: str | None = start_after
    while rev and rev in by_rev and rev not in skip:
        skip.add(rev)
        rev = by_rev[rev].down_revision
    return skip


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
        #: (rule, its check) per scope, split once: every operation meets every rule
        self._per_op = [(r, r.check) for r in self.active if r.scope == "operation"]
        self._per_migration = [r for r in self.active if r.scope == "migration"]

    def severity(self, rule: Rule) -> str:
        return self.config.severity.get(rule.id, rule.severity)

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
            migs = chain_order([m for _, m, _ in group if m.is_migration])
            skip = skipped_by_start_after(migs, self.config.start_after)
            checks: dict[str, tuple[str, str]] = {}  # constraint -> (table, column)
            validated: set[tuple[str, str]] = set()
            for mig in migs:
                if mig.revision in skip or mig.path not in reported:
                    self._learn(mig, checks, validated)
                    continue
                linted.append(mig)
                env_lt = self.config.lock_timeout_in_env or _env_sets_lock_timeout(
                    folder, env_cache
                )
                findings += self._lint_one(mig, sources[mig.path], set(validated), env_lt)
                self._learn(mig, checks, validated)
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
        path = _display(mig.path)
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
        for rule, op, msg in raw:
            ig = suppressing(ignores, rule.id, op.line, op.end_line)
            if ig is not None and self.config.honor_ignores:
                ig.used.add(rule.id)
                continue
            hint = rule.hint
            if isinstance(msg, tuple):  # a rule may give a hint that fits this case
                msg, hint = msg
            out.append(
                Finding(path, op.line, op.column, rule.id, self.severity(rule), msg, hint, op.table)
            )
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


def _parse_error_severity(config: LintConfig) -> str | None:
    """parse-error is a rule like any other: disabled, or given a severity, in the config."""
    if "parse-error" in config.disable:
        return None
    severity = config.severity.get("parse-error", "error")
    return None if severity == "off" else severity


def lint_paths(paths: list[Path], config: LintConfig | None = None) -> LintResult:
    return Linter(config or LintConfig()).lint(paths)
