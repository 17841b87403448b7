"""vacuum-full: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "vacuum-full-bad"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("VACUUM FULL orders")


def downgrade():
    pass
