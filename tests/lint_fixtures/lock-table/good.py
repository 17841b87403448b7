"""lock-table: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "lock-table-good"
down_revision = None


def upgrade():
    op.execute("SELECT 1")


def downgrade():
    pass
