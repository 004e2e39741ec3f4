"""A resident's update on a report, from the site they reported it on (Open311
``POST servicerequestupdates``): a comment or photos on an open task, or "still there" on
a closed one.

One transaction (Principle 1): the task row is locked, the same (source, update id) seen
before answers the event it made (a resend changes nothing), else a ``citizen_update``
history event with the note, the task version goes up, a ``teams.refresh`` so every copy
of the officer's card shows it, and a ``fetch.photo`` row per photo link. The task's
status never changes: residents report, officers decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, select, update

from responder.commands.subscribers import webhook_messages
from responder.config.model import Council
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.open311 import CITIZEN_UPDATE, still_there
from responder.domain.vocabulary import NOTE_MAX
from responder.messages import CardRefresh, PhotoFetch
from responder.store.db import Database
from responder.store.history import append_event
from responder.store.outbox import enqueue
from responder.store.schema import task_events, tasks

MAX_UPDATE_PHOTOS = 10


@dataclass(frozen=True)
class CitizenUpdate:
    task_id: int
    source: str  # the intake key's name
    update_id: str  # the source's own id for it (FixMyStreet's comment id)
    note: str
    media_urls: tuple[str, ...] = ()
    status: str | None = None  # what the source's site says of the report (OPEN, FIXED, ...)


@dataclass(frozen=True)
class CitizenUpdateResult:
    event_id: int
    created: bool  # False: this (source, update id) was recorded before


async def record_citizen_update(
    db: Database, council: Council, update_in: CitizenUpdate, now: datetime
) -> CitizenUpdateResult:
    """Record it once; LookupError for an unknown task."""
    return await db.run(lambda conn: _record(conn, council, update_in, now))


def _record(
    conn: Connection, council: Council, new: CitizenUpdate, now: datetime
) -> CitizenUpdateResult:
    row = conn.execute(
        select(tasks.c.id, tasks.c.status, tasks.c.version, tasks.c.due_at)
        .where(tasks.c.id == new.task_id)
        .with_for_update()
    ).first()
    if row is None:
        raise LookupError(f"no task {new.task_id}")
    seen = conn.execute(
        select(task_events.c.id, task_events.c.data).where(
            and_(task_events.c.task_id == new.task_id, task_events.c.action == CITIZEN_UPDATE)
        )
    ).all()
    for event_id, data in seen:  # a task has few of these: compared here, on every backend
        if isinstance(data, dict) and (data.get("source"), data.get("update_id")) == (
            new.source,
            new.update_id,
        ):
            return CitizenUpdateResult(event_id, created=False)

    there = still_there(Status(row.status) in OPEN_STATUSES, new.status)
    note = " ".join(new.note.split())
    if there:  # the officer's card says so first
        note = f"Still there: {note}" if note else "Still there"
    if len(note) > NOTE_MAX:
        note = note[: NOTE_MAX - 1] + "…"
    urls = tuple(dict.fromkeys(new.media_urls))[:MAX_UPDATE_PHOTOS]
    data = {
        "source": new.source,
        "update_id": new.update_id,
        "photos": len(urls),
        "still_there": there,
    }
    if new.status:
        data["status"] = new.status
    event_id = append_event(
        conn,
        new.task_id,
        now,
        f"intake:{new.source}",
        CITIZEN_UPDATE,
        note=note or None,
        data=data,
        from_status=row.status,
        to_status=row.status,
    )
    conn.execute(
        update(tasks)
        .where(tasks.c.id == new.task_id)
        .values(version=tasks.c.version + 1, updated_at=now)
    )
    messages = [CardRefresh.of(new.task_id, row.version + 1, now)]
    messages += [
        PhotoFetch.of(
            new.task_id,
            new.source,
            url,
            f"photo:update:{new.source}:{new.update_id}:{i}",
            now,
            update=new.update_id,
        )
        for i, url in enumerate(urls)
    ]
    messages += webhook_messages(council, new.task_id, [(event_id, CITIZEN_UPDATE)], now)
    enqueue(conn, messages, deliver_by=row.due_at)
    return CitizenUpdateResult(event_id, created=True)
