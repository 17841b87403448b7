"""vacuum-full: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "vacuum-full-good"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("VACUUM ANALYZE orders")


def downgrade():
    pass
