"""unchecked-sql: bad.py (SQL built at run time: nothing in it can be checked)"""

from alembic import op

revision = "unchecked-sql-bad"
down_revision = None

TABLES = ["orders", "accounts"]


def upgrade():
    op.execute("SET lock_timeout = '2s'")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 90)")


def downgrade():
    pass
