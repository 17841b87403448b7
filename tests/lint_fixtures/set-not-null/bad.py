"""set-not-null: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "set-not-null-bad"
down_revision = None


def upgrade():
    op.alter_column("accounts", "status", nullable=False)


def downgrade():
    pass
