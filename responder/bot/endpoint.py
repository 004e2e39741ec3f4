"""``POST /api/messages``: checks what the SDK leaves unchecked, then hands over to CloudAdapter.

The SDK answers a malformed body with a 500 and knows nothing of the council's tenant;
here every bad request gets a precise 4xx and is never processed.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import requests
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticationConstants as Auth
from msrest.serialization import Model

from responder.bot.handler import ResponderBot
from responder.incidents import log_incident
from responder.settings import Settings
from responder.web import error_response

log = logging.getLogger("responder.bot")


def _tenant_of(activity: Activity) -> str | None:
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = (channel_data.get("tenant") or {}).get("id")
    if tenant is None and activity.conversation is not None:
        tenant = activity.conversation.tenant_id
    return tenant


class TeamsEndpoint:
    def __init__(self, settings: Settings, bot: ResponderBot, tenant_id: str | None) -> None:
        config = SimpleNamespace(
            APP_ID=settings.app_id,
            APP_PASSWORD=settings.app_password,
            APP_TYPE=settings.app_type,
            APP_TENANTID=settings.app_tenant_id,
        )
        if settings.bot_openid_metadata_url:
            # The SDK's "parameterized" cloud: public-cloud values but our metadata URL.
            config.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.bot_openid_metadata_url
            config.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = Auth.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
            config.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = settings.bot_openid_metadata_url
            config.TO_CHANNEL_FROM_BOT_LOGIN_URL = Auth.TO_CHANNEL_FROM_BOT_LOGIN_URL
            config.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = Auth.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
            config.OAUTH_URL = Auth.OAUTH_URL
        self.auth = ConfigurationBotFrameworkAuthentication(config)
        self.adapter = CloudAdapter(self.auth)
        self.adapter.on_turn_error = self._on_error
        self.bot = bot
        self.tenant_id = (tenant_id or "").lower() or None

    async def _on_error(self, turn_context: TurnContext, error: Exception) -> None:
        # The exception text may quote what the person typed: type, place and id only.
        incident = log_incident(log, "turn failed", error)
        await turn_context.send_activity(
            f"Sorry, something went wrong on my side (incident {incident}). Try again?"
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not request.content_type.endswith("json"):
            return error_response(415, "unsupported_media_type", "Activities are JSON.")
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):  # also too deep, or a 4300-digit integer
            return error_response(400, "malformed_json", "The body is not valid JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return error_response(400, "invalid_activity", "An activity needs a 'type'.")
        try:
            activity = Activity().deserialize(body)
        except Exception:  # msrest raises several types for shapes it cannot read
            return error_response(400, "invalid_activity", "The activity could not be read.")
        if not activity.service_url or activity.conversation is None:
            return error_response(
                400, "invalid_activity", "An activity needs 'serviceUrl' and 'conversation'."
            )
        try:
            auth = await self.auth.authenticate_request(
                activity, request.headers.get("Authorization", "")
            )
        except requests.RequestException:
            # Bot Framework's signing keys could not be fetched: we cannot tell, so refuse.
            return error_response(503, "unavailable", "Cannot verify the token just now.")
        except Exception:  # the SDK raises bare Exceptions (and IndexError) for bad tokens
            return error_response(
                401,
                "unauthorized",
                "The Bot Framework token is missing or not valid.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if self.tenant_id and (_tenant_of(activity) or "").lower() != self.tenant_id:
            return error_response(403, "forbidden", "This bot serves one council's tenant only.")
        if await self.bot.quick_turn(activity):
            return web.Response(status=200)
        invoke = await self.adapter.process_activity(auth, activity, self.bot.on_turn)
        if invoke is None:
            return web.Response(status=200)
        body_out = invoke.body.serialize() if isinstance(invoke.body, Model) else invoke.body
        return web.json_response(body_out, status=invoke.status)
