"""backfill-in-schema-transaction: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "backfill-in-schema-t-good"
down_revision = None


def upgrade():
    op.add_column("accounts", sa.Column("status", sa.Text(), nullable=True))
    with op.get_context().autocommit_block():
        conn = op.get_bind()
        while conn.execute(
            sa.text(
                "UPDATE accounts SET status = 'a' WHERE id IN (SELECT id FROM accounts WHERE status IS NULL LIMIT 1000)"
            )
        ).rowcount:
            pass


def downgrade():
    pass
