"""GOV.UK Notify delivery receipts: ``POST /api/notify/callback``, and the channel fallback.

Notify POSTs one JSON object per message when it knows what became of it (``id``,
``reference``, ``to``, ``status``, ``created_at``, ``completed_at``, ``sent_at``,
``notification_type``, ``template_id``, ``template_version``), with
``Authorization: Bearer <the callback token given to Notify>``. A non-2xx answer is
retried every 5 minutes, up to 5 times.

Each receipt is stored on the ``notifications`` row of the message (found by Notify's
id, else by our ``reference``) and shown in the task's history as a ``notify_status``
event. ``to`` (the resident's address) is validated as a string and otherwise never
read: not stored, not logged, not echoed in an error (Principle 5).

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

import hmac
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Connection, select, update

from responder.config.model import Council
from responder.messages import FALLBACK_SUFFIX, ResidentUpdate
from responder.store.db import Database
from responder.store.history import append_event
from responder.store.outbox import enqueue
from responder.store.schema import contacts, notifications, outbox
from responder.web import error_response

log = logging.getLogger("responder.notify.receipts")

PATH = "/api/notify/callback"
MAX_BODY = 64 * 1024

# What Notify sends in a delivery receipt.
STATUSES = ("delivered", "permanent-failure", "temporary-failure", "technical-failure")
# A stored status is replaced only by one of higher rank (unknown statuses rank lowest).
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
_STRING_FIELDS = ("reference", "to", "notification_type", "template_id")
_TIME_FIELDS = ("created_at", "completed_at", "sent_at")


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


# -- the HTTP edge -------------------------------------------------------------------------


def routes(
    token: str, db: Database, council: Council, clock: Callable[[], datetime]
) -> list[web.RouteDef]:
    """The callback route, bound to the token, the database and the council's templates."""
    if not token:
        log.warning("NOTIFY_CALLBACK_TOKEN is empty: %s will refuse every delivery receipt", PATH)
    secret = token.encode()

    async def callback(request: web.Request) -> web.Response:
        refused = _authenticate(request, secret)
        if refused is not None:
            return refused
        data = await _read_json(request)
        if isinstance(data, web.Response):
            return data
        receipt = parse_receipt(data)
        if isinstance(receipt, list):
            count = len(receipt)
            return error_response(
                422,
                "invalid_receipt",
                f"The delivery receipt has {count} problem{'s' if count != 1 else ''}.",
                receipt,
            )
        now = clock()
        applied = await db.run(lambda conn: apply_receipt(conn, council, receipt, now))
        if not applied.found:
            if applied.retry:
                # Notify can call back before the sender has recorded the message (it
                # writes the row once Notify has answered). Not 2xx, so Notify retries in
                # 5 minutes, by when the row exists.
                return error_response(
                    404,
                    "not_found",
                    "No message with this reference has been recorded yet; try again later.",
                )
            # Not ours (another system on the same Notify service, a message sent with a
            # test key elsewhere, a task since deleted): retrying cannot make it known, so
            # 200 stops Notify's retries. Nothing is stored.
            log.info("ignored a Notify receipt: %s", applied.reason)
            return web.json_response({"ignored": applied.reason})
        log.info(
            "Notify receipt for %s: %s%s%s",
            applied.reference,
            receipt.status,
            "" if applied.changed else " (no change)",
            f", fallback {applied.fallback}" if applied.fallback else "",
        )
        return web.json_response(
            {
                "reference": applied.reference,
                "status": applied.status,
                "changed": applied.changed,
                "fallback": applied.fallback,
            }
        )

    return [web.post(PATH, callback)]


def _authenticate(request: web.Request, secret: bytes) -> web.Response | None:
    challenge = {"WWW-Authenticate": 'Bearer realm="notify-callback"'}
    if not secret:
        return error_response(
            401,
            "unauthorized",
            "NOTIFY_CALLBACK_TOKEN is not set, so every delivery receipt is refused; "
            "set it to the bearer token given to GOV.UK Notify.",
            headers=challenge,
        )
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error_response(
            401,
            "unauthorized",
            "Send 'Authorization: Bearer <NOTIFY_CALLBACK_TOKEN>'.",
            headers=challenge,
        )
    if not hmac.compare_digest(token.strip().encode(), secret):
        return error_response(
            401, "unauthorized", "The callback token is not recognised.", headers=challenge
        )
    return None


async def _read_json(request: web.Request) -> Any:
    too_large = error_response(
        413, "request_entity_too_large", f"The receipt is larger than {MAX_BODY // 1024} KB."
    )
    if request.content_length is not None and request.content_length > MAX_BODY:
        return too_large
    raw = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):  # chunked bodies too
        raw += chunk
        if len(raw) > MAX_BODY:
            return too_large
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The parser's message could quote the body (an address): say only where it broke.
        return error_response(400, "malformed_json", "The body is not valid JSON.")


def parse_receipt(data: Any) -> Receipt | list[dict[str, str]]:
    """The receipt, or the problems with it. Problems name fields, never quote values."""
    if not isinstance(data, dict):
        return [{"field": "body", "problem": "must be a JSON object"}]
    problems: list[dict[str, str]] = []
    notify_id = data.get("id")
    if notify_id is None:
        problems.append({"field": "id", "problem": "is required"})
    elif not isinstance(notify_id, str) or not _is_uuid(notify_id):
        problems.append({"field": "id", "problem": "must be Notify's notification id (a UUID)"})
    status = data.get("status")
    if status is None:
        problems.append({"field": "status", "problem": "is required"})
    elif status not in STATUSES:
        problems.append({"field": "status", "problem": f"must be one of {', '.join(STATUSES)}"})
    for name in _STRING_FIELDS:
        if data.get(name) is not None and not isinstance(data[name], str):
            problems.append({"field": name, "problem": "must be a string or null"})
    reference = data.get("reference")
    if isinstance(reference, str) and len(reference) > 200:
        problems.append({"field": "reference", "problem": "must be at most 200 characters"})
    kind = data.get("notification_type")
    if isinstance(kind, str) and kind not in ("email", "sms", "letter"):
        problems.append({"field": "notification_type", "problem": "must be email, sms or letter"})
    for name in _TIME_FIELDS:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or not _is_time(value)):
            problems.append({"field": name, "problem": "must be an ISO 8601 time or null"})
    version = data.get("template_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        problems.append({"field": "template_version", "problem": "must be a whole number"})
    if problems:
        return problems
    assert isinstance(notify_id, str) and isinstance(status, str)  # checked above
    return Receipt(
        notify_id=notify_id,
        reference=reference or None,
        status=status,
        completed_at=data.get("completed_at"),
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_time(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# -- the command ---------------------------------------------------------------------------


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
