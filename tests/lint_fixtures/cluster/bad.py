"""cluster: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "cluster-bad"
down_revision = None


def upgrade():
    op.execute("CLUSTER orders USING ix_orders_account")


def downgrade():
    pass
