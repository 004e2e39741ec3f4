"""Systems told of every status change by signed webhook: the council file's ``subscribers``.

Each subscriber's signing secret is in the environment (``RESPONDER_WEBHOOK_SECRETS``,
``name:secret`` pairs), never in the file.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from responder.config.base import Strict

# What a subscriber hears of by default: everything that moves a task or its owner.
DEFAULT_EVENTS = frozenset(
    {
        "created",
        "duplicate_linked",
        "assign",
        "accept",
        "start",
        "update",
        "complete",
        "handback",
        "reassign",
        "cancel",
        "priority",
    }
)


class Subscriber(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    url: str = Field(min_length=1, max_length=2048)
    # History actions to send (created, accepted, started, completed, cancelled, ...);
    # None: every action that changes a task's status or owner (``webhooks``' default).
    events: list[str] | None = None

    def wants(self, action: str) -> bool:
        if self.events is not None:
            return action in self.events
        return action in DEFAULT_EVENTS


def check_subscribers(subscribers: list[Subscriber] | None) -> Iterator[str]:
    """Cross-reference problems of ``subscribers``."""
    return iter(())
