"""The release's lint gate: lint the revisions between the database's and head."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import AbortedError
from deployer.lint.config import LintConfig, load_config
from deployer.lint.files import default_paths
from deployer.lint.runner import Finding, Linter

CONTRACT_RULES = frozenset({"drop-column", "drop-table", "rename-column", "rename-table"})
EXPAND_CONTRACT = (
    "The old color keeps serving until the switch, so a release may only expand the schema "
    "(add tables, nullable columns, indexes concurrently). Contract (drop, rename) in a later "
    "release, once no running version uses the old shape, and acknowledge it in the playbook: "
    "migrate.acknowledge: [{revision: ..., rule: ..., reason: ...}]."
)


@dataclass
class GateResult:
    current: str | None
    pending: list[str]
    blocking: list[tuple[str, Finding]] = field(default_factory=list)
    acknowledged: list[dict[str, str]] = field(default_factory=list)
    warnings: int = 0
    #: the pending migrations as read, and every finding (for `migrate.prove`)
    migrations: list[Any] = field(default_factory=list)
    result: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "pending": self.pending,
            "errors": len(self.blocking),
            "warnings": self.warnings,
            "acknowledged": self.acknowledged,
            "blocking": [{"revision": rev, **f.to_dict()} for rev, f in self.blocking],
        }

    def message(self) -> str:
        lines = [
            f"{len(self.blocking)} unacknowledged lint error(s) in pending migrations: "
            + "; ".join(
                f"{rev} {Path(f.path).name}:{f.line} {f.rule}: {f.message}"
                for rev, f in self.blocking
            )
        ]
        if any(f.rule in CONTRACT_RULES for _, f in self.blocking):
            lines.append(EXPAND_CONTRACT)
        return " ".join(lines)


def versions_folder(scripts: Path) -> Path:
    found = default_paths(scripts)
    return found[0] if found else scripts


def lint_pending(scripts: Path, current: str | None, acknowledgements: list[Any]) -> GateResult:
    """Lint what `alembic upgrade head` would apply; split findings into blocking and
    acknowledged (each acknowledgement names a revision, a rule and a reason)."""
    config = load_config(scripts)
    config.start_after = current
    config.include_downgrade = False
    folder = versions_folder(scripts)
    result = Linter(config).lint([folder])
    if current and current not in result.revisions:
        raise AbortedError(
            f"the database is at revision {current}, which {folder} does not "
            "have: is this the right version?"
        )
    rev_of = {m.path.resolve(): m.revision or "?" for m in result.migrations}
    gate = GateResult(current, [m.revision or "?" for m in result.migrations])
    gate.migrations, gate.result = list(result.migrations), result
    acks = {(a.revision, a.rule): a.reason for a in acknowledgements}
    for f in result.findings:
        if f.severity != "error":
            gate.warnings += 1
            continue
        rev = rev_of.get(Path(f.path).resolve(), "?")
        reason = acks.get((rev, f.rule))
        if reason:
            gate.acknowledged.append({"revision": rev, "rule": f.rule, "reason": reason})
        else:
            gate.blocking.append((rev, f))
    return gate


@dataclass
class Ahead:
    """Where the database stands against an older version's revision."""

    database: str | None
    version_revision: str | None
    revisions: list[str] = field(default_factory=list)
    contract: list[dict[str, str]] = field(default_factory=list)
    unknown: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "version_revision": self.version_revision,
            "ahead": self.revisions,
            "contract": self.contract,
            "unknown": self.unknown or None,
        }


def revisions_ahead(scripts: Path, database: str | None, older: str | None) -> Ahead:
    """The revisions applied after ``older`` up to ``database`` (from the local scripts, which
    hold the newer history), and those among them that contract the schema (drop, rename):
    the older version may not work against those."""
    out = Ahead(database, older)
    if database == older:
        return out
    # the contract rules only, whatever the project's config, and acknowledged or not
    config = LintConfig(enable=set(CONTRACT_RULES), start_after=older, honor_ignores=False)
    folder = versions_folder(scripts)
    result = Linter(config).lint([folder])
    if database is not None and database not in result.revisions:
        out.unknown = f"the database's revision {database} is not in {folder}"
        return out
    if older is not None and older not in result.revisions:
        out.unknown = f"the version's revision {older} is not in {folder}"
        return out
    rev_of = {}
    for m in result.migrations:
        out.revisions.append(m.revision or "?")
        rev_of[m.path.resolve()] = m.revision or "?"
        if m.revision == database:
            break
    for f in result.findings:
        rev = rev_of.get(Path(f.path).resolve())
        if rev is not None and f.rule in CONTRACT_RULES:
            out.contract.append({"revision": rev, "rule": f.rule, "message": f.message})
    return out
