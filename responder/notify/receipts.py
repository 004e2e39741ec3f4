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

What a receipt changes (statuses only move forward, the channel fallback) is the command
``responder/commands/receipts.py``; this module is the HTTP edge.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from responder.commands.receipts import Receipt, apply_receipt
from responder.config.model import Council
from responder.store.db import Database
from responder.web import error_response

log = logging.getLogger("responder.notify.receipts")

PATH = "/api/notify/callback"
MAX_BODY = 64 * 1024

# What Notify sends in a delivery receipt.
STATUSES = ("delivered", "permanent-failure", "temporary-failure", "technical-failure")
# A stored status is replaced only by one of higher rank (unknown statuses rank lowest).
_STRING_FIELDS = ("reference", "to", "notification_type", "template_id")
_TIME_FIELDS = ("created_at", "completed_at", "sent_at")


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
