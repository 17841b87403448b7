"""An index built CONCURRENTLY, outside the transaction.

rule: require-concurrent-index, concurrently-in-transaction"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_orders_account_id", "orders", ["account_id"], postgresql_concurrently=True
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_orders_account_id", table_name="orders", postgresql_concurrently=True)
