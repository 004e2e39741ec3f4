"""sources: Open311 and form intake, progress out

Reports now come from FixMyStreet (Open311) and forms packages too: each report keeps the
source's own attributes (``reports.attributes``: fixmystreet_id, uprn, a form's extra
answers; never contact details), signed form posts are remembered for their timestamp
window so a replay is refused (``intake_replays``), and the history is read by time window
(Open311 servicerequestupdates, webhooks), hence an index on ``task_events.at``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attributes", sa.JSON(), nullable=True))
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_events_at"), ["at"], unique=False)
    op.create_table(
        "intake_replays",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_intake_replays")),
    )
    with op.batch_alter_table("intake_replays", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intake_replays_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("intake_replays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_replays_expires_at"))
    op.drop_table("intake_replays")
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_events_at"))
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("attributes")
