"""What the web's task page (``/tasks/{reference}``) reads beyond the card's own view.

The task itself is read through ``queries.cases.find_case`` (the visibility rule), the
card's view through ``bot.views.task_view`` and the history through
``queries.tasks.task_history``. These are the rest, for the staff who see a task's
internals: the reports linked to it (never their reporters' contact details: the
``contacts`` table is not read here), what Notify did with each message to a reporter (no
addresses), residents' ratings, and the officers' photos served at ``/api/photos/{token}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from responder.store.schema import feedback, notifications, photos, reports

# A task rarely has more than a handful of each; a flood of duplicates is counted, not listed.
MAX_ROWS = 100


@dataclass(frozen=True)
class LinkedReport:
    received_at: datetime
    source: str
    external_id: str | None
    duplicate: bool  # False: the report that created the task


@dataclass(frozen=True)
class Delivery:
    event: str  # received | completed | ...
    channel: str  # email | sms
    status: str  # sending | delivered | permanent-failure | ... | not-sent
    at: datetime  # when Notify last told us (or when it was handed over)


@dataclass(frozen=True)
class Rating:
    rating: int
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class Internals:
    reports: tuple[LinkedReport, ...]
    deliveries: tuple[Delivery, ...]
    ratings: tuple[Rating, ...]
    photo_tokens: tuple[str, ...]  # officers' photos of this task, oldest first


def internals(conn: Connection, task_id: int) -> Internals:
    """Everything the staff's page shows beyond the card, for one task the caller has
    already found visible (through ``find_case``) and theirs to see in full."""
    report_rows = conn.execute(
        select(reports.c.received_at, reports.c.source, reports.c.external_id, reports.c.duplicate)
        .where(reports.c.task_id == task_id)
        .order_by(reports.c.received_at, reports.c.id)
        .limit(MAX_ROWS)
    ).all()
    delivery_rows = conn.execute(
        select(
            notifications.c.event,
            notifications.c.channel,
            notifications.c.status,
            notifications.c.updated_at,
        )
        .where(notifications.c.task_id == task_id)
        .order_by(notifications.c.created_at, notifications.c.id)
        .limit(MAX_ROWS)
    ).all()
    rating_rows = conn.execute(
        select(feedback.c.rating, feedback.c.comment, feedback.c.created_at)
        .where(feedback.c.task_id == task_id)
        .order_by(feedback.c.created_at, feedback.c.report_id)
        .limit(MAX_ROWS)
    ).all()
    return Internals(
        reports=tuple(
            LinkedReport(r.received_at, r.source, r.external_id, bool(r.duplicate))
            for r in report_rows
        ),
        deliveries=tuple(
            Delivery(r.event, r.channel, r.status, r.updated_at) for r in delivery_rows
        ),
        ratings=tuple(Rating(int(r.rating), r.comment, r.created_at) for r in rating_rows),
        photo_tokens=photo_tokens(conn, task_id),
    )


def photo_tokens(conn: Connection, task_id: int) -> tuple[str, ...]:
    """The tokens of the officers' photos of a task (served at ``/api/photos/{token}``),
    oldest first: on the case view too, as the case card shows the task's photos."""
    return tuple(
        conn.execute(
            select(photos.c.token)
            .where(photos.c.task_id == task_id)
            .order_by(photos.c.id)
            .limit(MAX_ROWS)
        ).scalars()
    )
