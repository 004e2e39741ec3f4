"""Which history events each subscriber is owed (``webhook.event`` outbox rows).

Called by every command that writes a history event a subscriber may want, in the same
transaction (Principle 1): the row names the event, and the sender reads the task and
the event when it posts, so nothing personal waits in the outbox.

Order. The dispatcher sends a task's steps in order (rows of one transaction are one step,
by equal ``created_at``) but the rows of one step side by side. One command may write
several events (a hand-back is ``handback`` then the re-routing's ``assign``), so each
event after the first is made a step of its own, a microsecond later: a subscriber hears
of them in the order they were written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from responder.config.model import Council
from responder.messages import WebhookEvent


def webhook_messages(
    council: Council, task_id: int, events: Iterable[tuple[int, str]], now: datetime
) -> list[dict[str, Any]]:
    """One row per (subscriber, event) for the events (id, action) each subscriber wants,
    in the order given (the order they were written)."""
    subscribers = council.file.subscribers
    if not subscribers:
        return []
    return [
        WebhookEvent.to(subscriber.name, event_id, task_id, now + timedelta(microseconds=i))
        for i, (event_id, action) in enumerate(events)
        for subscriber in subscribers
        if subscriber.wants(action)
    ]
