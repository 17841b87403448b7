"""validate-in-same-transaction: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "validate-in-same-tra-good"
down_revision = None


def upgrade():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT ck_total")


def downgrade():
    pass
