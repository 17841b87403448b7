"""unbatched-backfill: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "unbatched-backfill-bad"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("UPDATE accounts SET status = 'active'")


def downgrade():
    pass
