"""missing-lock-timeout: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "missing-lock-timeout-good"
down_revision = None


def upgrade():
    op.execute("SET lock_timeout = '2s'")
    op.add_column("accounts", sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    pass
