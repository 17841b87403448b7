"""`deployer lint stats URL`: a database's table sizes, as the table-stats file the linter
reads (deployer.lint.stats), from a read-only transaction."""

from __future__ import annotations

from typing import Any

from deployer.errors import InputError

#: what `deployer lint stats` reads: every ordinary, partitioned and materialized table
#: outside PostgreSQL's own schemas; reltuples is the planner's estimate (-1: never analyzed)
STATS_QUERY = """
SELECT n.nspname, c.relname, c.reltuples::float8, pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2
"""


def read_database(url: str) -> dict[str, Any]:
    """The table-stats document of the database at ``url``, from a read-only transaction
    (it never writes; a replica serves it)."""
    import time

    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10, autocommit=False) as conn:
            conn.read_only = True
            rows = conn.execute(STATS_QUERY).fetchall()
            conn.rollback()
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot read table sizes: {first}") from None
    tables: dict[str, dict[str, int | None]] = {}
    for schema, name, reltuples, size in rows:
        rows_ = None if reltuples is None or reltuples < 0 else round(reltuples)
        tables[f"{schema}.{name}"] = {"rows": rows_, "bytes": int(size)}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"generated_at": stamp, "tables": tables}
