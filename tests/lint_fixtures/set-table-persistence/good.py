"""set-table-persistence: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "set-table-persistenc-good"
down_revision = None


def upgrade():
    op.execute("CREATE UNLOGGED TABLE e2 (id int)")


def downgrade():
    pass
