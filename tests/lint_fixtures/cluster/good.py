"""cluster: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "cluster-good"
down_revision = None


def upgrade():
    op.execute("ANALYZE orders")


def downgrade():
    pass
