"""unique-constraint-builds-index: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "unique-constraint-bu-good"
down_revision = None


def upgrade():
    op.execute("ALTER TABLE users ADD CONSTRAINT uq_email UNIQUE USING INDEX ux_email")


def downgrade():
    pass
