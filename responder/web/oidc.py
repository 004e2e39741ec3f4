"""Microsoft Entra ID as the pages' OpenID provider: its metadata and signing keys, fetched
and cached, and sign-in tokens checked against them with PyJWT.

Both ways in use it: the browser's sign-in (``auth_entra``: authorization code with PKCE,
the ID token checked here) and the Teams tab's single sign-on (``auth_teams``: the token
Teams hands the tab, checked here). The authority is
``https://login.microsoftonline.com/{tenant or 'organizations'}/v2.0``; the tests point
``RESPONDER_WEB_AUTHORITY`` at a fake on 127.0.0.1, which production refuses.

Metadata (``{authority}/.well-known/openid-configuration``) and the key set are cached for
a day; a token signed with a key id the cache does not hold makes one fresh fetch of the
key set (Entra rolls its keys over), at most one a second for ids never seen before, so a
stream of forged tokens cannot make this service hammer Entra.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import jwt
from aiohttp import web

from responder.web.startup import WebStartupError

if TYPE_CHECKING:
    from responder.web.routes import WebContext

log = logging.getLogger("responder.web.sign_in")

ENTRA = "https://login.microsoftonline.com"
CACHE_SECONDS = 24 * 3600
UNKNOWN_KID_FLOOR = 1.0  # seconds between key-set fetches caused by unknown key ids
LEEWAY = 60  # seconds of clock difference allowed on exp / nbf / iat
_MAX_DOCUMENT = 256 * 1024  # metadata and key sets are a few KB


class ProviderUnavailable(Exception):
    """The provider's metadata, keys or token endpoint could not be read (logged)."""


class TokenRejected(Exception):
    """A token that is not good: ``str(exc)`` says why, in words fit for the log (no claims)."""


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class SignInConfig:
    """The Entra app registration the pages use (see docs/web-sign-in.md)."""

    client_id: str
    client_secret: str
    tenant: str  # the council's tenant id, or "" (any organisation's accounts)
    authority: str
    redirect_uri: str
    public_url: str
    production: bool

    @property
    def browser_sign_in(self) -> bool:
        """Whether "Sign in with Microsoft" can work: it needs the app's secret too."""
        return bool(self.client_id and self.client_secret)

    @property
    def tab_audiences(self) -> list[str]:
        """What a Teams tab's token may be issued for: the Application ID URI the manifest's
        ``webApplicationInfo.resource`` names (v1 tokens), or the client id (v2)."""
        host = self.public_url.split("://", 1)[-1].split("/", 1)[0]
        return [f"api://{host}/{self.client_id}", self.client_id]


