"""Photos sources link to, fetched through the outbox (``fetch.photo``).

Filled in by issue 17: a ``PhotoFetcher`` fetches each ``PhotoFetch`` safely and adds the
photo to its task, or records on the task that it could not be fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from responder.domain.context import Domain
from responder.jobs.dispatcher import Handler
from responder.settings import Settings
from responder.store.db import Database


class PhotoFetcher:
    def __init__(
        self,
        db: Database,
        domain: Domain,
        settings: Settings,
        public_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.db, self.domain, self.settings = db, domain, settings
        self.public_url, self.clock = public_url, clock

    def handlers(self) -> dict[str, Handler]:
        return {}

    async def close(self) -> None:
        return None
