"""A task's full history as one document (issue 19), for FOI requests and complaints:
the task, every event, every report with what became of its contact details (retention),
GOV.UK Notify messages' states and the Teams cards delivered.

Read in one go inside the reader's scope (``visible``): a task the scope may not see is
None, exactly as an unknown one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, select

from responder.domain.visibility import Scope
from responder.queries.scope import visible
from responder.store.schema import contacts, deliveries, notifications, reports, task_events, tasks


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None


@dataclass(frozen=True)
class Report:
    id: int
    received_at: datetime
    source: str
    duplicate: bool
    has_contact: bool
    name: str | None
    email: str | None
    phone: str | None
    erased_at: datetime | None


@dataclass(frozen=True)
class Message:
    report_id: int
    event: str
    channel: str
    status: str
    detail: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Card:
    recipient: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class HistoryDocument:
    task: object  # the tasks row
    events: tuple[Event, ...]
    reports: tuple[Report, ...]
    messages: tuple[Message, ...]
    cards: tuple[Card, ...]


def history_document(conn: Connection, scope: Scope, task_id: int) -> HistoryDocument | None:
    task = conn.execute(select(tasks).where(and_(tasks.c.id == task_id, visible(scope)))).first()
    if task is None:
        return None
    events = tuple(
        Event(r.id, r.at, r.actor, r.action, r.from_status, r.to_status, r.note)
        for r in conn.execute(
            select(task_events)
            .where(task_events.c.task_id == task_id)
            .order_by(task_events.c.at, task_events.c.id)
        )
    )
    report_rows = conn.execute(
        select(
            reports.c.id,
            reports.c.received_at,
            reports.c.source,
            reports.c.duplicate,
            contacts.c.report_id.label("contact"),
            contacts.c.name,
            contacts.c.email,
            contacts.c.phone,
            contacts.c.erased_at,
        )
        .select_from(reports.outerjoin(contacts, contacts.c.report_id == reports.c.id))
        .where(reports.c.task_id == task_id)
        .order_by(reports.c.received_at, reports.c.id)
    )
    found = tuple(
        Report(
            r.id,
            r.received_at,
            r.source,
            bool(r.duplicate),
            r.contact is not None,
            r.name,
            r.email,
            r.phone,
            r.erased_at,
        )
        for r in report_rows
    )
    messages = tuple(
        Message(r.report_id, r.event, r.channel, r.status, r.detail, r.created_at, r.updated_at)
        for r in conn.execute(
            select(notifications)
            .where(notifications.c.task_id == task_id)
            .order_by(notifications.c.created_at, notifications.c.id)
        )
    )
    cards = tuple(
        Card(r.recipient, r.version, r.created_at, r.updated_at)
        for r in conn.execute(
            select(deliveries)
            .where(deliveries.c.task_id == task_id)
            .order_by(deliveries.c.created_at, deliveries.c.id)
        )
    )
    return HistoryDocument(task, events, found, messages, cards)
