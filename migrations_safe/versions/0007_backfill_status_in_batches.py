"""Backfill in batches of 500, each committed alone, outside any schema transaction.

rule: backfill-in-schema-transaction, unbatched-backfill"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        conn = op.get_bind()
        while conn.execute(
            sa.text(
                "UPDATE accounts SET status = 'active' WHERE id IN "
                "(SELECT id FROM accounts WHERE status IS NULL"
                " ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED)"
            )
        ).rowcount:
            pass


def downgrade() -> None:
    pass
