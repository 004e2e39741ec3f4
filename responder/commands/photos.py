"""Photos officers send: keep them, then add them to one of the sender's tasks.

A photo is kept first as *pending* (``photos.task_id`` null, owned by the person who sent
it) while the officer says which task it belongs to; attaching it is one write
transaction like every task change (Principle 1): the task row is locked, the person is
checked (the assignee of an open task, or a manager of its team), the photo rows get the
task id, the task's photo list gets their URLs, the version goes up, a ``photo`` event
records who added how many, and ``teams.refresh`` is enqueued so every copy of the card
already sent shows them. A refusal changes nothing and says why (Principle 4).

Each photo is served at ``{public_url}/api/photos/{token}`` once it belongs to a task. The
token is 32 random bytes (``secrets.token_urlsafe``): the card's image needs no sign-in,
so the unguessable token is what keeps a photo private. A pending photo is never served,
and one nobody attached is deleted after a day (Principle 5).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from responder.commands.subscribers import webhook_messages
from responder.domain.context import Domain
from responder.domain.photos import (
    FULL,
    GONE,
    MAX_TASK_PHOTOS,
    PENDING_FOR,
    NewPhoto,
    photo_url,
    refusal,
)
from responder.domain.records import TaskRecord
from responder.messages import CardRefresh
from responder.queries.tasks import load_task
from responder.store.db import Database
from responder.store.outbox import enqueue
from responder.store.schema import photos, task_events, tasks


# A photo nobody attached within this long is deleted.
@dataclass(frozen=True)
class AttachResult:
    task: TaskRecord  # the task as it is now
    added: int  # photos added by this call (0: nothing changed)
    notice: str  # a sentence for the person
    refused: bool = False  # the task is not theirs, or not open: choose another


class PhotosRefused(Exception):
    """Raised inside a transaction so nothing it wrote stands."""

    def __init__(self, result: AttachResult) -> None:
        super().__init__(result.notice)
        self.result = result


def new_token() -> str:
    return secrets.token_urlsafe(32)


# -- writes --------------------------------------------------------------------------------


def store_pending(
    conn: Connection, person_id: str, new: Sequence[NewPhoto], now: datetime
) -> list[str]:
    """Keep ``new`` for ``person_id`` until they say which task; returns their tokens."""
    conn.execute(
        delete(photos).where(photos.c.task_id.is_(None), photos.c.created_at < now - PENDING_FOR)
    )
    tokens = [new_token() for _ in new]
    if new:
        conn.execute(
            insert(photos),
            [
                {
                    "token": token,
                    "task_id": None,
                    "person_id": person_id,
                    "content_type": photo.content_type,
                    "data": photo.data,
                    "created_at": now,
                }
                for token, photo in zip(tokens, new, strict=True)
            ],
        )
    return tokens


def discard_pending(conn: Connection, person_id: str, tokens: Sequence[str]) -> int:
    """Delete this person's pending photos among ``tokens``; returns how many went."""
    done = conn.execute(
        delete(photos).where(
            photos.c.token.in_(list(tokens)),
            photos.c.person_id == person_id,
            photos.c.task_id.is_(None),
        )
    )
    return done.rowcount or 0


