"""reindex-not-concurrent: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "reindex-not-concurre-bad"
down_revision = None


def upgrade():
    op.execute("REINDEX TABLE orders")


def downgrade():
    pass
