"""tasks: indexes for the work list and the map

The work list (/tasks) and the map read a viewer's tasks through queries/task_list.py,
which asks each part of the viewer's scope (each team, each ward, their own tasks) for one
status at a time in due order, LIMIT the page: each of those is a range of one of these
indexes, read in order, so a page costs the same over a thousand tasks or a million.

- (team, status, due_at, id): managers' and officers' teams (new).
- (ward, status, due_at, id): councillors' wards; replaces (ward, status), its prefix.
- (assignee, status, due_at, id): everyone's own tasks; replaces (assignee, status), its
  prefix, which the officer's workload count and "my tasks" still use.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 08:40:00.000000
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasks_team_status_due_at_id"),
            ["team", "status", "due_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_ward_status_due_at_id"),
            ["ward", "status", "due_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_assignee_status_due_at_id"),
            ["assignee", "status", "due_at", "id"],
            unique=False,
        )
        batch_op.drop_index(batch_op.f("ix_tasks_ward_status"))
        batch_op.drop_index(batch_op.f("ix_tasks_assignee_status"))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tasks_assignee_status"), ["assignee", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_tasks_ward_status"), ["ward", "status"], unique=False)
        batch_op.drop_index(batch_op.f("ix_tasks_assignee_status_due_at_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_ward_status_due_at_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_team_status_due_at_id"))
