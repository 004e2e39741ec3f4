"""Teams activity JSON as Teams sends it to a bot, for tests through /api/messages."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import yaml

from fakes import EXAMPLES

TENANT = "5b1c2d3e-0000-4000-8000-00000000c0de"  # examples/council.yaml's tenant_id
BOT = {"id": "28:responder-bot-id", "name": "Responder"}
_ids = itertools.count(1)
_PEOPLE = {p["id"]: p for p in yaml.safe_load((EXAMPLES / "council.yaml").read_text())["people"]}


def user(person_id: str) -> dict[str, Any]:
    """The Teams user behind a person of the example council (a stranger otherwise)."""
    person = _PEOPLE.get(person_id)
    aad = person["aad_object_id"] if person else "99999999-0000-4000-8000-0000000000ff"
    name = person["name"] if person else "Someone Else"
    return {"id": f"29:user-{person_id}", "name": name, "aadObjectId": aad}


def personal_conversation(person_id: str) -> str:
    return f"a:personal-{person_id}"


def activity(
    kind: str,
    person_id: str,
    service_url: str,
    *,
    channel_team: str | None = None,
    tenant: str = TENANT,
    **extra: Any,
) -> dict[str, Any]:
    if channel_team:
        conversation = {
            "conversationType": "channel",
            "isGroup": True,
            "tenantId": tenant,
            "id": f"19:{channel_team}@thread.tacv2;messageid=1",
        }
        channel_data = {
            "tenant": {"id": tenant},
            "team": {"id": f"19:{channel_team}@thread"},
            "channel": {"id": f"19:{channel_team}@thread.tacv2"},
        }
    else:
        conversation = {
            "conversationType": "personal",
            "tenantId": tenant,
            "id": personal_conversation(person_id),
        }
        channel_data = {"tenant": {"id": tenant}}
    return {
        "type": kind,
        "id": f"f:{next(_ids)}",
        "timestamp": datetime.now(UTC).isoformat(),
        "localTimestamp": datetime.now(UTC).isoformat(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": user(person_id),
        "conversation": conversation,
        "recipient": BOT,
        "entities": [{"type": "clientInfo", "locale": "en-GB", "platform": "Android"}],
        "channelData": channel_data,
        "locale": "en-GB",
        **extra,
    }


def message(person_id: str, text: str, service_url: str, **kw: Any) -> dict[str, Any]:
    return activity("message", person_id, service_url, text=text, textFormat="plain", **kw)


def install(person_id: str, service_url: str, **kw: Any) -> dict[str, Any]:
    """What Teams sends when a person adds the bot in personal scope."""
    return activity(
        "conversationUpdate", person_id, service_url, membersAdded=[BOT, user(person_id)], **kw
    )


def card_action(
    person_id: str, verb: str, data: dict[str, Any], service_url: str, **kw: Any
) -> dict[str, Any]:
    """An Action.Execute click (inputs are merged into data, as Teams does)."""
    value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
    return activity("invoke", person_id, service_url, name="adaptiveCard/action", value=value, **kw)
