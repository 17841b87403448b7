"""The files a lint run reads: which (folders walked, SQLite histories and excluded globs
skipped), and each read as an Alembic script or SQL."""

from __future__ import annotations

import configparser
import fnmatch
import os
from pathlib import Path

from deployer.errors import InputError
from deployer.lint.alembic import read_alembic
from deployer.lint.config import LintConfig
from deployer.lint.operations import Migration
from deployer.lint.sql import SqlError, sql_operations


def display(path: Path) -> str:
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
            found: list[tuple[str, Path]] = []
            # os.walk and plain strings: 10,000 revisions in one folder are read in well
            # under a second (Path.rglob and relative_to per file took seconds)
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
                folder = Path(dirpath)
                below = os.path.relpath(dirpath, p).replace(os.sep, "/")
                for name in filenames:
                    if name.startswith(".") or not name.endswith((".py", ".sql")):
                        continue
                    rel = name if below == "." else f"{below}/{name}"
                    if any(
                        fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g.rstrip("/") + "/*")
                        for g in exclude or []
                    ):
                        continue
                    f = folder / name
                    if not f.is_file():
                        continue
                    if name.endswith(".py") and _sqlite_history(folder, sqlite):
                        if skipped is not None:
                            skipped[display(folder)] = "an SQLite history"
                        continue
                    found.append((rel, f))
            files += [f for _, f in sorted(found, key=lambda x: x[0].split("/"))]
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
