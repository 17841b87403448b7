"""Rename, expand: add the new column (the app writes both names meanwhile).

rule: rename-column"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("display_name", sa.Text(), nullable=True))
    op.add_column("accounts", sa.Column("note", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "note")  # deployer: ignore[drop-column] downgrade
    op.drop_column("accounts", "display_name")  # deployer: ignore[drop-column] downgrade
