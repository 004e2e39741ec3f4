"""Which history events each subscriber is owed (``webhook.event`` outbox rows).

Called by every command that writes a history event a subscriber may want, in the same
transaction (Principle 1): the row names the event, and the sender reads the task and
the event when it posts, so nothing personal waits in the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from responder.config.model import Council
from responder.messages import WebhookEvent


def webhook_messages(
    council: Council, task_id: int, events: Iterable[tuple[int, str]], now: datetime
) -> list[dict[str, Any]]:
    """One row per (subscriber, event) for the events (id, action) each subscriber wants."""
    subscribers = council.file.subscribers
    if not subscribers:
        return []
    return [
        WebhookEvent.to(subscriber.name, event_id, task_id, now)
        for event_id, action in events
        for subscriber in subscribers
        if subscriber.wants(action)
    ]
