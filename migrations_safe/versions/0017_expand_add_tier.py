"""Expand: a nullable column the next release writes (the old one ignores it).

With `migrate.contract: deferred`, a release that brings 0017 and 0018 applies 0017 before
its switch and defers 0018: see 0018 and this folder's README."""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("tier", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "tier")
