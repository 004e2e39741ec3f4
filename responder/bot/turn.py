"""One incoming Teams activity as Responder reads it, whatever SDK authenticated it.

The runtime (``bot/runtime.py``) has already checked the activity against its SDK's schema
and the sender's token; this is the plain view the handler, the photo inbox and the
conversation store work on, read from the JSON as Teams sent it (camelCase keys). Nothing
here imports an SDK, so the handler survives a change of SDK or of chat platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BadActivity(ValueError):
    """The activity cannot be handled; ``message`` says why, for a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TurnAttachment:
    content_type: str
    content_url: str | None
    content: Any


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Turn:
    """What Responder reads of an activity (``raw`` keeps the rest, for the reference)."""

    type: str
    id: str | None
    name: str | None
    text: str | None
    value: Any
    channel_id: str
    service_url: str
    conversation_id: str
    conversation_type: str  # "personal", "channel" or "groupChat"
    tenant_id: str | None
    from_id: str | None
    from_aad: str | None
    recipient_id: str | None
    attachments: tuple[TurnAttachment, ...] = ()
    members_added: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def read(cls, body: dict[str, Any]) -> Turn:
        """The activity's parts; ``BadActivity`` when it lacks what every turn needs."""
        kind = body.get("type")
        conversation = _dict(body.get("conversation"))
        service_url = _text(body.get("serviceUrl"))
        conversation_id = _text(conversation.get("id"))
        if not isinstance(kind, str) or not kind:
            raise BadActivity("An activity needs a 'type'.")
        if not service_url or not conversation_id:
            raise BadActivity("An activity needs 'serviceUrl' and 'conversation'.")
        sender = _dict(body.get("from"))
        tenant = _dict(_dict(body.get("channelData")).get("tenant")).get("id")
        if tenant is None:
            tenant = conversation.get("tenantId")
        attachments = tuple(
            TurnAttachment(
                content_type=_text(a.get("contentType")) or "",
                content_url=_text(a.get("contentUrl")),
                content=a.get("content"),
            )
            for a in body.get("attachments") or ()
            if isinstance(a, dict)
        )
        added = tuple(
            m["id"]
            for m in body.get("membersAdded") or ()
            if isinstance(m, dict) and isinstance(m.get("id"), str)
        )
        return cls(
            type=kind,
            id=_text(body.get("id")),
            name=_text(body.get("name")),
            text=_text(body.get("text")),
            value=body.get("value"),
            channel_id=_text(body.get("channelId")) or "msteams",
            service_url=service_url,
            conversation_id=conversation_id,
            conversation_type=_text(conversation.get("conversationType")) or "personal",
            tenant_id=_text(tenant),
            from_id=_text(sender.get("id")),
            from_aad=_text(sender.get("aadObjectId")),
            recipient_id=_text(_dict(body.get("recipient")).get("id")),
            attachments=attachments,
            members_added=added,
            raw=body,
        )

    def reference(self) -> dict[str, Any]:
        """How to reach this conversation again: Bot Framework's ConversationReference.

        The same camelCase keys both SDKs serialise (``activityId``, ``user``, ``bot``,
        ``conversation``, ``channelId``, ``serviceUrl``, ``locale``), so stored rows read
        the same whichever runtime wrote them.
        """
        body = self.raw
        reference = {
            "activityId": self.id,
            "user": body.get("from"),
            "bot": body.get("recipient"),
            "conversation": body.get("conversation"),
            "channelId": self.channel_id,
            "locale": body.get("locale"),
            "serviceUrl": self.service_url,
        }
        return {k: v for k, v in reference.items() if v is not None}

    def without_mention(self) -> str:
        """The text with the bot's own @mention taken out (in channels Teams includes it)."""
        text = self.text or ""
        for entity in self.raw.get("entities") or ():
            if not isinstance(entity, dict) or entity.get("type") != "mention":
                continue
            mentioned = _dict(entity.get("mentioned")).get("id")
            shown = entity.get("text")
            if mentioned == self.recipient_id and isinstance(shown, str) and shown:
                text = text.replace(shown, "")
        return text.strip()
