"""reports by place: the repeat-reports search seeks a band of latitude, not a week

The priority rule "N reports within M metres in D days" searched a type's reports by
time, then filtered by place: every report of the type in the window was read (at 20,000
recent reports, ~5 ms a report; bench.intake's rate fell from ~950 to ~640 a second).
Seeking the type's reports in a band of latitude first reads a few dozen.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:40:00.000000
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_type_received_at"))
        batch_op.create_index(
            batch_op.f("ix_reports_type_lat_received_at"), ["type", "lat", "received_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_type_lat_received_at"))
        batch_op.create_index(batch_op.f("ix_reports_type_received_at"), ["type", "received_at"])
