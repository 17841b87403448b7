"""NOT NULL, step 1: a CHECK (status IS NOT NULL) NOT VALID (no scan).

rule: set-not-null"""

from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_check_constraint(
        "ck_accounts_status_not_null", "accounts", "status IS NOT NULL", postgresql_not_valid=True
    )


def downgrade() -> None:
    op.drop_constraint("ck_accounts_status_not_null", "accounts", type_="check")
