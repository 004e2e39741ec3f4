"""Following cases: follow, unfollow, and the notices a status change owes followers.

``set_following`` is the use case (one transaction: may this person see the case? then
follow or unfollow); ``follow`` and ``status_notices`` run inside other commands'
transactions (raising a task follows it; every action tells its followers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from responder.domain.context import Domain
from responder.domain.lifecycle import Status
from responder.domain.records import TaskRecord
from responder.domain.visibility import Scope
from responder.messages import Notice
from responder.queries.cases import find_case
from responder.store.db import Database
from responder.store.schema import follows

# Status changes a follower hears about. Hand-backs and reassignments shuffle work inside
# the team (assigned <-> unassigned) and are not news to a councillor.
NOTICE_STATUSES: frozenset[Status] = frozenset(
    {Status.ACCEPTED, Status.IN_PROGRESS, Status.COMPLETED, Status.CANCELLED}
)


async def set_following(
    db: Database, domain: Domain, scope: Scope, task_id: int, on: bool, now: datetime
) -> bool | None:
    """Follow or unfollow a case the scope's person may see: whether anything changed, or
    None if they may not see it (nothing is written then)."""
    person_id = scope.person_id
    assert person_id is not None  # a person follows, not a key

    def write(conn: Connection) -> bool | None:
        if find_case(conn, domain, scope, task_id) is None:
            return None
        if on:
            return follow(conn, person_id, task_id, now)
        return unfollow(conn, person_id, task_id)

    return await db.run(write)


_FOLLOW = {
    name: dialect.insert(follows).on_conflict_do_nothing(index_elements=["person_id", "task_id"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def follow(conn: Connection, person_id: str, task_id: int, now: datetime) -> bool:
    """Follow a case; False when already following."""
    done = conn.execute(
        _FOLLOW[conn.dialect.name], {"person_id": person_id, "task_id": task_id, "created_at": now}
    )
    return done.rowcount == 1


def unfollow(conn: Connection, person_id: str, task_id: int) -> bool:
    """Stop following; False when not following."""
    done = conn.execute(
        delete(follows).where(follows.c.person_id == person_id, follows.c.task_id == task_id)
    )
    return done.rowcount == 1


def status_notices(
    conn: Connection,
    task: TaskRecord,
    to_status: Status,
    actor: str | None,
    version: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Outbox rows telling each follower (but the one who made the change) the news."""
    if to_status == task.status or to_status not in NOTICE_STATUSES:
        return []
    people = conn.execute(select(follows.c.person_id).where(follows.c.task_id == task.id)).scalars()
    return [
        Notice.status_change(task.id, version, person, to_status.value, now)
        for person in people
        if person != actor
    ]
