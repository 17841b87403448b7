"""drop-table: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "drop-table-bad"
down_revision = None


def upgrade():
    op.drop_table("legacy")


def downgrade():
    pass
