"""drop-column: good.py"""

import sqlalchemy as sa
from alembic import op

revision = "drop-column-good"
down_revision = None


def upgrade():
    op.drop_column(
        "accounts", "name"
    )  # deployer: ignore[drop-column] unused since release 2026.11.3


def downgrade():
    pass
