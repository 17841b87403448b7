"""truncate: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "truncate-good"
down_revision = None


def upgrade():
    op.execute("DELETE FROM sessions WHERE id < 100")


def downgrade():
    pass
