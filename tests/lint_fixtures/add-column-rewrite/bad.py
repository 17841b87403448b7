"""add-column-rewrite: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "add-column-rewrite-bad"
down_revision = None


def upgrade():
    op.add_column(
        "orders", sa.Column("public_id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"))
    )


def downgrade():
    pass
