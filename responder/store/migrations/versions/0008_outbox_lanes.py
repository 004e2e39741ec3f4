"""outbox lanes: each channel claimed on its own, the most urgent first

The dispatcher served the outbox as one line, oldest first: 360 Notify messages queued by
a surge of reports held the next officer's card back ~10 s behind Notify's pace. Each row
now names its lane (the channel, from its kind) and a deadline (its task's due time), and
the dispatcher claims each lane by (status, lane, deliver_by).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 00:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("deliver_by", sa.DateTime(timezone=True), nullable=True))
    # Rows already there: the lane from the kind (as responder.store.outbox.lane_of), the
    # deadline from the task's due time, or a day after the row was made.
    op.execute(
        "UPDATE outbox SET lane = CASE"
        " WHEN kind = 'teams' OR kind LIKE 'teams.%' THEN 'teams'"
        " WHEN kind = 'notify' OR kind LIKE 'notify.%' THEN 'notify'"
        " ELSE 'default' END"
    )
    op.execute(
        "UPDATE outbox SET deliver_by ="
        " (SELECT tasks.due_at FROM tasks WHERE tasks.id = outbox.task_id)"
        " WHERE task_id IS NOT NULL"
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE outbox SET deliver_by = created_at + interval '24 hours'"
            " WHERE deliver_by IS NULL"
        )
    else:
        op.execute(
            "UPDATE outbox SET deliver_by = datetime(created_at, '+24 hours')"
            " WHERE deliver_by IS NULL"
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("lane", existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column(
            "deliver_by", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_index(batch_op.f("ix_outbox_status_next_attempt_at"))
        batch_op.create_index(
            batch_op.f("ix_outbox_status_lane_deliver_by"), ["status", "lane", "deliver_by"]
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_status_lane_deliver_by"))
        batch_op.create_index(
            batch_op.f("ix_outbox_status_next_attempt_at"), ["status", "next_attempt_at"]
        )
        batch_op.drop_column("deliver_by")
        batch_op.drop_column("lane")
