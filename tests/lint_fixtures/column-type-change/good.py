"""column-type-change: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "column-type-change-good"
down_revision = None


def upgrade():
    op.alter_column("users", "name", type_=sa.String(200), existing_type=sa.String(100))
    op.alter_column("users", "bio", type_=sa.Text(), existing_type=sa.String(100))


def downgrade():
    pass
