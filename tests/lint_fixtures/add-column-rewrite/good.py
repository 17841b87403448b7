"""add-column-rewrite: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "add-column-rewrite-good"
down_revision = None


def upgrade():
    op.add_column("orders", sa.Column("created", sa.DateTime(), server_default=sa.text("now()")))
    op.add_column("orders", sa.Column("flag", sa.Boolean(), server_default=sa.false()))


def downgrade():
    pass
