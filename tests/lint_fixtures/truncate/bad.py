"""truncate: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "truncate-bad"
down_revision = None


def upgrade():
    op.execute("TRUNCATE sessions")


def downgrade():
    pass
