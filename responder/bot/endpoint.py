"""``POST /api/messages``: every check before a turn, the same whichever runtime is chosen.

In order: JSON (415/400), the runtime's SDK reading of the activity (400), the Bot
Framework token (401; 503 when the signing keys cannot be fetched), the token's service
URL against the activity's (401), the council's tenant (403). Only then is the turn run,
so a refused request changes nothing. Errors answer in Responder's JSON error shape.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from responder.bot.handler import ResponderBot
from responder.bot.runtime import (
    KeysUnavailable,
    TeamsRuntime,
    Unauthorized,
    service_url_matches,
)
from responder.bot.turn import BadActivity, Turn
from responder.web import error_response

log = logging.getLogger("responder.bot")


def _unauthorized() -> web.Response:
    return error_response(
        401,
        "unauthorized",
        "The Bot Framework token is missing or not valid.",
        headers={"WWW-Authenticate": "Bearer"},
    )


class TeamsEndpoint:
    def __init__(
        self,
        runtime: TeamsRuntime,
        bot: ResponderBot,
        tenant_id: str | None,
        *,
        authenticate: bool,
    ) -> None:
        self.runtime = runtime
        self.bot = bot
        self.tenant_id = (tenant_id or "").lower() or None
        # Without an app id (local use with Agents Playground) nobody can be authenticated:
        # app.check_bot_credentials refuses that in production.
        self.authenticate = authenticate

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not request.content_type.endswith("json"):
            return error_response(415, "unsupported_media_type", "Activities are JSON.")
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):  # also too deep, or a 4300-digit integer
            return error_response(400, "malformed_json", "The body is not valid JSON.")
        if not isinstance(body, dict):
            return error_response(400, "invalid_activity", "An activity needs a 'type'.")
        try:
            turn = Turn.read(body)
            sdk_activity = self.runtime.check(body)
        except BadActivity as exc:
            return error_response(400, "invalid_activity", exc.message)
        if self.authenticate:
            try:
                claims = await self.runtime.authenticate(
                    request.headers.get("Authorization", ""), sdk_activity
                )
            except KeysUnavailable:
                return error_response(503, "unavailable", "Cannot verify the token just now.")
            except Unauthorized:
                return _unauthorized()
            if not service_url_matches(claims, turn):
                return _unauthorized()
            # Only a verified sender's tenant means anything: without an app id (local use,
            # e.g. Agents Playground, whose tenant is its own) any tenant could be claimed.
            if self.tenant_id and (turn.tenant_id or "").lower() != self.tenant_id:
                return error_response(
                    403, "forbidden", "This bot serves one council's tenant only."
                )
        answer = await self.bot.turn(turn)
        if answer is None:
            return web.Response(status=200)
        if answer.body is None:
            return web.Response(status=answer.status)
        return web.json_response(answer.body, status=answer.status)
