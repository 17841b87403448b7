"""Contract: drop accounts.note, which the release that brought 0017 no longer reads.

With `migrate.contract: deferred` this revision is deferred by that release and runs only
once no version a rollback could go back to needs the column (`deployer migrate --contract`,
or the next release); with `with-release` it runs before the switch, acknowledged below."""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    # deployer: ignore[drop-column] contract: no release since 0017 reads accounts.note
    op.drop_column("accounts", "note")


def downgrade() -> None:
    op.add_column("accounts", sa.Column("note", sa.String(200), nullable=True))
