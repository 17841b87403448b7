"""drop-column: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "drop-column-bad"
down_revision = None


def upgrade():
    op.drop_column("accounts", "name")


def downgrade():
    pass
