"""constraint-without-not-valid: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "constraint-without-n-bad"
down_revision = None


def upgrade():
    op.create_foreign_key("fk_o_a", "orders", "accounts", ["account_id"], ["id"])
    op.create_check_constraint("ck_total", "orders", "total >= 0")


def downgrade():
    pass
