"""Recording what became of a Notify message: its ``notifications`` row and the task's
history event, in one transaction (the sender calls this; receipts move it on later)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from responder.domain.resident_updates import Job
from responder.store.history import append_event
from responder.store.schema import notifications, reports, tasks


def record_notification(
    conn: Connection,
    job: Job,
    status: str,
    notify_id: str | None,
    detail: str | None,
    now: datetime,
) -> None:
    """The message's ``notifications`` row and its history event, in one transaction."""
    task_status = conn.execute(
        select(tasks.c.status).where(tasks.c.id == job.task_id)
    ).scalar_one_or_none()
    if task_status is None:
        return
    duplicate = conn.execute(
        select(reports.c.duplicate).where(
            reports.c.id == job.report_id, reports.c.task_id == job.task_id
        )
    ).scalar_one_or_none()
    if duplicate is not None:
        existing = conn.execute(
            select(notifications.c.id, notifications.c.notify_id).where(
                notifications.c.reference == job.reference
            )
        ).first()
        if existing is not None and existing.notify_id is not None:
            return  # already recorded as handed over; receipts may have moved it on since
        values = {"status": status, "notify_id": notify_id, "detail": detail, "updated_at": now}
        if existing is None:
            conn.execute(
                insert(notifications).values(
                    reference=job.reference,
                    task_id=job.task_id,
                    report_id=job.report_id,
                    event=job.event,
                    channel=job.channel,
                    created_at=now,
                    **values,
                )
            )
        else:
            conn.execute(
                update(notifications).where(notifications.c.id == existing.id).values(values)
            )
    who = "the reporter of a linked report" if duplicate else "the reporter"
    if status == "not-sent":
        note = f"{job.what} to {who} not sent: {detail}"
    else:
        note = f"{job.what} sent to {who}"
    append_event(
        conn,
        job.task_id,
        now,
        "system",
        "notify",
        note=note,
        data={
            "reference": job.reference,
            "event": job.event,
            "channel": job.channel,
            "status": status,
            "notify_id": notify_id,
        },
        from_status=task_status,
        to_status=task_status,
    )
