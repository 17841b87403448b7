"""set-not-null: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "set-not-null-good"
down_revision = None


def upgrade():
    op.alter_column("accounts", "status", nullable=True)


def downgrade():
    pass
