"""Signed webhooks to subscribers, delivered through the outbox (``webhook.event``).

Filled in by issue 17: ``WebhookSender`` posts each ``WebhookEvent`` with an HMAC-SHA256
signature, an event id and a timestamp.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from responder.domain.context import Domain
from responder.jobs.dispatcher import Handler
from responder.settings import Settings
from responder.store.db import Database


class WebhookSender:
    def __init__(
        self,
        db: Database,
        domain: Domain,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.db, self.domain, self.settings, self.clock = db, domain, settings, clock

    def handlers(self) -> dict[str, Handler]:
        return {}

    async def close(self) -> None:
        return None
