"""A Bot Connector on 127.0.0.1 that records what the bot sends and can misbehave on cue.

It speaks the Bot Connector REST API the way Teams' bot service does: POST an activity to
a conversation (201 with an id), reply to an activity, PUT to update one in place, GET a
conversation member's profile; and GET an inline image someone sent
(``/v3/attachments/{id}/views/original``), which needs the bot's Bearer token when the bot
has an app id.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    conversation_id: str
    activity_id: str | None  # the id created (POST) or updated (PUT)
    activity: dict[str, Any]
    at: float  # monotonic
    authorization: str | None

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.activity.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return attachment["content"]
        return None

    @property
    def text(self) -> str | None:
        return self.activity.get("text")


@dataclass
class FakeConnector:
    received: list[Received] = field(default_factory=list)
    # Scripted answers, taken in order before the normal one: (status, retry_after seconds).
    failures: deque[tuple[int, float | None]] = field(default_factory=deque)
    # Random failure rates, for fault tests: (share of 5xx, share of 429, retry_after).
    fault_rates: tuple[float, float, float] = (0.0, 0.0, 1.0)
    latency: float = 0.0
    url: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Condition | None = None
    # conversation -> monotonic time before which a request breaks the Retry-After it was given
    _blocked_until: dict[str, float] = field(default_factory=dict)
    retry_after_violations: int = 0
    # Inline images people sent, by attachment id: (content type, bytes).
    attachments: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    # The Bearer token an attachment GET must carry (None: the bot has no app id; any goes).
    attachment_token: str | None = None
    # (attachment id, Authorization header) of every attachment GET.
    attachment_requests: list[tuple[str, str | None]] = field(default_factory=list)
    # Attachment ids answered with a redirect to elsewhere (as a CDN might), by target URL.
    attachment_redirects: dict[str, str] = field(default_factory=dict)
    # Conversation members' Teams profiles, by Teams user id (GET .../members/{id}).
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (conversation id, member id) of every member look-up.
    member_requests: list[tuple[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conv}/activities", self._post)
        app.router.add_post("/v3/conversations/{conv}/activities/{reply_to}", self._post)
        app.router.add_put("/v3/conversations/{conv}/activities/{aid}", self._put)
        app.router.add_get("/v3/attachments/{aid}/views/{view}", self._attachment)
        app.router.add_get("/v3/conversations/{conv}/members/{member}", self._member)
        return app

    async def _member(self, request: web.Request) -> web.Response:
        conv, member = request.match_info["conv"], request.match_info["member"]
        self.member_requests.append((conv, member))
        if member not in self.members:
            return web.json_response(
                {"error": {"code": "MemberNotFoundInConversation", "message": "no member"}},
                status=404,
            )
        return web.json_response(self.members[member])

    def attachment_url(self, attachment_id: str) -> str:
        return f"{self.url.rstrip('/')}/v3/attachments/{attachment_id}/views/original"

    async def _attachment(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        authorization = request.headers.get("Authorization")
        self.attachment_requests.append((aid, authorization))
        if self.attachment_token is not None and authorization != (
            f"Bearer {self.attachment_token}"
        ):
            return web.json_response(
                {"error": {"code": "Unauthorized", "message": "bad token"}}, status=401
            )
        if aid in self.attachment_redirects:
            raise web.HTTPFound(self.attachment_redirects[aid])
        if aid not in self.attachments or request.match_info["view"] != "original":
            return web.json_response(
                {"error": {"code": "NotFound", "message": "no such attachment"}}, status=404
            )
        content_type, data = self.attachments[aid]
        return web.Response(body=data, content_type=content_type)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _answer(self, conv: str) -> web.Response | None:
        if self.latency:
            await asyncio.sleep(self.latency)
        if time.monotonic() < self._blocked_until.get(conv, 0.0):
            self.retry_after_violations += 1
        status, retry_after = (None, None)
        if self.failures:
            status, retry_after = self.failures.popleft()
        else:
            five, four29, after = self.fault_rates
            roll = random.random()
            if roll < five:
                status = random.choice([500, 502, 503])
            elif roll < five + four29:
                status, retry_after = 429, after
        if status is None:
            return None
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
            self._blocked_until[conv] = time.monotonic() + retry_after
        return web.json_response(
            {
                "error": {
                    "code": "Throttled" if status == 429 else "ServiceError",
                    "message": "scripted failure",
                }
            },
            status=status,
            headers=headers,
        )

    async def _record(self, item: Received) -> None:
        async with self._condition():
            self.received.append(item)
            self._condition().notify_all()

    async def _post(self, request: web.Request) -> web.Response:
        conv = request.match_info["conv"]
        failure = await self._answer(conv)
        if failure is not None:
            return failure
        activity = await request.json()
        activity_id = f"act-{next(self._ids)}"
        await self._record(
            Received(
                "POST",
                conv,
                activity_id,
                activity,
                time.monotonic(),
                request.headers.get("Authorization"),
            )
        )
        return web.json_response({"id": activity_id}, status=201)

    async def _put(self, request: web.Request) -> web.Response:
        conv, aid = request.match_info["conv"], request.match_info["aid"]
        failure = await self._answer(conv)
        if failure is not None:
            return failure
        activity = await request.json()
        await self._record(
            Received(
                "PUT", conv, aid, activity, time.monotonic(), request.headers.get("Authorization")
            )
        )
        return web.json_response({"id": aid}, status=200)

    async def wait_for(self, predicate, count: int = 1, within: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` received items satisfy ``predicate``; return them."""
        condition = self._condition()

        def matching() -> list[Received]:
            return [r for r in self.received if predicate(r)]

        async with condition:
            await asyncio.wait_for(condition.wait_for(lambda: len(matching()) >= count), within)
        return matching()

    def cards_to(self, conversation_id: str) -> list[Received]:
        return [r for r in self.received if r.conversation_id == conversation_id and r.card]
