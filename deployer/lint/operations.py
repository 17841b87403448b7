"""The one model both front ends produce: a migration is a list of operations.

Rules never see Python or SQL syntax, only :class:`Operation` values and the
:class:`Migration` they belong to, so a rule written once covers Alembic and plain SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# operation kinds
CREATE_TABLE = "create_table"
DROP_TABLE = "drop_table"
RENAME_TABLE = "rename_table"
CREATE_INDEX = "create_index"
DROP_INDEX = "drop_index"
ADD_COLUMN = "add_column"
DROP_COLUMN = "drop_column"
RENAME_COLUMN = "rename_column"
ALTER_COLUMN_TYPE = "alter_column_type"
SET_NOT_NULL = "set_not_null"
ADD_CONSTRAINT = "add_constraint"
VALIDATE_CONSTRAINT = "validate_constraint"
UPDATE = "update"
DELETE = "delete"
VACUUM_FULL = "vacuum_full"
CLUSTER = "cluster"
REINDEX = "reindex"
TRUNCATE = "truncate"
LOCK_TABLE = "lock_table"
ENUM_ADD_VALUE = "enum_add_value"
SET_LOCK_TIMEOUT = "set_lock_timeout"
SET_TABLE_PERSISTENCE = "set_table_persistence"
ALTER_OTHER = "alter_other"  # another ALTER TABLE form: a brief ACCESS EXCLUSIVE lock
OTHER = "other"
UNCHECKED_SQL = "unchecked_sql"  # SQL built at run time (an f-string, .format): not read

#: kinds that change the schema (for "backfill in the same transaction as a schema change")
SCHEMA_KINDS = frozenset(
    {
        CREATE_TABLE,
        DROP_TABLE,
        RENAME_TABLE,
        CREATE_INDEX,
        DROP_INDEX,
        ADD_COLUMN,
        DROP_COLUMN,
        RENAME_COLUMN,
        ALTER_COLUMN_TYPE,
        SET_NOT_NULL,
        ADD_CONSTRAINT,
        VALIDATE_CONSTRAINT,
        SET_TABLE_PERSISTENCE,
    }
)

#: kinds that take no lock worth a lock_timeout
LOCK_FREE_KINDS = frozenset({SET_LOCK_TIMEOUT, OTHER, CREATE_TABLE})

VOLATILE_FUNCTIONS = frozenset(
    {
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "clock_timestamp",
        "random",
        "timeofday",
        "nextval",
        "txid_current",
        "statement_timestamp",
    }
)


@dataclass(frozen=True)
class Operation:
    kind: str
    line: int
    column: int = 1
    end_line: int = 0  # last line of the call or statement (0: same as line)
    table: str | None = None
    name: str | None = None  # column, index or constraint name
    in_transaction: bool = True
    concurrently: bool = False
    unique: bool = False
    not_null: bool = False
    has_default: bool = False
    default_volatile: bool = False
    default_text: str = ""
    generated_stored: bool = False
    identity: bool = False  # serial, bigserial, GENERATED ... AS IDENTITY
    constraint: str | None = None  # foreign_key | check | unique | primary_key | exclusion
    not_valid: bool = False
    using_index: bool = False
    check_not_null_of: str | None = None  # CHECK (col IS NOT NULL): the column
    type_from: str | None = None
    type_to: str | None = None
    has_where: bool = True
    if_exists: bool = False  # DROP ... IF EXISTS
    tx: int = 0  # transaction segment: same number and in_transaction = same transaction
    sql: str = ""


@dataclass(eq=False)
class Migration:
    """One migration file: its operations in order, and what is known about it."""

    path: Path
    operations: list[Operation] = field(default_factory=list)
    revision: str | None = None
    down_revision: str | None = None
    #: every down_revision (a merge revision has several)
    parents: tuple[str, ...] = ()
    parse_error: tuple[int, int, str] | None = None  # line, column, message (file unread)
    #: statements that did not parse (the rest of the file was still read)
    statement_errors: list[tuple[int, int, str]] = field(default_factory=list)
    is_migration: bool = True
    linted_lines: list[tuple[int, int]] | None = None  # None: the whole file
