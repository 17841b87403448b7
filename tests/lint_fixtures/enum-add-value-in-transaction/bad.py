"""enum-add-value-in-transaction: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "enum-add-value-in-tr-bad"
down_revision = None


def upgrade():
    op.execute("ALTER TYPE order_state ADD VALUE 'refunded'")


def downgrade():
    pass
