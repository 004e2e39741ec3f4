"""What sending one Notify message needs to know, read in one go (the address kept out of
any repr, so it cannot reach a log by accident)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from responder.domain.resident_updates import ADDRESS_WORDS, ERASED, Job
from responder.notify.personalisation import TaskFacts
from responder.store.schema import contacts, notifications, reports, tasks


@dataclass(frozen=True)
class Snapshot:
    facts: TaskFacts
    duplicate: bool
    notify_id: str | None  # set when a previous attempt was already handed over
    unreachable: str | None  # why there is no address to send to
    # The address itself: kept out of repr so it cannot reach a log by accident.
    recipient: str | None = field(default=None, repr=False)


def read_snapshot(conn: Connection, job: Job) -> Snapshot | None:
    task = conn.execute(
        select(tasks.c.type, tasks.c.address, tasks.c.status, tasks.c.outcome).where(
            tasks.c.id == job.task_id
        )
    ).first()
    if task is None:
        return None
    report = conn.execute(
        select(reports.c.received_at, reports.c.duplicate).where(reports.c.id == job.report_id)
    ).first()
    contact = conn.execute(
        select(contacts.c.email, contacts.c.phone, contacts.c.erased_at).where(
            contacts.c.report_id == job.report_id
        )
    ).first()
    notify_id = conn.execute(
        select(notifications.c.notify_id).where(notifications.c.reference == job.reference)
    ).scalar_one_or_none()
    facts = TaskFacts(
        job.task_id,
        task.type,
        task.address,
        task.status,
        task.outcome,
        report.received_at if report is not None else None,
    )
    recipient, unreachable = None, None
    if contact is None or contact.erased_at is not None:
        unreachable = ERASED
    else:
        recipient = contact.email if job.channel == "email" else contact.phone
        if not recipient:
            unreachable = f"the reporter gave no {ADDRESS_WORDS[job.channel]}"
    duplicate = bool(report.duplicate) if report is not None else False
    return Snapshot(facts, duplicate, notify_id, unreachable, recipient)
