"""VALIDATE in its own migration: SHARE UPDATE EXCLUSIVE, traffic goes on.

rule: validate-in-same-transaction"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_account")


def downgrade() -> None:
    pass
