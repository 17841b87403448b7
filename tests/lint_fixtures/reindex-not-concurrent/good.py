"""reindex-not-concurrent: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "reindex-not-concurre-good"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("REINDEX TABLE CONCURRENTLY orders")


def downgrade():
    pass
