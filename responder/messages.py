"""What the outbox carries: one typed definition per kind of message.

Each kind has its name (``KIND``), its payload (the model's fields) and its idempotency
keys (the named constructors), in one place used by every producer and by its handler.
Producers build a message and call ``.row(...)``; handlers call ``Kind.read(payload)``,
which raises ``UnreadablePayload`` for a payload that does not parse, and the dispatcher
parks such a row at once with the reason instead of retrying it for a day.

Payloads name things (a task, a person, a report), never carry personal data: contact
details are read at send time, so erasing them erases every message's reach too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from responder.store.outbox import outbox_row

FALLBACK_SUFFIX = ":fallback"  # a Notify message sent by the other channel instead


class UnreadablePayload(ValueError):
    """An outbox payload that is not its kind's: retrying cannot help."""


class Message(BaseModel):
    KIND: ClassVar[str]
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @classmethod
    def read(cls, payload: object) -> Self:
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            where = ", ".join(
                f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['type']}"
                for e in exc.errors(include_input=False, include_url=False)[:3]
            )
            raise UnreadablePayload(f"unreadable {cls.KIND} payload ({where})") from None

    def row(self, key: str, now: datetime, task_id: int | None = None) -> dict[str, Any]:
        """The outbox row owing this message once under ``key``."""
        payload = self.model_dump(exclude_defaults=True)
        return outbox_row(self.KIND, key, payload, now, task_id)


class TaskCard(Message):
    """A task's card sent to a person, or to its team's linked channel."""

    KIND: ClassVar[str] = "teams.card"
    task_id: int
    person: str | None = None
    team: str | None = None
    notice: str | None = None  # why it came (an escalation, an overdue alert)
    alert: bool = False

    @classmethod
    def to_person(cls, task_id: int, person: str, version: int, now: datetime) -> dict[str, Any]:
        """Sent once per task version; later changes refresh it in place."""
        key = f"card:{task_id}:{person}:{version}"
        return cls(task_id=task_id, person=person).row(key, now, task_id)

    @classmethod
    def to_team(cls, task_id: int, team: str, version: int, now: datetime) -> dict[str, Any]:
        key = f"card:{task_id}:team:{team}:{version}"
        return cls(task_id=task_id, team=team).row(key, now, task_id)

    @classmethod
    def alert_to(
        cls, task_id: int, manager: str, notice: str, reason: str, now: datetime
    ) -> dict[str, Any]:
        """A manager's fresh copy with why it came; ``reason`` names the alert (once each)."""
        key = f"{reason}:{task_id}:{manager}"
        message = cls(task_id=task_id, person=manager, notice=notice, alert=True)
        return message.row(key, now, task_id)


class CardRefresh(Message):
    """Update every copy of a task's card already sent, to this version."""

    KIND: ClassVar[str] = "teams.refresh"
    task_id: int
    version: int

    @classmethod
    def of(cls, task_id: int, version: int, now: datetime) -> dict[str, Any]:
        key = f"refresh:{task_id}:{version}"
        return cls(task_id=task_id, version=version).row(key, now, task_id)


class Notice(Message):
    """A line to one person about a task: a followed case moved, or work is nearly due."""

    KIND: ClassVar[str] = "teams.notice"
    person: str
    task_id: int
    status: str | None = None
    reminder: bool = False

    @classmethod
    def status_change(
        cls, task_id: int, version: int, person: str, status: str, now: datetime
    ) -> dict[str, Any]:
        key = f"notice:{task_id}:{version}:{person}"
        return cls(person=person, task_id=task_id, status=status).row(key, now, task_id)

    @classmethod
    def due_soon(cls, task_id: int, person: str, due_at: datetime, now: datetime) -> dict[str, Any]:
        key = f"remind:{task_id}:{due_at.isoformat()}"
        return cls(person=person, task_id=task_id, reminder=True).row(key, now, task_id)


class DigestDelivery(Message):
    """A team's digest to one manager, or to the team's channel (no person)."""

    KIND: ClassVar[str] = "teams.digest"
    digest_id: int
    team: str
    person: str | None = None

    @staticmethod
    def key(team: str, until: datetime, recipient: str) -> str:
        """One message per team, slot and recipient, ever."""
        return f"digest:{team}:{until.astimezone(UTC).isoformat()}:{recipient}"

    @classmethod
    def to(
        cls, digest_id: int, team: str, until: datetime, person: str | None, now: datetime
    ) -> dict[str, Any]:
        recipient = f"person:{person}" if person else f"channel:{team}"
        message = cls(digest_id=digest_id, team=team, person=person)
        return message.row(cls.key(team, until, recipient), now)


class ResidentUpdate(Message):
    """A GOV.UK Notify email or text to a reporter about their report."""

    KIND: ClassVar[str] = "notify"
    report_id: int
    task_id: int
    event: str  # received, completed, ...
    channel: str  # email or sms
    template_id: str

    @staticmethod
    def key(report_id: int, event: str, channel: str) -> str:
        """Also Notify's ``reference``: receipts find the message by it."""
        return f"notify:{report_id}:{event}:{channel}"

    def owed(self, now: datetime) -> dict[str, Any]:
        return self.row(self.key(self.report_id, self.event, self.channel), now, self.task_id)

    def fallback(self, reference: str, now: datetime) -> dict[str, Any]:
        """This message, by the other channel, owed because ``reference`` could not be."""
        return self.row(reference + FALLBACK_SUFFIX, now, self.task_id)


class PhotoFetch(Message):
    """A photo a source linked to (Open311 ``media_url``, a form's upload link), to fetch
    and add to the task, or to record as unfetchable (``responder/fetching``)."""

    KIND: ClassVar[str] = "fetch.photo"
    task_id: int
    source: str  # whose photo_hosts allow it
    url: str
    report_id: int | None = None  # the report it came with (None: a citizen update)
    update: str | None = None  # the citizen update it came with, by its update id

    @classmethod
    def of(
        cls,
        task_id: int,
        source: str,
        url: str,
        key: str,
        now: datetime,
        *,
        report_id: int | None = None,
        update: str | None = None,
    ) -> dict[str, Any]:
        """``key`` names the photo once, e.g. ``photo:report:{report_id}:{index}``."""
        message = cls(task_id=task_id, source=source, url=url, report_id=report_id, update=update)
        return message.row(key, now, task_id)


class WebhookEvent(Message):
    """One history event of a task, signed and posted to one subscriber."""

    KIND: ClassVar[str] = "webhook.event"
    subscriber: str
    event_id: int  # task_events.id: the webhook's event id, once per subscriber
    task_id: int

    @classmethod
    def to(cls, subscriber: str, event_id: int, task_id: int, now: datetime) -> dict[str, Any]:
        key = f"webhook:{subscriber}:{event_id}"
        return cls(subscriber=subscriber, event_id=event_id, task_id=task_id).row(key, now, task_id)


KINDS: dict[str, type[Message]] = {
    kind.KIND: kind
    for kind in (
        TaskCard,
        CardRefresh,
        Notice,
        DigestDelivery,
        ResidentUpdate,
        PhotoFetch,
        WebhookEvent,
    )
}
