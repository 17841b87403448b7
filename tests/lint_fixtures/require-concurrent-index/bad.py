"""require-concurrent-index: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "require-concurrent-i-bad"
down_revision = None


def upgrade():
    op.create_index("ix_orders_account", "orders", ["account_id"])
    op.create_index("ux_users_email", "users", ["email"], unique=True)
    op.drop_index("ix_old", table_name="orders")


def downgrade():
    pass
