"""Applying a GOV.UK Notify delivery receipt: the message's status, the task's history, and
the fallback to the other channel, in one transaction.

Each receipt is stored on the ``notifications`` row of the message (found by Notify's
id, else by our ``reference``) and shown in the task's history as a ``notify_status``
event.

Statuses only move forward. ``sending`` (written by the sender) ranks lowest; the
temporary and technical failures next (Notify stopped trying, but a later receipt may
still say more); ``delivered`` and ``permanent-failure`` are final and never change. A
receipt that would move a status sideways or back, or repeats it, changes nothing, so
Notify's retries and out-of-order deliveries are harmless.

Fallback. A ``permanent-failure`` (the number or address does not exist) on a text
message is tried once by email when the reporter gave an email address, and the other
way round: an outbox row of kind ``notify`` keyed ``<original reference>:fallback``,
written in the same transaction as the receipt, so it is owed exactly once however many
times Notify repeats the receipt. A fallback's own permanent failure is not retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from responder.config.model import Council
from responder.messages import FALLBACK_SUFFIX, ResidentUpdate
from responder.store.history import append_event
from responder.store.outbox import enqueue
from responder.store.schema import contacts, notifications, outbox

_RANK = {
    "not-sent": 0,
    "sending": 0,
    "temporary-failure": 1,
    "technical-failure": 1,
    "delivered": 2,
    "permanent-failure": 2,
}
_CHANNEL = {"email": "Email", "sms": "Text message"}
_BY = {"email": "by email", "sms": "by text message"}
_ADDRESS = {"email": "email address", "sms": "phone number"}
_FAILURE = {
    "permanent-failure": "permanent failure",
    "temporary-failure": "temporary failure",
    "technical-failure": "technical failure",
}


@dataclass(frozen=True)
class Receipt:
    """The parts of a receipt Responder uses (``to`` deliberately absent)."""

    notify_id: str
    reference: str | None
    status: str
    completed_at: str | None


@dataclass(frozen=True)
class Applied:
    """What a receipt did. ``found`` False: no such message (see ``retry``)."""

    found: bool
    reference: str | None = None
    status: str | None = None  # the message's status now
    changed: bool = False
    fallback: str | None = None  # the fallback message's reference, when one was enqueued
    # Unknown, but the reference is one of ours still being sent: worth Notify's retry.
    retry: bool = False
    reason: str | None = None


def apply_receipt(conn: Connection, council: Council, receipt: Receipt, now: datetime) -> Applied:
    """Store a receipt on its message, record it in the task's history, fall back if due.

    One transaction; the message row is locked (PostgreSQL) so two copies of the same
    receipt arriving at once are applied once.
    """
    row = conn.execute(
        select(notifications)
        .where(notifications.c.notify_id == receipt.notify_id)
        .with_for_update()
    ).first()
    if row is None and receipt.reference is not None:
        row = conn.execute(
            select(notifications)
            .where(notifications.c.reference == receipt.reference)
            .with_for_update()
        ).first()
        if row is not None and row.notify_id not in (None, receipt.notify_id):
            # Another Notify message carries this reference; ours has its own receipts.
            return Applied(found=False, reason="another message has this reference")
    if row is None:
        pending = receipt.reference is not None and (
            conn.execute(
                select(outbox.c.id).where(outbox.c.idempotency_key == receipt.reference)
            ).first()
            is not None
        )
        return Applied(found=False, retry=pending, reason="unknown reference")

    old, new = row.status, receipt.status
    if _RANK.get(new, 0) <= _RANK.get(old, 0):
        # A repeat, or older news than we hold (Notify retried an earlier receipt late).
        return Applied(found=True, reference=row.reference, status=old)

    note = _note(row.channel, row.event, new)
    values: dict[str, Any] = {"status": new, "updated_at": now}
    if row.notify_id is None:
        values["notify_id"] = receipt.notify_id
    fallback = None
    if new == "permanent-failure":
        fallback, why = _fall_back(conn, council, row, now)
        note = f"{note}; {why}"
        if fallback is not None:
            values["fallback_reference"] = fallback
    values["detail"] = note
    conn.execute(update(notifications).where(notifications.c.id == row.id).values(values))
    append_event(
        conn,
        row.task_id,
        now,
        "notify",
        "notify_status",
        note=note,
        data={
            "reference": row.reference,
            "notify_id": receipt.notify_id,
            "event": row.event,
            "channel": row.channel,
            "status": new,
            "previous": old,
            "completed_at": receipt.completed_at,
            "fallback": fallback,
        },
    )
    return Applied(found=True, reference=row.reference, status=new, changed=True, fallback=fallback)


def _note(channel: str, event: str, status: str) -> str:
    what = f"{_CHANNEL.get(channel, channel)} '{event}'"
    if status == "delivered":
        return f"{what} delivered"
    return f"{what} could not be delivered ({_FAILURE.get(status, status)})"


def _fall_back(
    conn: Connection, council: Council, row: Any, now: datetime
) -> tuple[str | None, str]:
    """Enqueue the message on the other channel, once: (its reference or None, why)."""
    if row.fallback_reference is not None:
        return None, f"already sent {_BY.get(_other(row.channel) or '', '')} instead"
    was_fallback = row.reference.endswith(FALLBACK_SUFFIX) or (
        conn.execute(
            select(notifications.c.id).where(notifications.c.fallback_reference == row.reference)
        ).first()
        is not None
    )
    if was_fallback:
        return None, "no further fallback: this message was itself the fallback"
    other = _other(row.channel)
    if other is None:
        return None, f"no fallback for {row.channel} messages"
    templates = council.file.notify.events.get(row.event)
    template = None
    if templates is not None:
        template = templates.email_template if other == "email" else templates.sms_template
    if not template:
        return None, f"no fallback: the council has no {other} template for '{row.event}'"
    # Whether an address is held, never the address itself.
    held = conn.execute(
        select(
            contacts.c.email.is_not(None).label("email"),
            contacts.c.phone.is_not(None).label("sms"),
        ).where(contacts.c.report_id == row.report_id, contacts.c.erased_at.is_(None))
    ).first()
    if held is None:
        return None, "no fallback: the reporter's contact details are no longer held"
    if not (held.email if other == "email" else held.sms):
        return None, f"no fallback: the reporter gave no {_ADDRESS[other]}"
    same_event_other = ResidentUpdate.key(row.report_id, row.event, other)
    if conn.execute(
        select(outbox.c.id).where(outbox.c.idempotency_key == same_event_other)
    ).first():
        # The reporter asked for both: they have (or will have) this message already.
        return None, f"no fallback: the reporter gets this message {_BY[other]} already"
    message = ResidentUpdate(
        report_id=row.report_id,
        task_id=row.task_id,
        event=row.event,
        channel=other,
        template_id=template,
    )
    owed = message.fallback(row.reference, now)
    enqueue(conn, [owed])
    key = owed["idempotency_key"]
    return key, f"sending it {_BY[other]} instead"


def _other(channel: str) -> str | None:
    return {"sms": "email", "email": "sms"}.get(channel)
