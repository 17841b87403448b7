"""constraint-without-not-valid: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "constraint-without-n-good"
down_revision = None


def upgrade():
    op.create_foreign_key(
        "fk_o_a", "orders", "accounts", ["account_id"], ["id"], postgresql_not_valid=True
    )


def downgrade():
    pass
