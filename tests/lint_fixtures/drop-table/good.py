"""drop-table: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "drop-table-good"
down_revision = None


def upgrade():
    op.create_table("tmp", sa.Column("id", sa.Integer()))
    op.drop_table("tmp")


def downgrade():
    pass
