"""concurrently-in-transaction: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "concurrently-in-tran-good"
down_revision = None


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_a", "t", ["a"], postgresql_concurrently=True)


def downgrade():
    pass
