"""Rename, migrate: copy the old column in batches.

rule: backfill-in-schema-transaction"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        conn = op.get_bind()
        while conn.execute(
            sa.text(
                "UPDATE accounts SET display_name = name WHERE id IN "
                "(SELECT id FROM accounts WHERE display_name IS NULL AND name IS NOT NULL"
                " ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED)"
            )
        ).rowcount:
            pass


def downgrade() -> None:
    pass
