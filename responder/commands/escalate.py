"""Escalations and reminders: urgent work nobody accepted, overdue work, work about to fall due.

Run by the scheduler every minute or so over the window since its previous run, so each
task crosses each threshold in exactly one window however late a run comes. Each message
is an outbox row whose idempotency key names the task, the reason and the recipient:
running a window twice (two instances, a retry after a crash) sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from responder.cards.common import when
from responder.config.model import Council
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.messages import Notice, TaskCard
from responder.store.db import Database
from responder.store.outbox import enqueue
from responder.store.schema import tasks

# How long before its due time the assignee is reminded.
REMIND_BEFORE = timedelta(hours=1)
# A first run (no previous window) looks back this far, not over all history.
FIRST_WINDOW = timedelta(days=1)

_WAITING = [Status.UNASSIGNED.value, Status.ASSIGNED.value]
_OPEN = [s.value for s in OPEN_STATUSES]
_WORKING = [Status.ASSIGNED.value, Status.ACCEPTED.value, Status.IN_PROGRESS.value]


@dataclass(frozen=True)
class Found:
    unaccepted: int
    overdue: int
    reminders: int


def _unaccepted_clause(council: Council, since: datetime, now: datetime):
    """Tasks of each escalating priority whose wait crossed its limit inside the window."""
    limits = council.file.digest.escalate_unaccepted_after_minutes
    clauses = []
    for priority, minutes in limits.items():
        wait = timedelta(minutes=minutes)
        clauses.append(
            and_(
                tasks.c.priority == priority,
                tasks.c.created_at > since - wait,
                tasks.c.created_at <= now - wait,
            )
        )
    return or_(*clauses) if clauses else None


def scan(
    conn: Connection, council: Council, since: datetime | None, now: datetime
) -> tuple[list[dict[str, Any]], Found]:
    """The outbox rows owed for the window (since, now]."""
    since = since or now - FIRST_WINDOW
    rows: list[dict[str, Any]] = []
    counts = [0, 0, 0]

    def managers(team_code: str) -> list[str]:
        team = council.team(team_code)
        return list(team.managers) if team else []

    unaccepted = _unaccepted_clause(council, since, now)
    if unaccepted is not None:
        found = conn.execute(
            select(tasks.c.id, tasks.c.team, tasks.c.priority, tasks.c.created_at).where(
                tasks.c.status.in_(_WAITING), unaccepted
            )
        ).all()
        for task in found:
            minutes = council.file.digest.escalate_unaccepted_after_minutes[task.priority]
            notice = f"Escalated: not accepted within {_duration(minutes)}."
            for manager in managers(task.team):
                rows.append(TaskCard.alert_to(task.id, manager, notice, "escalate", now))
            counts[0] += 1

    overdue = conn.execute(
        select(tasks.c.id, tasks.c.team, tasks.c.due_at).where(
            tasks.c.status.in_(_OPEN), tasks.c.due_at > since, tasks.c.due_at <= now
        )
    ).all()
    for late in overdue:
        # When it fell due; the card's due line says how late it is each time it is opened.
        due = when(late.due_at.astimezone(council.tz), now)
        for manager in managers(late.team):
            notice = f"Overdue: it was due {due} and is not done yet."
            rows.append(TaskCard.alert_to(late.id, manager, notice, "overdue", now))
        counts[1] += 1

    due_soon = conn.execute(
        select(tasks.c.id, tasks.c.assignee, tasks.c.due_at).where(
            tasks.c.status.in_(_WORKING),
            tasks.c.assignee.is_not(None),
            tasks.c.due_at > since + REMIND_BEFORE,
            tasks.c.due_at <= now + REMIND_BEFORE,
        )
    ).all()
    for soon in due_soon:
        rows.append(Notice.due_soon(soon.id, soon.assignee, soon.due_at, now))
        counts[2] += 1
    return rows, Found(*counts)


def _duration(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


async def run_escalations(
    db: Database, council: Council, now: datetime, since: datetime | None
) -> Found:
    """One scheduler run: find what crossed a threshold since the last run and enqueue it."""

    def work(conn: Connection) -> Found:
        rows, found = scan(conn, council, since, now)
        enqueue(conn, rows)
        return found

    return await db.run(work)
