"""unique-constraint-builds-index: bad.py"""

import sqlalchemy as sa
from alembic import op

revision = "unique-constraint-bu-bad"
down_revision = None


def upgrade():
    op.create_unique_constraint("uq_email", "users", ["email"])


def downgrade():
    pass
