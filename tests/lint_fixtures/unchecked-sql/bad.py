"""unchecked-sql: bad.py (SQL built at run time: nothing in it can be checked)"""

import sqlalchemy as sa
from alembic import op

revision = "unchecked-sql-bad"
down_revision = None


def upgrade():
    op.execute("SET lock_timeout = '2s'")
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT relname FROM pg_class WHERE relname LIKE 'orders%'"))
    for (table,) in rows:  # names known only at run time
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 90)")


def downgrade():
    pass
