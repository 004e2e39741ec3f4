"""Photos a source linked to (an Open311 ``media_url``, a form's photo link), once fetched.

``responder.fetching.photos`` fetches each ``fetch.photo`` row through the SSRF guard and
calls one of these, each one write transaction (Principle 1):

- ``add_source_photo``: the photo row (owned by ``intake:<source>``, already the task's,
  so it is served at ``{public_url}/api/photos/{token}`` at once), its URL on the task's
  photo list, the version up, a ``photo`` event (data: source, count) and ``teams.refresh``
  so every copy of the card already sent shows it; webhooks for subscribers who want
  ``photo`` events.
- ``record_photo_failure``: a ``photo_failed`` event whose note says why, in words safe to
  show (never the URL; a host at most). Nothing else changes, so no refresh is owed: the
  card shows the line when it is next refreshed.

A resident's photo is kept whatever the task's status: one sent with a report that was
completed before the photo arrived (or with a "still there" update on a closed report)
belongs to the record all the same. Unlike an officer's photo (``commands/photos``), no
person is checked: the source's photo hosts were, before anything was fetched.

Each fetch is recorded once: the outbox delivers at least once, so the event carries the
outbox row's key (``fetch``) and a row done twice (a crash between the commit and the
dispatcher's note of it) finds its event and changes nothing. A task already holding
``MAX_TASK_PHOTOS`` gets a ``photo_failed`` line instead, and the photo is not kept: a
photo nobody can find from the task is personal data kept for nothing (Principle 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, insert, select, update

from responder.commands.photos import new_token
from responder.commands.subscribers import webhook_messages
from responder.domain.context import Domain
from responder.domain.photos import MAX_TASK_PHOTOS, NewPhoto, photo_url
from responder.domain.records import TaskRecord
from responder.messages import CardRefresh
from responder.store.db import Database
from responder.store.history import append_event
from responder.store.outbox import enqueue
from responder.store.schema import photos, task_events, tasks

ADDED = "photo"
FAILED = "photo_failed"
FULL = f"the task already has {MAX_TASK_PHOTOS} photos, the most it can hold"

Outcome = Literal["added", "failed", "already", "gone"]


@dataclass(frozen=True)
class SourcePhotoResult:
    outcome: Outcome  # added; recorded as not fetched; done before; the task is gone
    token: str | None = None  # the stored photo's (added only)
    url: str | None = None  # where it is served (added only)


def actor_of(source: str) -> str:
    return f"intake:{source}"


def _locked_task(conn: Connection, domain: Domain, task_id: int) -> TaskRecord | None:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id).with_for_update()).first()
    return TaskRecord.from_row(row, domain.prefix) if row is not None else None


def _done_before(conn: Connection, task_id: int, fetch_key: str) -> bool:
    """Whether this fetch (its outbox key) is on the task's history already."""
    rows = conn.execute(
        select(task_events.c.data).where(
            task_events.c.task_id == task_id, task_events.c.action.in_((ADDED, FAILED))
        )
    )
    return any(isinstance(data, dict) and data.get("fetch") == fetch_key for (data,) in rows)


def _failed(
    conn: Connection,
    domain: Domain,
    task: TaskRecord,
    source: str,
    fetch_key: str,
    reason: str,
    now: datetime,
) -> None:
    event_id = append_event(
        conn,
        task.id,
        now,
        actor_of(source),
        FAILED,
        note=reason,
        data={"source": source, "fetch": fetch_key},
        from_status=task.status.value,
        to_status=task.status.value,
    )
    webhooks = webhook_messages(domain.council, task.id, [(event_id, FAILED)], now)
    if webhooks:
        enqueue(conn, webhooks, deliver_by=task.due_at)


def add(
    conn: Connection,
    domain: Domain,
    task_id: int,
    source: str,
    fetch_key: str,
    photo: NewPhoto,
    public_url: str,
    now: datetime,
) -> SourcePhotoResult:
    task = _locked_task(conn, domain, task_id)
    if task is None:
        return SourcePhotoResult("gone")
    if _done_before(conn, task.id, fetch_key):
        return SourcePhotoResult("already")
    if len(task.photos) >= MAX_TASK_PHOTOS:
        _failed(conn, domain, task, source, fetch_key, FULL, now)
        return SourcePhotoResult("failed")
    token = new_token()
    url = photo_url(public_url, token)
    conn.execute(
        insert(photos),
        {
            "token": token,
            "task_id": task.id,
            "person_id": actor_of(source),
            "content_type": photo.content_type,
            "data": photo.data,
            "created_at": now,
        },
    )
    new_version = task.version + 1
    conn.execute(
        update(tasks)
        .where(tasks.c.id == task.id)
        .values(photos=[*task.photos, url], version=tasks.c.version + 1, updated_at=now)
    )
    event_id = append_event(
        conn,
        task.id,
        now,
        actor_of(source),
        ADDED,
        data={"source": source, "count": 1, "fetch": fetch_key},
        from_status=task.status.value,
        to_status=task.status.value,
    )
    messages = [CardRefresh.of(task.id, new_version, now)]
    messages += webhook_messages(domain.council, task.id, [(event_id, ADDED)], now)
    enqueue(conn, messages, deliver_by=task.due_at)
    return SourcePhotoResult("added", token, url)


def fail(
    conn: Connection,
    domain: Domain,
    task_id: int,
    source: str,
    fetch_key: str,
    reason: str,
    now: datetime,
) -> SourcePhotoResult:
    task = _locked_task(conn, domain, task_id)
    if task is None:
        return SourcePhotoResult("gone")
    if _done_before(conn, task.id, fetch_key):
        return SourcePhotoResult("already")
    _failed(conn, domain, task, source, fetch_key, reason, now)
    return SourcePhotoResult("failed")


# -- the commands, through the write path -------------------------------------------------


async def add_source_photo(
    db: Database,
    domain: Domain,
    task_id: int,
    source: str,
    fetch_key: str,
    photo: NewPhoto,
    public_url: str,
    now: datetime,
) -> SourcePhotoResult:
    """Add a fetched photo to the task (see the module docstring)."""
    return await db.run(
        lambda conn: add(conn, domain, task_id, source, fetch_key, photo, public_url, now)
    )


async def record_photo_failure(
    db: Database,
    domain: Domain,
    task_id: int,
    source: str,
    fetch_key: str,
    reason: str,
    now: datetime,
) -> SourcePhotoResult:
    """Record on the task that a photo could not be fetched, and why (words safe to show)."""
    return await db.run(lambda conn: fail(conn, domain, task_id, source, fetch_key, reason, now))
