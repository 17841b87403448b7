"""rename-column: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "rename-column-bad"
down_revision = None


def upgrade():
    op.alter_column("accounts", "name", new_column_name="display_name")


def downgrade():
    pass
