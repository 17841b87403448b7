"""unbatched-backfill: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "unbatched-backfill-good"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("UPDATE accounts SET status = 'a' WHERE id < 1000")


def downgrade():
    pass
