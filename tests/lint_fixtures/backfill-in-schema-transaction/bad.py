"""backfill-in-schema-transaction: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "backfill-in-schema-t-bad"
down_revision = None


def upgrade():
    op.add_column("accounts", sa.Column("status", sa.Text(), nullable=True))
    op.execute("UPDATE accounts SET status = 'active' WHERE status IS NULL")


def downgrade():
    pass