class OpenIdProvider:
    """Metadata and signing keys of one authority, fetched over one HTTP client."""

    def __init__(self, authority: str, *, timeout: float = 10.0) -> None:
        self.authority = authority.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._metadata: Metadata | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_at = 0.0
        self._kid_refresh_at = 0.0
        self._metadata_lock = asyncio.Lock()
        self._keys_lock = asyncio.Lock()

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the HTTP client lives as long as the app."""
        yield
        if self._session is not None:
            await self._session.close()
            self._session = None

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client for this provider's endpoints (metadata, keys, token)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self.client().get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise ProviderUnavailable(f"{what}: HTTP {response.status}")
                body = await response.content.read(_MAX_DOCUMENT + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"{what}: {type(exc).__name__}") from None
        if len(body) > _MAX_DOCUMENT:
            raise ProviderUnavailable(f"{what}: larger than {_MAX_DOCUMENT} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            raise ProviderUnavailable(f"{what}: not JSON") from None
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"{what}: not a JSON object")
        return data

    async def metadata(self) -> Metadata:
        if self._metadata is not None and time.monotonic() - self._metadata_at < CACHE_SECONDS:
            return self._metadata
        async with self._metadata_lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < CACHE_SECONDS:
                return self._metadata
            url = f"{self.authority}/.well-known/openid-configuration"
            data = await self._get_json(url, "OpenID metadata")
            fields = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if not all(isinstance(data.get(f), str) and data[f] for f in fields):
                raise ProviderUnavailable("OpenID metadata: a required field is missing")
            self._metadata = Metadata(*(data[f] for f in fields))
            self._metadata_at = time.monotonic()
            return self._metadata

    async def _fetch_keys(self) -> None:
        meta = await self.metadata()
        data = await self._get_json(meta.jwks_uri, "signing keys")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in data.get("keys") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
            except jwt.PyJWTError:
                continue  # a key we cannot use is no key
        self._keys = keys
        self._keys_at = time.monotonic()

    async def signing_key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        if not self._keys or now - self._keys_at >= CACHE_SECONDS:
            async with self._keys_lock:
                if not self._keys or time.monotonic() - self._keys_at >= CACHE_SECONDS:
                    await self._fetch_keys()
        key = self._keys.get(kid)
        if key is not None:
            return key
        # Not among the keys we hold: perhaps Entra has rolled over. Fetch once.
        async with self._keys_lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._kid_refresh_at >= UNKNOWN_KID_FLOOR:
                self._kid_refresh_at = time.monotonic()
                await self._fetch_keys()
                key = self._keys.get(kid)
        if key is None:
            raise TokenRejected("signed with a key the issuer does not publish")
        return key

    async def verify(
        self,
        token: str,
        *,
        audiences: list[str],
        issuer_ok: Callable[[str, dict[str, Any]], bool],
        required: tuple[str, ...] = ("exp", "iss", "aud", "oid", "tid"),
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """The claims of ``token`` once its signature (RS256, a key of the issuer's key set),
        audience, times (with ``LEEWAY``), issuer (``issuer_ok(iss, claims)``) and ``nonce``
        have been checked. Raises TokenRejected or ProviderUnavailable."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("not a JWT") from None
        if header.get("alg") != "RS256":
            raise TokenRejected("not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("no key id")
        key = await self.signing_key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256"],
                audience=audiences,
                leeway=LEEWAY,
                options={"require": list(required), "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("issued for another audience") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"no {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(type(exc).__name__) from None
        if not isinstance(claims.get("iss"), str) or not issuer_ok(claims["iss"], claims):
            raise TokenRejected("from another issuer")
        for name in ("oid", "tid"):
            if name in required and not isinstance(claims.get(name), str):
                raise TokenRejected(f"{name} is not a string")
        if nonce is not None:
            sent = claims.get("nonce")
            if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
                raise TokenRejected("nonce does not match")
        return claims


provider_key = web.AppKey("openid_provider", OpenIdProvider)
config_key = web.AppKey("sign_in_config", SignInConfig)


def council_tenant(ctx: WebContext) -> str:
    return (ctx.settings.web_tenant_id or ctx.council.info.tenant_id or "").strip()


def sign_in_setup(app: web.Application, ctx: WebContext) -> SignInConfig:
    """The sign-in configuration and provider, made once for both modules that need them."""
    if config_key in app:
        return app[config_key]
    settings = ctx.settings
    production = settings.environment == "production"
    if settings.web_authority and production:
        raise WebStartupError(
            "RESPONDER_WEB_AUTHORITY is set: refusing to take sign-in from an issuer other "
            "than Microsoft Entra ID with RESPONDER_ENV=production"
        )
    tenant = council_tenant(ctx)
    authority = settings.web_authority.rstrip("/") or f"{ENTRA}/{tenant or 'organizations'}/v2.0"
    config = SignInConfig(
        client_id=settings.web_client_id,
        client_secret=settings.web_client_secret,
        tenant=tenant,
        authority=authority,
        redirect_uri=f"{ctx.public_url}/auth/callback",
        public_url=ctx.public_url,
        production=production,
    )
    provider = OpenIdProvider(authority)
    app[config_key] = config
    app[provider_key] = provider
    app.cleanup_ctx.append(provider.running)
    if not config.client_id:
        (log.error if production else log.info)(
            "Sign-in with Microsoft is not configured: set RESPONDER_WEB_CLIENT_ID (or the "
            "bot's MicrosoftAppId), RESPONDER_WEB_CLIENT_SECRET and RESPONDER_WEB_TENANT_ID "
            "(see docs/web-sign-in.md)%s",
            "" if production else "; the development sign-in is available",
        )
    elif not config.client_secret:
        log.warning(
            "RESPONDER_WEB_CLIENT_SECRET is not set: the Teams tab can sign in, the browser's "
            "'Sign in with Microsoft' cannot (see docs/web-sign-in.md)"
        )
    if not tenant:
        log.warning(
            "No tenant for sign-in (RESPONDER_WEB_TENANT_ID or council.tenant_id): accounts "
            "of any organisation are checked against the council file's people"
        )
    return config


def entra_issuer_ok(expected: str) -> Callable[[str, dict[str, Any]], bool]:
    """The metadata's issuer; for a multi-tenant authority Entra's ``{tenantid}`` in it
    stands for the token's own ``tid``."""

    def check(iss: str, claims: dict[str, Any]) -> bool:
        tid = claims.get("tid")
        if "{tenantid}" in expected:
            return isinstance(tid, str) and iss == expected.replace("{tenantid}", tid)
        return iss == expected

    return check
