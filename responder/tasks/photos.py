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
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from responder.config.model import Council
from responder.messages import CardRefresh
from responder.store.db import Database
from responder.store.outbox import enqueue
from responder.store.schema import photos, task_events, tasks
from responder.tasks.commands import load_task
from responder.tasks.domain import Domain
from responder.tasks.lifecycle import OPEN_STATUSES, Status
from responder.tasks.records import TaskRecord

# A photo nobody attached within this long is deleted.
PENDING_FOR = timedelta(days=1)
# A task's photo list stays a size a card and the intake API can carry.
MAX_TASK_PHOTOS = 50
# Tasks offered when the officer has several (the most urgent first).
MAX_CHOICES = 10
# Statuses of a task "in hand": the officer has accepted it, or is working on it.
IN_HAND: frozenset[Status] = frozenset({Status.ACCEPTED, Status.IN_PROGRESS})

NOT_YOURS = "Only the assigned officer or a manager of the team can add photos to this task."
CLOSED = {
    Status.COMPLETED: "This task is already completed, so photos can't be added to it.",
    Status.CANCELLED: "This task has been cancelled, so photos can't be added to it.",
}
GONE = "Those photos are no longer waiting to be added: send them again."
FULL = f"This task already has {MAX_TASK_PHOTOS} photos, the most it can hold."


@dataclass(frozen=True)
class NewPhoto:
    content_type: str  # what the bytes are (sniffed), e.g. image/jpeg
    data: bytes


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


def photo_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/api/photos/{token}"


def refusal(council: Council, task: TaskRecord, person_id: str) -> str | None:
    """Why ``person_id`` may not add photos to ``task`` now, or None when they may."""
    if task.status not in OPEN_STATUSES:
        return CLOSED.get(task.status, NOT_YOURS)
    team = council.team(task.team)
    if task.assignee == person_id or (team is not None and person_id in team.managers):
        return None
    return NOT_YOURS


def pick(person_tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
    """The tasks a photo could be for: those in hand if any, else every open one."""
    in_hand = [t for t in person_tasks if t.status in IN_HAND]
    return (in_hand or list(person_tasks))[:MAX_CHOICES]


def photo_words(count: int) -> str:
    return "the photo" if count == 1 else f"{count} photos"


# -- reads ---------------------------------------------------------------------------------


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
    conn.execute(
        insert(task_events),
        [
            {
                "task_id": task.id,
                "at": now,
                "actor": person_id,
                "action": "photo",
                "from_status": task.status.value,
                "to_status": task.status.value,
                "note": None,
                "data": {"count": len(pending)},
            }
        ],
    )
    enqueue(conn, [CardRefresh.of(task.id, new_version, now)])
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


async def tasks_for_photos(db: Database, domain: Domain, person_id: str) -> list[TaskRecord]:
    return await db.query(lambda conn: candidate_tasks(conn, domain, person_id))


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


async def photo_content(db: Database, token: str) -> tuple[str, bytes] | None:
    return await db.query(lambda conn: attached_photo(conn, token))


__all__ = [
    "MAX_CHOICES",
    "AttachResult",
    "NewPhoto",
    "PhotosRefused",
    "add_photos",
    "attach_photos",
    "forget_pending",
    "keep_pending",
    "photo_content",
    "photo_url",
    "tasks_for_photos",
]
