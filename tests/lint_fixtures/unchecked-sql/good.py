"""unchecked-sql: good.py (a module constant is resolved; Core DML is read as what it is)"""

import sqlalchemy as sa
from alembic import op

revision = "unchecked-sql-good"
down_revision = None

SET_TIMEOUT = "SET lock_timeout = '2s'"
accounts = sa.table("accounts", sa.column("id"), sa.column("plan"))


def upgrade():
    op.execute(SET_TIMEOUT)
    with op.get_context().autocommit_block():
        op.execute(accounts.update().where(accounts.c.id < 1000).values(plan="free"))


def downgrade():
    pass
