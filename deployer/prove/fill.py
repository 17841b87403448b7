"""Synthetic rows for the tables a revision touches, so that scans, rewrites and index
builds have something to do (and a NOT NULL without a default fails as it would in
production).

Each column gets a value from its type (numbers and text from the row number, so unique
columns stay unique; the first label of an enum; now() minus the row number for times);
a column with a default or an identity is left to it; a nullable column of a type deployer
does not know is NULL; a single-column foreign key takes the referenced table's keys in turn
(that table is filled first). A table it cannot fill (a CHECK the values break, a type it
cannot make) is reported and left empty: locks and rewrites are still measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '', t.typcategory,
       coalesce(bt.typcategory, t.typcategory), t.typtype, a.atttypid::int8,
       (SELECT rc.relname || '.' || ra.attname FROM pg_constraint f
          JOIN pg_class rc ON rc.oid = f.confrelid
          JOIN pg_attribute ra ON ra.attrelid = f.confrelid AND ra.attnum = f.confkey[1]
         WHERE f.conrelid = a.attrelid AND f.contype = 'f' AND f.conkey = ARRAY[a.attnum]
         LIMIT 1),
       (SELECT n.nspname FROM pg_constraint f JOIN pg_class rc ON rc.oid = f.confrelid
          JOIN pg_namespace n ON n.oid = rc.relnamespace
         WHERE f.conrelid = a.attrelid AND f.contype = 'f' AND f.conkey = ARRAY[a.attnum]
         LIMIT 1)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def _value(sql: Any, type_text: str, category: str, typtype: str, type_oid: int) -> Any:
    cast = sql.SQL(type_text)
    if typtype == "e":
        return sql.SQL(
            "(SELECT enumlabel FROM pg_enum WHERE enumtypid = {} ORDER BY enumsortorder "
            "LIMIT 1)::{}"
        ).format(sql.Literal(type_oid), cast)
    by_category = {
        "N": "(g % 30000)::{}" if type_text == "smallint" else "g::{}",
        "S": "g::text::{}",
        "B": "(g % 2 = 0)::{}",
        "D": "(now() - g * interval '1 second')::{}",
        "T": "(g * interval '1 second')::{}",
        "I": "('10.0.0.0'::inet + g)::{}",
        "A": "'{{}}'::{}",
    }
    if category in by_category:
        return sql.SQL(by_category[category]).format(cast)
    if type_text in ("uuid",):
        return sql.SQL("md5(g::text)::uuid")
    if type_text in ("json", "jsonb"):
        return sql.SQL("'{{}}'::{}").format(cast)
    if type_text == "bytea":
        return sql.SQL("convert_to(g::text, 'UTF8')")
    return None


def fill(
    conn: Any,
    psycopg: Any,
    schema: str,
    table: str,
    rows: int | Callable[[str, str], int],
    done: dict[str, int],
    problems: list[str],
    depth: int = 0,
) -> None:
    """Insert ``rows`` rows into an empty ``schema.table`` (committed); ``rows`` may be a
    function of (schema, table): each table its own count (a table-stats file's)."""
    sql = psycopg.sql
    key = f"{schema}.{table}"
    if key in done or depth > 5:
        return
    count = rows
    rows = count(schema, table) if callable(count) else count
    done[key] = 0
    name = sql.Identifier(schema, table)
    if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(name)).fetchone()[0]:
        return  # it has rows already (the schema or an earlier revision put them there)
    columns: list[Any] = []
    values: list[Any] = []
    joins: list[Any] = []
    for (
        col,
        type_text,
        not_null,
        defaulted,
        cat,
        base_cat,
        typtype,
        type_oid,
        ref,
        ref_schema,
    ) in conn.execute(COLUMNS_SQL, (sql.Identifier(schema, table).as_string(conn),)):
        if defaulted:
            continue
        if ref:
            if not not_null:
                continue
            ref_table, ref_col = ref.split(".", 1)
            fill(conn, psycopg, ref_schema, ref_table, count, done, problems, depth + 1)
            alias = sql.Identifier(f"r{len(joins)}")
            joins.append(
                sql.SQL(
                    " JOIN (SELECT {c} AS v, row_number() OVER () AS n, count(*) OVER () AS t "
                    "FROM {rt}) {a} ON {a}.n = 1 + (g % {a}.t)"
                ).format(
                    c=sql.Identifier(ref_col),
                    rt=sql.Identifier(ref_schema, ref_table),
                    a=alias,
                )
            )
            columns.append(sql.Identifier(col))
            values.append(sql.SQL("{}.v").format(alias))
            continue
        value = _value(sql, type_text, base_cat if typtype == "d" else cat, typtype, type_oid)
        if value is None:
            if not_null:
                problems.append(f"{table}: no value for column {col} ({type_text})")
                return
            continue
        columns.append(sql.Identifier(col))
        values.append(value)
    insert = "INSERT INTO {t} ({c}) SELECT {v} FROM generate_series(1, {n}) g{j}"
    statement = sql.SQL(insert).format(
        t=name,
        c=sql.SQL(", ").join(columns),
        v=sql.SQL(", ").join(values),
        n=sql.Literal(rows),
        j=sql.SQL("").join(joins),
    )
    if not columns:
        statement = sql.SQL("INSERT INTO {t} SELECT FROM generate_series(1, {n})").format(
            t=name, n=sql.Literal(rows)
        )
    try:
        with conn.transaction():
            cur = conn.execute(statement)
            done[key] = cur.rowcount
        conn.execute(sql.SQL("ANALYZE {}").format(name))
    except psycopg.Error as exc:
        problems.append(f"{table}: {str(exc).strip().splitlines()[0]}")
