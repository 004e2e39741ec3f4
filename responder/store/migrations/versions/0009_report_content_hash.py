"""reports.content_hash: a resend with other content is a conflict, not a replay

The same source + external_id again answered with the task the first report made,
whatever the second body said: a client that reused an id lost its new report without
being told. Each report now keeps a hash of its content as intake normalised it (no
personal data), so intake can answer 409 when the content differs. Reports already
stored have none; for them a resend is compared by type and place.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 03:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("content_hash")
