"""validate-in-same-transaction: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "validate-in-same-tra-bad"
down_revision = None


def upgrade():
    op.create_check_constraint("ck_total", "orders", "total >= 0", postgresql_not_valid=True)
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT ck_total")


def downgrade():
    pass
