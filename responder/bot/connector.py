"""A small async client for the Bot Connector REST API (what Teams' bot service speaks).

Proactive sends and in-place updates go through here rather than the SDK's connector,
which sends with blocking ``requests`` on the event loop's thread pool and never retries.
Retrying is the dispatcher's job; this client reports what happened.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

CARD_TYPE = "application/vnd.microsoft.card.adaptive"


@dataclass(frozen=True)
class ConnectorReply:
    status: int
    body: dict[str, Any]
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class TokenProvider:
    """Bearer tokens for outgoing calls; none when the bot runs without an app id (local use)."""

    def __init__(self, app_id: str, password: str, tenant_id: str = "") -> None:
        self._credentials = None
        if app_id:
            from botframework.connector.auth import MicrosoftAppCredentials

            self._credentials = MicrosoftAppCredentials(
                app_id, password, channel_auth_tenant=tenant_id or None
            )
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def header(self) -> dict[str, str]:
        if self._credentials is None:
            return {}
        async with self._lock:
            if self._token is None or time.monotonic() > self._expires:
                # MSAL is synchronous: keep it off the event loop.
                self._token = await asyncio.to_thread(self._credentials.get_access_token)
                self._expires = time.monotonic() + 30 * 60  # tokens last an hour; renew early
        return {"Authorization": f"Bearer {self._token}"}


def card_activity(card: dict[str, Any]) -> dict[str, Any]:
    """Cards travel alone: a card sent beside text may come back without an updatable id."""
    return {"type": "message", "attachments": [{"contentType": CARD_TYPE, "content": card}]}


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from Teams; the caller backs off instead


class Connector:
    def __init__(self, session: aiohttp.ClientSession, tokens: TokenProvider) -> None:
        self._session = session
        self._tokens = tokens

    async def _call(self, method: str, url: str, body: dict[str, Any]) -> ConnectorReply:
        headers = await self._tokens.header()
        async with self._session.request(method, url, json=body, headers=headers) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                data = None
            return ConnectorReply(
                resp.status, data if isinstance(data, dict) else {}, _retry_after(resp.headers)
            )

    @staticmethod
    def _base(service_url: str, conversation_id: str) -> str:
        return f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}"

    async def send(
        self, service_url: str, conversation_id: str, activity: dict[str, Any]
    ) -> ConnectorReply:
        return await self._call(
            "POST", f"{self._base(service_url, conversation_id)}/activities", activity
        )

    async def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> ConnectorReply:
        url = f"{self._base(service_url, conversation_id)}/activities/{quote(activity_id, safe='')}"
        return await self._call("PUT", url, {**activity, "id": activity_id})
