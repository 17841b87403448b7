"""A metadata-only type change: varchar(100) to varchar(200).

rule: column-type-change"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.alter_column("accounts", "note", type_=sa.String(200), existing_type=sa.String(100))


def downgrade() -> None:
    # narrowing back could fail on longer notes; 0011's downgrade drops the column anyway
    pass
