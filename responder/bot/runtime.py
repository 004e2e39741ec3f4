"""The seam between Responder and a Teams SDK: what each runtime must do, and nothing more.

Responder runs its own turns (``bot/handler.py``) and sends through its own Bot Connector
client (``bot/connector.py``: one session, paced, ``Retry-After`` honoured, which neither
SDK does). What it takes from an SDK is what is not its domain and must be right:

- reading an activity against the SDK's schema (``check``);
- proving who sent it: the Bot Framework token's signature, issuer, audience and expiry
  (``authenticate``), with the SDK's own validator;
- proving who we are to Teams: access tokens for outgoing calls (``access_token``), by
  every way a council signs in (client secret, certificate, managed identity, federated).

Two runtimes implement it: the Microsoft 365 Agents SDK (``runtime_agents.py``, the
default) and botbuilder 4.17 (``runtime_botbuilder.py``, the ``responder[botbuilder]``
extra, for a council that pinned it). Only those two modules import an SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from responder.bot.turn import Turn
from responder.settings import Settings, TeamsRuntimeName

# What outgoing calls to the Bot Connector ask Entra for (both SDKs' default).
BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
# Bot Framework's own tenant: where a multi-tenant bot gets its channel tokens.
BOT_FRAMEWORK_TENANT = "botframework.com"


class Unauthorized(Exception):
    """The token is missing, malformed, forged, expired or for someone else (401)."""


class KeysUnavailable(Exception):
    """The signing keys could not be fetched: we cannot tell, so we refuse (503)."""


class TeamsRuntime(Protocol):
    name: TeamsRuntimeName

    def check(self, body: dict[str, Any]) -> object:
        """The SDK's reading of the activity; ``BadActivity`` when its schema refuses it."""
        ...

    async def authenticate(self, header: str, sdk_activity: object) -> Mapping[str, Any]:
        """The verified token's claims; ``Unauthorized`` or ``KeysUnavailable``."""
        ...

    async def access_token(self) -> str:
        """A Bearer token for the Bot Connector, as this bot (MSAL caches it)."""
        ...


def service_url_matches(claims: Mapping[str, Any], turn: Turn) -> bool:
    """Whether the token was issued for the service the activity tells us to answer.

    Without this a token for one service URL could make the bot send its own token to
    another. botbuilder checks it; the Agents SDK 1.9 only logs a warning, so Responder
    checks it here, one rule for both runtimes.
    """
    claimed = claims.get("serviceurl")
    if not isinstance(claimed, str):
        return False
    return _normalised(claimed) == _normalised(turn.service_url)


def _normalised(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip())
    return (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"))


def make_runtime(settings: Settings) -> TeamsRuntime:
    """The runtime the settings choose (``RESPONDER_TEAMS_RUNTIME``), imported only then."""
    if settings.teams_runtime == "botbuilder":
        from responder.bot.runtime_botbuilder import BotbuilderRuntime

        return BotbuilderRuntime(settings)
    from responder.bot.runtime_agents import AgentsRuntime

    return AgentsRuntime(settings)
