"""add-column-not-null-without-default: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "add-column-not-null--bad"
down_revision = None


def upgrade():
    op.add_column("accounts", sa.Column("status", sa.Text(), nullable=False))


def downgrade():
    pass
