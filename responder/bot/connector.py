"""A small async client for the Bot Connector REST API (what Teams' bot service speaks).

Every message to Teams goes out through here: replies in a turn, proactive cards, in-place
updates, member look-ups. Neither SDK's connector fits: botbuilder's sends with blocking
``requests``; the Agents SDK's opens a new HTTP session for every turn; neither honours
``Retry-After``. Retrying is the dispatcher's job; this client reports what happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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


class TokenUnavailable(aiohttp.ClientError):
    """No token for Teams just now (Entra unreachable, or the sign-in refused): a failed
    call like any other network failure, so replies log it and the dispatcher retries."""


class TokenProvider:
    """Bearer tokens for outgoing calls, from the runtime's sign-in (``bot/runtime.py``);
    none when the bot runs without an app id (local use). A token is reused for half an
    hour (they last an hour), so a burst of cards does not queue on the token source."""

    def __init__(self, fetch: Callable[[], Awaitable[str]] | None) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def header(self) -> dict[str, str]:
        if self._fetch is None:
            return {}
        async with self._lock:
            if self._token is None or time.monotonic() > self._expires:
                try:
                    self._token = await self._fetch()
                except Exception as exc:  # MSAL and the SDKs raise many types
                    # Its text may hold the sign-in's details: the type only.
                    raise TokenUnavailable(type(exc).__name__) from None
                self._expires = time.monotonic() + 30 * 60
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

    async def member(
        self, service_url: str, conversation_id: str, member_id: str
    ) -> dict[str, Any] | None:
        """A conversation member's Teams profile (``aadObjectId``, name, ...), or None."""
        url = f"{self._base(service_url, conversation_id)}/members/{quote(member_id, safe='')}"
        headers = await self._tokens.header()
        async with self._session.get(url, headers=headers) as resp:
            if resp.status != 200:
                return None
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                return None
        return data if isinstance(data, dict) else None
