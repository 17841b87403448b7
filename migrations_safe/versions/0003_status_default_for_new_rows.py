"""A default for new rows, separately: a catalog change, no rewrite."""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.alter_column("accounts", "status", server_default="active")


def downgrade() -> None:
    op.alter_column("accounts", "status", server_default=None)
