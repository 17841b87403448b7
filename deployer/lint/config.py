"""`[tool.deployer.lint]` in pyproject.toml, or `[lint]` in deployer.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import InputError
from deployer.lint.stats import MAX_SMALL_TABLE_ROWS, SMALL_TABLE_ROWS

KEYS = {
    "enable",
    "disable",
    "severity",
    "postgres_version",
    "paths",
    "exclude",
    "start_after",
    "lock_timeout_in_env",
    "sql_in_transaction",
    "include_downgrade",
    "table_stats",
    "small_table_rows",
}


@dataclass
class LintConfig:
    enable: set[str] | None = None  # None: every rule
    disable: set[str] = field(default_factory=set)
    severity: dict[str, str] = field(default_factory=dict)
    postgres_version: int = 14
    paths: list[str] = field(default_factory=list)
    #: globs of files or folders not to lint when a folder is walked (`sqlite/*`)
    exclude: list[str] = field(default_factory=list)
    start_after: str | None = None
    lock_timeout_in_env: bool = False
    sql_in_transaction: bool = False
    include_downgrade: bool = False
    #: a table-stats file (deployer.lint.stats): findings whose hazard is a scan's or a
    #: build's duration are warnings on tables below small_table_rows
    table_stats: Path | None = None
    small_table_rows: int = SMALL_TABLE_ROWS
    #: False: inline ignores suppress nothing (a rollback asks what *did* contract the schema)
    honor_ignores: bool = True
    source: Path | None = None

    def validate(self, known: set[str]) -> None:
        where = f"{self.source}: " if self.source else ""
        for name in sorted((self.enable or set()) | self.disable | set(self.severity)):
            if name not in known:
                raise InputError(f"{where}unknown lint rule {name!r} (see deployer lint --list)")
        for rule_id, sev in self.severity.items():
            if sev not in ("error", "warning", "off"):
                raise InputError(f"{where}severity.{rule_id}: use error, warning or off")
        if not 1 <= self.small_table_rows <= MAX_SMALL_TABLE_ROWS:
            raise InputError(
                f"{where}small_table_rows: {self.small_table_rows} is not between 1 and "
                f"{MAX_SMALL_TABLE_ROWS:,}"
            )
        if not 9 <= self.postgres_version <= 30:
            raise InputError(
                f"{where}postgres_version: {self.postgres_version} is not a "
                "PostgreSQL major version"
            )


def _table(path: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read lint config: {exc}") from None
    if path.name == "pyproject.toml":
        section = data.get("tool", {}).get("deployer", {}).get("lint")
    else:
        section = data.get("lint")
    return section if isinstance(section, dict) else None


def find_config(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest deployer.toml or pyproject.toml (with a lint table) from ``start`` up."""
    here = start if start.is_dir() else start.parent
    for folder in (here.resolve(), *here.resolve().parents):
        for name in ("deployer.toml", "pyproject.toml"):
            candidate = folder / name
            if candidate.is_file() and (table := _table(candidate)) is not None:
                return candidate, table
    return None


def load_config(start: Path, explicit: Path | None = None) -> LintConfig:
    found = None
    if explicit is not None:
        table = _table(explicit)
        found = (explicit, table or {})
    else:
        found = find_config(start)
    if found is None:
        return LintConfig()
    path, table = found
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise InputError(
            f"{path}: unknown lint setting {unknown[0]!r} (known: {', '.join(sorted(KEYS))})"
        )
    try:
        return LintConfig(
            enable=set(table["enable"]) if "enable" in table else None,
            disable=set(table.get("disable", [])),
            severity={str(k): str(v) for k, v in table.get("severity", {}).items()},
            postgres_version=int(table.get("postgres_version", 14)),
            paths=[str(p) for p in table.get("paths", [])],
            exclude=[str(p) for p in table.get("exclude", [])],
            start_after=table.get("start_after"),
            lock_timeout_in_env=bool(table.get("lock_timeout_in_env", False)),
            sql_in_transaction=bool(table.get("sql_in_transaction", False)),
            include_downgrade=bool(table.get("include_downgrade", False)),
            table_stats=path.parent / str(table["table_stats"]) if "table_stats" in table else None,
            small_table_rows=int(table.get("small_table_rows", SMALL_TABLE_ROWS)),
            source=path,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad lint setting: {exc}") from None
