"""botbuilder 4.17 behind Responder's Teams seam (``bot/runtime.py``), for a council that
pinned it: ``pip install 'responder[botbuilder]'`` and ``RESPONDER_TEAMS_RUNTIME=botbuilder``.

botbuilder-python is archived and out of support: the Agents SDK runtime is the default.
This one signs in with a client secret only (``responder.app.check_bot_credentials``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import requests
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticationConstants as Auth
from botframework.connector.auth import MicrosoftAppCredentials

from responder.bot.runtime import BOT_FRAMEWORK_TENANT, KeysUnavailable, Unauthorized
from responder.bot.turn import BadActivity
from responder.settings import Settings, TeamsRuntimeName


class BotbuilderRuntime:
    name: TeamsRuntimeName = "botbuilder"

    def __init__(self, settings: Settings) -> None:
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
        self._auth = ConfigurationBotFrameworkAuthentication(config)
        self._credentials = (
            MicrosoftAppCredentials(
                settings.app_id,
                settings.app_password,
                channel_auth_tenant=settings.app_tenant_id or BOT_FRAMEWORK_TENANT,
            )
            if settings.app_id
            else None
        )

    def check(self, body: dict[str, Any]) -> Activity:
        try:
            return Activity().deserialize(body)
        except Exception:  # msrest raises several types for shapes it cannot read
            raise BadActivity("The activity could not be read.") from None

    async def authenticate(self, header: str, sdk_activity: object) -> Mapping[str, Any]:
        try:
            result = await self._auth.authenticate_request(sdk_activity, header)
        except requests.RequestException:
            raise KeysUnavailable from None
        except Exception:  # the SDK raises bare Exceptions (and IndexError) for bad tokens
            raise Unauthorized from None
        return dict(result.claims_identity.claims or {})

    async def access_token(self) -> str:
        if self._credentials is None:
            raise RuntimeError("no app id: outgoing calls go unsigned")
        # MSAL is synchronous: keep it off the event loop.
        return await asyncio.to_thread(self._credentials.get_access_token)
