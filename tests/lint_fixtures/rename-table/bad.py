"""rename-table: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "rename-table-bad"
down_revision = None


def upgrade():
    op.rename_table("accounts", "customers")


def downgrade():
    pass
