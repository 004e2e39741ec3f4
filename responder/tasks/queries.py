"""Reads of tasks and their history (writes live in commands.py)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from responder.store.db import Database
from responder.store.schema import task_events, tasks
from responder.tasks.domain import Domain
from responder.tasks.lifecycle import OPEN_STATUSES
from responder.tasks.records import EventRecord, TaskRecord


async def task_history(db: Database, task_id: int) -> list[EventRecord]:
    def read(conn: Connection) -> list[EventRecord]:
        rows = conn.execute(
            select(task_events)
            .where(task_events.c.task_id == task_id)
            .order_by(task_events.c.at, task_events.c.id)
        )
        return [
            EventRecord(r.at, r.actor, r.action, r.from_status, r.to_status, r.note, r.data)
            for r in rows
        ]

    return await db.query(read)


async def open_tasks_for(db: Database, domain: Domain, person_id: str) -> list[TaskRecord]:
    """A person's open tasks, most urgent due time first."""

    def read(conn: Connection) -> list[TaskRecord]:
        rows = conn.execute(
            select(tasks)
            .where(
                tasks.c.assignee == person_id, tasks.c.status.in_([s.value for s in OPEN_STATUSES])
            )
            .order_by(tasks.c.due_at, tasks.c.id)
        )
        return [TaskRecord.from_row(r, domain.prefix) for r in rows]

    return await db.query(read)
