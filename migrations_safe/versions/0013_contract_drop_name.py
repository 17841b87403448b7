"""Rename, contract: drop the old column once no running release reads it.

rule: drop-column (acknowledged with a reason, as a contract step must be)"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    # deployer: ignore[drop-column] contract: no release since 0011 reads accounts.name
    op.drop_column("accounts", "name")


def downgrade() -> None:
    op.add_column("accounts", sa.Column("name", sa.Text(), nullable=True))
