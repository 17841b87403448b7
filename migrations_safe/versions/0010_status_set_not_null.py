"""NOT NULL, step 3: PostgreSQL 12+ sees the validated check and skips the scan.

rule: set-not-null"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.alter_column("accounts", "status", nullable=False)
    op.drop_constraint("ck_accounts_status_not_null", "accounts", type_="check")


def downgrade() -> None:
    op.create_check_constraint(
        "ck_accounts_status_not_null", "accounts", "status IS NOT NULL", postgresql_not_valid=True
    )
    op.alter_column("accounts", "status", nullable=True)
