"""concurrently-in-transaction: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "concurrently-in-tran-bad"
down_revision = None


def upgrade():
    op.create_index("ix_a", "t", ["a"], postgresql_concurrently=True)


def downgrade():
    pass
