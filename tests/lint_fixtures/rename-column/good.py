"""rename-column: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "rename-column-good"
down_revision = None


def upgrade():
    op.add_column("accounts", sa.Column("display_name", sa.Text(), nullable=True))


def downgrade():
    pass
