"""The Microsoft 365 Agents SDK (1.9) behind Responder's Teams seam (``bot/runtime.py``).

- Activities are read by the SDK's own model (``microsoft_agents.activity.Activity``).
- Tokens from Teams are checked by the SDK's ``JwtTokenValidator``, on ``/api/messages``
  only (the other routes have their own keys), with its issuer allow-list switched on:
  Bot Framework's issuer and the council tenant's, nothing else.
- Outgoing calls are signed with tokens from the SDK's ``MsalAuth``, which knows every
  way a council signs in: client secret, certificate, managed identity, federated.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

from jwt import PyJWK, PyJWKClient, PyJWKClientConnectionError, PyJWKClientError, PyJWTError
from microsoft_agents.activity import Activity
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core.authorization import (
    AgentAuthConfiguration,
    AuthenticationConstants,
    JwtTokenValidator,
)
from pydantic import ValidationError

from responder.bot.runtime import (
    BOT_FRAMEWORK_RESOURCE,
    BOT_FRAMEWORK_SCOPE,
    BOT_FRAMEWORK_TENANT,
    KeysUnavailable,
    Unauthorized,
)
from responder.bot.turn import BadActivity
from responder.settings import Settings, TeamsRuntimeName


def _configuration(settings: Settings, tenant_id: str | None) -> AgentAuthConfiguration:
    return AgentAuthConfiguration(
        auth_type=settings.auth_type.value,  # type: ignore[arg-type] # the SDK's own spelling
        client_id=settings.app_id or None,
        tenant_id=tenant_id or None,
        client_secret=settings.app_password or None,
        cert_pfx_file=settings.cert_pfx_file or None,
        federated_client_id=settings.federated_client_id or None,
        validate_issuer=True,
    )


class _KeysFromMetadata:
    """Bot Framework's signing keys from another OpenID metadata document.

    Only for ``BOT_OPENID_METADATA_URL`` (a sovereign cloud, or the test double on
    127.0.0.1): the SDK has no setting for it. Keys for Bot Framework's public key URL
    come from the metadata's ``jwks_uri``; every other key source is refused, so a token
    from an issuer we do not know is never checked against keys fetched from elsewhere.
    """

    def __init__(self, metadata_url: str) -> None:
        self._metadata_url = metadata_url
        self._client: PyJWKClient | None = None
        self._lock = threading.Lock()

    def _signing_key(self, kid: str) -> PyJWK:
        with self._lock:
            if self._client is None:
                try:
                    with urllib.request.urlopen(self._metadata_url, timeout=10) as resp:
                        jwks_uri = json.load(resp)["jwks_uri"]
                except (OSError, ValueError, KeyError) as exc:
                    raise PyJWKClientConnectionError("metadata unavailable") from exc
                self._client = PyJWKClient(jwks_uri, timeout=10)
            return self._client.get_signing_key(kid)

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> PyJWK:
        if jwks_uri != AuthenticationConstants.PUBLIC_ABS_JWKS_URL:
            raise PyJWKClientError("not a Bot Framework key")
        kid = header.get(AuthenticationConstants.KEY_ID_HEADER)
        if not isinstance(kid, str):
            raise PyJWKClientError("no key id")
        return await asyncio.to_thread(self._signing_key, kid)


class AgentsRuntime:
    name: TeamsRuntimeName = "agents"

    def __init__(self, settings: Settings) -> None:
        self._validator = JwtTokenValidator(_configuration(settings, settings.app_tenant_id))
        if settings.bot_openid_metadata_url:
            # An instance attribute: the SDK's key cache is shared by the whole process.
            self._validator._jwk_client_manager = _KeysFromMetadata(  # type: ignore[assignment]
                settings.bot_openid_metadata_url
            )
        # A multi-tenant bot gets its channel tokens from Bot Framework's own tenant, as
        # botbuilder does; the SDK would otherwise refuse to run without a tenant.
        outgoing = _configuration(settings, settings.app_tenant_id or BOT_FRAMEWORK_TENANT)
        self._tokens = MsalAuth(outgoing) if settings.app_id else None

    def check(self, body: dict[str, Any]) -> Activity:
        try:
            return Activity.model_validate(body)
        except (ValidationError, ValueError, TypeError, RecursionError):
            raise BadActivity("The activity could not be read.") from None

    async def authenticate(self, header: str, sdk_activity: object) -> Mapping[str, Any]:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized
        try:
            identity = await self._validator.validate_token(token.strip())
        except PyJWKClientConnectionError:
            raise KeysUnavailable from None
        except (PyJWTError, ValueError, KeyError, TypeError):
            raise Unauthorized from None
        return identity.claims

    async def access_token(self) -> str:
        if self._tokens is None:
            raise RuntimeError("no app id: outgoing calls go unsigned")
        return await self._tokens.get_access_token(BOT_FRAMEWORK_RESOURCE, [BOT_FRAMEWORK_SCOPE])
