"""Reads of officers' photos: the tasks a new photo could be for, and a served photo."""

from __future__ import annotations

from sqlalchemy import Connection, select

from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES
from responder.domain.photos import pick
from responder.domain.records import TaskRecord
from responder.store.db import Database
from responder.store.schema import photos, tasks


def candidate_tasks(conn: Connection, domain: Domain, person_id: str) -> list[TaskRecord]:
    """What ``pick`` chooses from this person's open tasks, most urgent first."""
    rows = conn.execute(
        select(tasks)
        .where(
            tasks.c.assignee == person_id,
            tasks.c.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(tasks.c.due_at, tasks.c.id)
    )
    return pick([TaskRecord.from_row(r, domain.prefix) for r in rows])


def attached_photo(conn: Connection, token: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a photo that belongs to a task; None otherwise."""
    row = conn.execute(
        select(photos.c.content_type, photos.c.data).where(
            photos.c.token == token, photos.c.task_id.is_not(None)
        )
    ).first()
    return (row.content_type, bytes(row.data)) if row is not None else None


async def tasks_for_photos(db: Database, domain: Domain, person_id: str) -> list[TaskRecord]:
    return await db.query(lambda conn: candidate_tasks(conn, domain, person_id))


async def photo_content(db: Database, token: str) -> tuple[str, bytes] | None:
    return await db.query(lambda conn: attached_photo(conn, token))
