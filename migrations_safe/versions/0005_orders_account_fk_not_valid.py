"""A foreign key added NOT VALID: new rows are checked, old rows are not scanned.

rule: constraint-without-not-valid"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_foreign_key(
        "fk_orders_account", "orders", "accounts", ["account_id"], ["id"], postgresql_not_valid=True
    )


def downgrade() -> None:
    op.drop_constraint("fk_orders_account", "orders", type_="foreignkey")
