"""missing-lock-timeout: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "missing-lock-timeout-bad"
down_revision = None


def upgrade():
    op.add_column("accounts", sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    pass
