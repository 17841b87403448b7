"""enum-add-value-in-transaction: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "enum-add-value-in-tr-good"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE order_state ADD VALUE 'refunded'")


def downgrade():
    pass
