"""add-column-not-null-without-default: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "add-column-not-null--good"
down_revision = None


def upgrade():
    op.add_column(
        "accounts", sa.Column("status", sa.Text(), nullable=False, server_default="active")
    )
    op.add_column("accounts", sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    pass
