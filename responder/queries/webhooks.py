"""What a webhook tells a subscriber, read when it is sent (``webhooks/delivery.py``).

The outbox row names only the event; the task and the event are read here at send time, so
nothing waits in the outbox but ids. Nothing personal is read: not the reporters' contact
details, not the task's description or address (residents' own words), not the event's
note (officers' notes may be internal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from responder.domain.context import Domain
from responder.domain.records import TaskRecord
from responder.queries.tasks import load_task
from responder.store.schema import reports, task_events

# A task's reports named in a webhook (the first and its linked duplicates), at most.
MAX_REPORTS = 50


@dataclass(frozen=True)
class WebhookEventFacts:
    id: int
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class SourceRef:
    """A report as its source knows it: the source's name and its own id for the report."""

    source: str
    external_id: str | None
    duplicate: bool


@dataclass(frozen=True)
class WebhookFacts:
    task: TaskRecord  # as it is now, when the webhook is sent
    event: WebhookEventFacts
    reports: tuple[SourceRef, ...]  # oldest first: the report that created the task first


_EVENT = select(
    task_events.c.id,
    task_events.c.task_id,
    task_events.c.at,
    task_events.c.actor,
    task_events.c.action,
    task_events.c.from_status,
    task_events.c.to_status,
    task_events.c.data,
).where(task_events.c.id == bindparam("id"))

_REPORTS = (
    select(reports.c.source, reports.c.external_id, reports.c.duplicate)
    .where(reports.c.task_id == bindparam("task_id"))
    .order_by(reports.c.id)
    .limit(MAX_REPORTS)
)


def webhook_facts(
    conn: Connection, domain: Domain, task_id: int, event_id: int
) -> WebhookFacts | None:
    """The task, the event and the task's reports; None if the event is not the task's."""
    row = conn.execute(_EVENT, {"id": event_id}).first()
    if row is None or row.task_id != task_id:
        return None
    task = load_task(conn, domain, task_id)
    if task is None:
        return None
    event = WebhookEventFacts(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        data=row.data if isinstance(row.data, dict) else {},
    )
    refs = tuple(
        SourceRef(r.source, r.external_id, bool(r.duplicate))
        for r in conn.execute(_REPORTS, {"task_id": task_id})
    )
    return WebhookFacts(task, event, refs)
