"""Expand: a new nullable column with no default (no rewrite, no scan).

rule: add-column-not-null-without-default, add-column-rewrite"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("status", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "status")  # deployer: ignore[drop-column] downgrade
