"""A unique constraint, step 1: the unique index, built CONCURRENTLY.

rule: unique-constraint-builds-index"""

from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ux_accounts_email", "accounts", ["email"], unique=True, postgresql_concurrently=True
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ux_accounts_email")
