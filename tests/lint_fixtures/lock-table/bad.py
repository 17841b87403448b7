"""lock-table: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "lock-table-bad"
down_revision = None


def upgrade():
    op.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")


def downgrade():
    pass