def attach(
    conn: Connection,
    domain: Domain,
    person_id: str,
    task_id: int,
    tokens: Sequence[str],
    public_url: str,
    now: datetime,
) -> AttachResult:
    """Add this person's pending photos ``tokens`` to the task; LookupError: no such task."""
    row = conn.execute(select(tasks).where(tasks.c.id == task_id).with_for_update()).first()
    if row is None:
        raise LookupError(f"no task {task_id}")
    task = TaskRecord.from_row(row, domain.prefix)
    reason = refusal(domain.council, task, person_id)
    if reason is not None:
        return AttachResult(task, 0, reason, refused=True)

    wanted = list(dict.fromkeys(tokens))  # in the order sent, once each
    found = {
        r.token: r
        for r in conn.execute(
            select(photos.c.id, photos.c.token, photos.c.task_id)
            .where(photos.c.token.in_(wanted), photos.c.person_id == person_id)
            .with_for_update()
        )
    }
    pending = [found[t] for t in wanted if t in found and found[t].task_id is None]
    if not pending:
        return AttachResult(task, 0, _nothing_pending(conn, domain, task, found.values()))
    if len(task.photos) + len(pending) > MAX_TASK_PHOTOS:
        return AttachResult(task, 0, FULL, refused=True)

    urls = [photo_url(public_url, p.token) for p in pending]
    new_version = task.version + 1
    done = conn.execute(
        update(tasks)
        .where(tasks.c.id == task.id, tasks.c.version == task.version)
        .values(photos=[*task.photos, *urls], version=tasks.c.version + 1, updated_at=now)
    )
    if done.rowcount == 0:  # moved on under us despite the lock: nothing written yet
        current = load_task(conn, domain, task.id) or task
        return AttachResult(current, 0, "This task changed just now: try again.", refused=True)
    conn.execute(
        update(photos)
        .where(photos.c.id.in_([p.id for p in pending]), photos.c.task_id.is_(None))
        .values(task_id=task.id)
    )
    event_id = conn.execute(
        insert(task_events).returning(task_events.c.id),
        {
            "task_id": task.id,
            "at": now,
            "actor": person_id,
            "action": "photo",
            "from_status": task.status.value,
            "to_status": task.status.value,
            "note": None,
            "data": {"count": len(pending)},
        },
    ).scalar_one()
    webhooks = webhook_messages(domain.council, task.id, [(event_id, "photo")], now)
    enqueue(conn, [CardRefresh.of(task.id, new_version, now), *webhooks], deliver_by=task.due_at)
    updated = load_task(conn, domain, task.id)
    assert updated is not None
    notice = "Photo added." if len(pending) == 1 else f"{len(pending)} photos added."
    return AttachResult(updated, len(pending), notice)


def _nothing_pending(conn: Connection, domain: Domain, task: TaskRecord, found) -> str:
    """Why nothing was added: already on this task, already on another, or gone."""
    homes = {r.task_id for r in found}
    if not homes:
        return GONE
    if homes == {task.id}:
        return "Already added to this task."
    other = next(h for h in homes if h != task.id)
    elsewhere = load_task(conn, domain, other)
    return f"Already added to {elsewhere.reference}." if elsewhere else GONE


def store_and_attach(
    conn: Connection,
    domain: Domain,
    person_id: str,
    task_id: int,
    new: Sequence[NewPhoto],
    public_url: str,
    now: datetime,
) -> AttachResult:
    """Keep and attach in one go; PhotosRefused (and nothing kept) when it cannot be."""
    tokens = store_pending(conn, person_id, new, now)
    result = attach(conn, domain, person_id, task_id, tokens, public_url, now)
    if result.added == 0:
        raise PhotosRefused(result)
    return result


# -- the commands, through the write path -------------------------------------------------


async def keep_pending(
    db: Database, person_id: str, new: Sequence[NewPhoto], now: datetime
) -> list[str]:
    return await db.run(lambda conn: store_pending(conn, person_id, new, now))


async def forget_pending(db: Database, person_id: str, tokens: Sequence[str]) -> int:
    return await db.run(lambda conn: discard_pending(conn, person_id, tokens))


async def attach_photos(
    db: Database,
    domain: Domain,
    person_id: str,
    task_id: int,
    tokens: Sequence[str],
    public_url: str,
    now: datetime,
) -> AttachResult:
    return await db.run(
        lambda conn: attach(conn, domain, person_id, task_id, tokens, public_url, now)
    )


async def add_photos(
    db: Database,
    domain: Domain,
    person_id: str,
    task_id: int,
    new: Sequence[NewPhoto],
    public_url: str,
    now: datetime,
) -> AttachResult:
    """Keep ``new`` and attach them to the task at once (PhotosRefused: nothing kept)."""
    return await db.run(
        lambda conn: store_and_attach(conn, domain, person_id, task_id, new, public_url, now)
    )


__all__ = [
    "AttachResult",
    "PhotosRefused",
    "add_photos",
    "attach_photos",
    "forget_pending",
    "keep_pending",
]
