"""Production context for the linter: how big each table is.

A table-stats file is JSON, committed beside the migrations and refreshed by a CI job from a
replica (`deployer lint stats URL > table-stats.json`):

    {"tables": {"persona": {"rows": 200, "bytes": 65536}, "billing.invoices": {"rows": 9e6}}}

A name is ``table`` or ``schema.table``; ``bytes`` is optional; ``rows`` may be null (never
analyzed: unknown). With it, a finding whose hazard is the *duration* of a scan, rewrite or
index build (the rule's metadata says which) on a table below ``small_table_rows`` is a
warning that names the size: the lock it takes is brief. Findings that break the old color
(drops, renames) and the lock-queue hazard (no lock_timeout: even a brief lock waits behind a
long transaction, and everything queues behind it) keep their severity whatever the size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import InputError

#: default for ``small_table_rows``: below this many rows a scan, rewrite or index build takes
#: well under a second on ordinary hardware (a 10,000-row table's index builds in ~10 ms;
#: CREATE INDEX on 100,000 rows took 60-90 ms on the test bed's PostgreSQL)
SMALL_TABLE_ROWS = 10_000
#: the most `small_table_rows` may be set to
MAX_SMALL_TABLE_ROWS = 100_000


@dataclass
class TableStats:
    #: name as written (``table`` or ``schema.table``) -> (rows or None, bytes or None)
    tables: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    source: str = ""

    def rows(self, table: str | None) -> int | None:
        """Rows of ``table`` (as a migration names it: ``t`` or ``s.t``), or None when it is
        not known. A bare name matches ``t``, else ``public.t``, else the one schema that has
        it (several: the largest, so a size never makes a finding milder than it is)."""
        if not table:
            return None
        name = table.strip('"')
        for key in (name, f"public.{name}"):
            if key in self.tables:
                return self.tables[key][0]
        if "." in name:  # schema.table not listed: a bare entry of the same table
            bare = name.rsplit(".", 1)[1]
            if bare in self.tables:
                return self.tables[bare][0]
            return None
        found = [r for k, (r, _) in self.tables.items() if k.rsplit(".", 1)[-1] == name]
        if not found or any(r is None for r in found):
            return None
        return max(r for r in found if r is not None)


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where}: expected a number of rows or bytes, got {value!r}")
    if value < 0:
        return None  # PostgreSQL's reltuples is -1 for a table never analyzed: unknown
    return int(value)


def load(path: Path) -> TableStats:
    """Read a table-stats file; a bad one is one clear error naming the file and key."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read table stats: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a table-stats JSON file: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise InputError(f'{path}: expected {{"tables": {{"NAME": {{"rows": N}}}}}}')
    unknown = sorted(set(doc) - {"tables", "generated_at", "source"})
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r} (known: tables, generated_at)")
    stats = TableStats(source=str(path))
    for name, entry in doc["tables"].items():
        where = f"{path}: tables.{name}"
        if not isinstance(name, str) or not name or len(name) > 200:
            raise InputError(f"{path}: a table name must be a non-empty string")
        if not isinstance(entry, dict) or "rows" not in entry:
            raise InputError(f'{where}: expected {{"rows": N, "bytes": B}}')
        extra = sorted(set(entry) - {"rows", "bytes"})
        if extra:
            raise InputError(f"{where}: unknown key {extra[0]!r} (known: rows, bytes)")
        stats.tables[name] = (
            _count(entry["rows"], f"{where}.rows"),
            _count(entry.get("bytes"), f"{where}.bytes"),
        )
    return stats
