"""tasks: a ward's tasks created, and closed, in a period; ratings by when they came

The performance page counts what was created and completed in a period within the
viewer's scope: managers' teams have (team, created_at) and (team, closed_at) (the digest
added them); councillors see their wards, and without these two every count read the whole
table (about 0.3 s a statement over a million tasks). The page's ratings are read from
the period's ratings to their tasks: feedback by created_at.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:10:00.000000
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasks_ward_created_at"), ["ward", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_ward_closed_at"), ["ward", "closed_at"], unique=False
        )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_created_at"))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_ward_closed_at"))
        batch_op.drop_index(batch_op.f("ix_tasks_ward_created_at"))
