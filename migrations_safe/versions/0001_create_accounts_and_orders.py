"""New tables: nothing else sees them yet, so no rule applies."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.Numeric(12, 2), nullable=False, server_default="0"),
    )
    op.create_index("ix_orders_total", "orders", ["total"])


def downgrade() -> None:
    op.drop_table("orders")
    op.drop_table("accounts")
