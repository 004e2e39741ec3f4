"""Systems told of every status change by signed webhook: the council file's ``subscribers``.

Each subscriber's signing secret is in the environment (``RESPONDER_WEBHOOK_SECRETS``,
``name:secret`` pairs), never in the file. See ``docs/webhooks.md``.

```yaml
subscribers:
  - name: council-crm                      # its secret: RESPONDER_WEBHOOK_SECRETS=council-crm:...
    url: https://crm.example.gov.uk/hooks/responder
  - name: govservice
    url: https://sample-borough.govservice.uk/api/responder
    events: [created, complete, cancel]    # only these (default: every change below)
```
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from pydantic import Field

from responder.config.base import Strict
from responder.config.wording import duplicates, hint

# What a subscriber hears of by default: everything that moves a task or its owner. These
# are history actions (``task_events.action``); each command that writes one of them owes
# the webhooks in the same transaction (``commands/subscribers.webhook_messages``, called by
# ``commands/create`` and ``commands/act``).
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
# Every action a subscriber may ask for: the defaults, and, sent only to subscribers that
# list them, a resident's comment or photo on a report (Open311 ``servicerequestupdates``
# POST, ``commands/citizen_updates``), a photo added (an officer's from Teams,
# ``commands/photos``; a source's, fetched, ``commands/source_photos``) and a source's photo
# that could not be fetched. Only actions whose commands owe webhooks belong here: a name
# listed but never sent would be a silent gap. (The history's other actions, ``notify``,
# ``notify_status``, ``undelivered``, ``contact_erased``, are about messages and records.)
KNOWN_EVENTS = DEFAULT_EVENTS | {"citizen_update", "photo", "photo_failed"}
# The webhook's ``type`` for each action (``task.<past tense>``); see docs/webhooks.md.
EVENT_TYPES = {
    "created": "task.created",
    "duplicate_linked": "task.duplicate_linked",
    "assign": "task.assigned",
    "accept": "task.accepted",
    "start": "task.started",
    "update": "task.updated",
    "complete": "task.completed",
    "handback": "task.handed_back",
    "reassign": "task.reassigned",
    "cancel": "task.cancelled",
    "priority": "task.priority_changed",
    "citizen_update": "task.citizen_update",
    "photo": "task.photo_added",
    "photo_failed": "task.photo_failed",
}


def event_type(action: str) -> str:
    """The webhook's ``type`` for a history action."""
    return EVENT_TYPES.get(action, f"task.{action}")


class Subscriber(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    url: str = Field(min_length=1, max_length=2048)
    # History actions to send (created, accept, start, complete, cancel, ...);
    # None: every action that changes a task's status or owner (``DEFAULT_EVENTS``).
    events: list[str] | None = None

    def wants(self, action: str) -> bool:
        if self.events is not None:
            return action in self.events
        return action in DEFAULT_EVENTS


def check_subscribers(subscribers: list[Subscriber] | None) -> Iterator[str]:
    """Cross-reference problems of ``subscribers``, one line each (``config/load.py``)."""
    items = list(enumerate(subscribers or []))
    yield from duplicates(((f"subscribers[{i}].name", s.name) for i, s in items), "subscriber name")
    known = sorted(KNOWN_EVENTS)
    for i, subscriber in items:
        at = f"subscribers[{i}]"
        yield from _check_url(f"{at}.url", subscriber.url)
        if subscriber.events is None:
            continue
        if not subscriber.events:
            yield (
                f"{at}.events: an empty list sends nothing; leave events out for every "
                f"change, or list some of: {', '.join(known)}"
            )
        for j, action in enumerate(subscriber.events):
            if action not in KNOWN_EVENTS:
                yield f"{at}.events[{j}]: unknown event {action!r}{_event_hint(action, known)}"
        yield from duplicates(
            ((f"{at}.events[{j}]", action) for j, action in enumerate(subscriber.events)),
            "event",
        )


def _check_url(at: str, url: str) -> Iterator[str]:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        yield f"{at}: the port is not a number, got {url!r}"
        return
    if parts.username is not None or parts.password is not None:
        # The signature proves who is calling; a password in the file would be a secret
        # outside the environment (so the URL is not quoted back either).
        yield f"{at}: no user name or password in the URL (each delivery is signed instead)"
        return
    local = parts.hostname in ("localhost", "127.0.0.1")
    if not (parts.scheme == "https" and parts.hostname) and not (parts.scheme == "http" and local):
        yield (
            f"{at}: should start with https:// (http:// only for localhost or 127.0.0.1), "
            f"got {url!r}"
        )


def _event_hint(action: str, known: list[str]) -> str:
    """``(did you mean 'complete'?)`` also for the webhook type's own words
    (``completed``, ``task.completed``), else the known names."""
    by_type = {t: a for a, t in EVENT_TYPES.items() if a in KNOWN_EVENTS}
    by_type |= {t.removeprefix("task."): a for t, a in list(by_type.items())}
    if action in by_type:
        return f" (did you mean {by_type[action]!r}?)"
    return hint(action, known)
