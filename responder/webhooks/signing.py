"""Signing a webhook: HMAC-SHA256 over ``<timestamp>.<body>`` with the subscriber's secret.

``Responder-Signature: t=<unix seconds>,v1=<hex digest>``, as Stripe signs its webhooks,
so a receiver checks who sent it (the secret), that the body is untouched (the digest)
and that it is fresh (the timestamp is signed too, so an old delivery cannot be replayed
with a new time). ``docs/webhooks.md`` shows a receiver's check in Python and shell.
"""

from __future__ import annotations

import hashlib
import hmac

from responder import __version__

SIGNATURE_HEADER = "Responder-Signature"
EVENT_ID_HEADER = "Responder-Event-Id"
TIMESTAMP_HEADER = "Responder-Timestamp"
USER_AGENT = f"Responder/{__version__}"


def digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={digest(secret, timestamp, body)}"


def headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
