"""History entries about delivery: a card that could not reach someone is shown, not dropped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from responder.store.db import Database
from responder.store.history import append_event
from responder.store.schema import tasks


async def record_undelivered(db: Database, task_id: int, note: str, now: datetime) -> None:
    def write(conn: Connection) -> None:
        status = conn.execute(
            select(tasks.c.status).where(tasks.c.id == task_id)
        ).scalar_one_or_none()
        if status is None:
            return
        append_event(
            conn,
            task_id,
            now,
            "system",
            "undelivered",
            note=note,
            from_status=status,
            to_status=status,
        )

    await db.run(write)
