"""column-type-change: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "column-type-change-bad"
down_revision = None


def upgrade():
    op.alter_column("orders", "total", type_=sa.Numeric(12, 2), existing_type=sa.Integer())
    op.alter_column("users", "name", type_=sa.String(50), existing_type=sa.String(100))


def downgrade():
    pass
