"""A unique constraint, step 2: attach the index (a brief lock, no build).

rule: unique-constraint-builds-index"""

from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE accounts ADD CONSTRAINT uq_accounts_email UNIQUE USING INDEX ux_accounts_email"
    )


def downgrade() -> None:
    op.drop_constraint("uq_accounts_email", "accounts", type_="unique")
