"""set-table-persistence: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "set-table-persistenc-bad"
down_revision = None


def upgrade():
    op.execute("ALTER TABLE events SET UNLOGGED")


def downgrade():
    pass
