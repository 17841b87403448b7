"""rename-table: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "rename-table-good"
down_revision = None


def upgrade():
    op.create_table("customers", sa.Column("id", sa.BigInteger()))


def downgrade():
    pass
