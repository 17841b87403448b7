"""require-concurrent-index: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "require-concurrent-i-good"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_account", "orders", ["account_id"], postgresql_concurrently=True)
        op.drop_index("ix_old", table_name="orders", postgresql_concurrently=True)
    op.create_table("fresh", sa.Column("id", sa.BigInteger(), primary_key=True))
    op.create_index("ix_fresh_id", "fresh", ["id"])


def downgrade():
    pass
