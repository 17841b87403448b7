"""NOT NULL, step 2: validate the check (a scan that blocks nobody).

rule: set-not-null"""

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_accounts_status_not_null")


def downgrade() -> None:
    pass
