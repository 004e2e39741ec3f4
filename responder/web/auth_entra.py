"""Signing in to the pages with a council Microsoft account: OpenID Connect's authorization
code flow with PKCE against Microsoft Entra ID.

- ``GET /auth/sign-in?next=``: the sign-in page ("Sign in with your council Microsoft
  account"; outside production also the development sign-in's list of people).
- ``GET /auth/start?next=``: a new flow. A fresh PKCE verifier (S256), ``state`` and
  ``nonce`` are sealed with ``next`` into a cookie for ten minutes (Fernet under a key of
  its own, HttpOnly, SameSite=Lax, Path=/auth), then 302 to Entra's authorization endpoint.
- ``GET /auth/callback?code=&state=``: the state must match the cookie's; the code is
  exchanged (with the verifier and the app's secret) at the token endpoint; the ID token's
  signature, issuer, audience, times, nonce and tenant are checked (``oidc.py``); the
  person is the council file's with that ``oid`` (Teams' ``aadObjectId``). Then the
  session, and 302 to ``next``. Anything wrong: an HTML page saying what, no session.

The protocol's messages are oauthlib's (``WebApplicationClient``: the PKCE verifier and
challenge, the authorization request, the token request and the reading of its answer,
errors included); the HTTP is aiohttp's and the ID token is checked with PyJWT.
oauthlib refuses plain-http endpoints unless ``OAUTHLIB_INSECURE_TRANSPORT`` is set, which
only a test's fake issuer on 127.0.0.1 needs (Entra is https).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken
from oauthlib.oauth2 import (  # type: ignore[import-untyped]  # no stubs
    OAuth2Error,
    WebApplicationClient,
)

from responder.web.access import safe_next
from responder.web.oidc import (
    ProviderUnavailable,
    SignInConfig,
    TokenRejected,
    config_key,
    entra_issuer_ok,
    provider_key,
    sign_in_setup,
)
from responder.web.render import page
from responder.web.session import derive_key, sessions_key

if TYPE_CHECKING:
    from responder.web.routes import WebContext

log = logging.getLogger("responder.web.sign_in")

FLOW_COOKIE = "responder_oidc"
FLOW_SECONDS = 600
SCOPE = ["openid", "profile"]
_MAX_PARAM = 4096  # an authorization code is ~1-2 KB
_MAX_TOKEN_RESPONSE = 256 * 1024

flow_fernet_key = web.AppKey("oidc_flow_fernet", Fernet)
used_states_key = web.AppKey("oidc_used_states", dict)


def setup(app: web.Application, ctx: WebContext) -> None:
    sign_in_setup(app, ctx)
    key = derive_key(ctx.secret, "oidc-flow")
    app[flow_fernet_key] = Fernet(base64.urlsafe_b64encode(key))
    app[used_states_key] = {}
    app.router.add_get("/auth/sign-in", sign_in_page)
    app.router.add_get("/auth/start", start)
    app.router.add_get("/auth/callback", callback)


# --- the sign-in page -------------------------------------------------------------------


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    config = request.app[config_key]
    target = safe_next(request.query.get("next"))
    sessions = request.app[sessions_key]
    people = []
    if not config.production:
        order = {"manager": 0, "councillor": 1, "officer": 2}
        people = sorted(
            sessions.council.file.people, key=lambda p: (order.get(p.role, 3), p.name.lower())
        )
    status = 200
    if config.production and not config.browser_sign_in:
        status = 503
    return page(
        request,
        "auth/sign_in.html",
        {
            "next": target,
            "entra": config.browser_sign_in,
            "development": not config.production,
            "people": people,
        },
        status=status,
    )


def problem(
    request: web.Request,
    status: int,
    title: str,
    message: str,
    *,
    target: str = "/tasks",
) -> web.Response:
    """An HTML page saying why sign-in failed; the flow's cookie goes with it."""
    response = page(
        request,
        "auth/problem.html",
        {"title": title, "message": message, "next": target},
        status=status,
    )
    _clear_flow(request, response)
    return response


# --- the flow's cookie ------------------------------------------------------------------


def _secure(request: web.Request) -> bool:
    return request.app[config_key].production or request.secure


def _flow_cookie(request: web.Request, value: str, max_age: int) -> str:
    parts = [f"{FLOW_COOKIE}={value}", "Path=/auth", f"Max-Age={max_age}", "HttpOnly"]
    parts.append("SameSite=Lax")  # the callback is a top-level GET from Entra: Lax sends it
    if _secure(request):
        parts.append("Secure")
    return "; ".join(parts)


def _clear_flow(request: web.Request, response: web.StreamResponse) -> None:
    if FLOW_COOKIE in request.cookies:
        response.headers.add("Set-Cookie", _flow_cookie(request, "", 0))


def _read_flow(request: web.Request) -> dict[str, str] | None:
    value = request.cookies.get(FLOW_COOKIE)
    if not value or len(value) > 4096:
        return None
    try:
        data = json.loads(request.app[flow_fernet_key].decrypt(value, ttl=FLOW_SECONDS))
    except (InvalidToken, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "snvx"):
        return None
    return data


# --- start ------------------------------------------------------------------------------


async def start(request: web.Request) -> web.StreamResponse:
    config = request.app[config_key]
    target = safe_next(request.query.get("next"))
    if not config.browser_sign_in:
        return problem(
            request,
            503,
            "Sign-in with Microsoft is not set up",
            "This Responder has no Microsoft Entra app registration yet. Ask the council's "
            "administrator to set it up (the settings are in docs/web-sign-in.md).",
            target=target,
        )
    try:
        meta = await request.app[provider_key].metadata()
    except ProviderUnavailable as exc:
        log.warning("sign-in could not start: %s", exc)
        return _unavailable(request, target)
    client = WebApplicationClient(config.client_id)
    verifier = client.create_code_verifier(64)
    challenge = client.create_code_challenge(verifier, "S256")
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    if not meta.authorization_endpoint.startswith("https://") and not os.environ.get(
        "OAUTHLIB_INSECURE_TRANSPORT"
    ):
        # Only a test's issuer (RESPONDER_WEB_AUTHORITY, refused in production) can be http.
        log.warning("sign-in: the issuer's authorization endpoint is not https")
        return _unavailable(request, target)
    url = client.prepare_request_uri(
        meta.authorization_endpoint,
        redirect_uri=config.redirect_uri,
        scope=SCOPE,
        state=state,
        code_challenge=challenge,
        code_challenge_method="S256",
        nonce=nonce,
        response_mode="query",
    )
    flow = json.dumps({"s": state, "n": nonce, "v": verifier, "x": target}, separators=(",", ":"))
    sealed = request.app[flow_fernet_key].encrypt(flow.encode()).decode()
    response = web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
    response.headers.add("Set-Cookie", _flow_cookie(request, sealed, FLOW_SECONDS))
    return response


def _unavailable(request: web.Request, target: str) -> web.Response:
    return problem(
        request,
        502,
        "Microsoft sign-in is not answering",
        "Responder could not reach Microsoft's sign-in service. Wait a minute and try again.",
        target=target,
    )


# --- the callback -----------------------------------------------------------------------


def _state_used(request: web.Request, state: str) -> bool:
    """Whether this flow's state has already completed here (and remember it if not): a
    replayed callback, even with its cookie, signs nobody in twice."""
    used: dict[str, float] = request.app[used_states_key]
    now = time.monotonic()
    if len(used) > 1000:
        for old in [s for s, at in used.items() if now - at > FLOW_SECONDS]:
            del used[old]
    if state in used:
        return True
    used[state] = now
    return False


async def callback(request: web.Request) -> web.StreamResponse:
    config = request.app[config_key]
    query = request.query
    flow = _read_flow(request)
    target = flow["x"] if flow is not None else "/tasks"
    again = "Start again from the sign-in page."
    error = query.get("error")
    if error is not None:
        error = re.sub(r"[^a-z0-9_]", "", error.lower())[:64] or "unknown"  # OAuth's codes
        log.info("sign-in: the issuer answered error=%s", error)
        if error == "access_denied":
            return problem(
                request,
                403,
                "Sign-in was cancelled",
                f"Microsoft did not sign you in (it was cancelled or refused). {again}",
                target=target,
            )
        return problem(
            request,
            400,
            "Sign-in did not work",
            f"Microsoft could not sign you in ({error}). {again}",
            target=target,
        )
    if flow is None:
        return problem(
            request,
            400,
            "Your sign-in has expired",
            "Sign-in must be finished within ten minutes, in the browser it was started in. "
            + again,
        )
    state = query.get("state", "")
    if not state or len(state) > _MAX_PARAM or not hmac.compare_digest(state, flow["s"]):
        return problem(
            request,
            400,
            "Sign-in did not match",
            "This answer from Microsoft is not for the sign-in this browser started, so it "
            "was not used. " + again,
            target=target,
        )
    code = query.get("code", "")
    if not code or len(code) > _MAX_PARAM:
        return problem(
            request, 400, "Sign-in did not work", "Microsoft sent no sign-in code. " + again
        )
    if not config.browser_sign_in:
        return problem(request, 503, "Sign-in with Microsoft is not set up", again)
    if _state_used(request, state):
        return problem(
            request,
            400,
            "This sign-in has already been used",
            "Each sign-in can be completed once. " + again,
            target=target,
        )
    provider = request.app[provider_key]
    try:
        tokens = await _redeem(request, config, code, flow["v"])
    except ProviderUnavailable as exc:
        log.warning("sign-in: token endpoint failed: %s", exc)
        return _unavailable(request, target)
    except OAuth2Error as exc:
        log.info("sign-in: the token endpoint refused the code: %s", exc.error)
        return problem(
            request,
            400,
            "Sign-in did not work",
            "Microsoft would not complete this sign-in (the code was refused). " + again,
            target=target,
        )
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        return problem(request, 400, "Sign-in did not work", "Microsoft sent no ID token. " + again)
    try:
        meta = await provider.metadata()
        claims = await provider.verify(
            id_token,
            audiences=[config.client_id],
            issuer_ok=entra_issuer_ok(meta.issuer),
            nonce=flow["n"],
        )
    except ProviderUnavailable as exc:
        log.warning("sign-in: keys unavailable: %s", exc)
        return _unavailable(request, target)
    except TokenRejected as exc:
        log.info("sign-in: ID token refused: %s", exc)
        return problem(
            request,
            401,
            "Sign-in could not be checked",
            "The answer from Microsoft did not pass Responder's checks, so nobody was signed "
            "in. " + again,
            target=target,
        )
    return _signed_in(request, config, claims, target)


def _signed_in(
    request: web.Request, config: SignInConfig, claims: dict[str, Any], target: str
) -> web.StreamResponse:
    if config.tenant and claims["tid"].lower() != config.tenant.lower():
        log.info("sign-in: an account of another organisation")
        return problem(
            request,
            403,
            "Not this council's account",
            "You signed in with an account from another organisation. Sign in with your "
            "council Microsoft account.",
            target=target,
        )
    sessions = request.app[sessions_key]
    person = sessions.council.person_by_aad(claims["oid"])
    if person is None:
        log.info("sign-in: an account that is not in the council file")
        return problem(
            request,
            403,
            "You are not set up in Responder",
            "Your account is not in this council's Responder; ask your manager to add you.",
            target=target,
        )
    response = web.Response(
        status=302, headers={"Location": safe_next(target), "Cache-Control": "no-store"}
    )
    _clear_flow(request, response)
    sessions.sign_in(request, response, person, "entra")
    return response


async def _redeem(
    request: web.Request, config: SignInConfig, code: str, verifier: str
) -> dict[str, Any]:
    """The token endpoint's answer to the code (oauthlib builds the request and reads the
    answer, raising its OAuth2Error for an ``error`` one)."""
    provider = request.app[provider_key]
    meta = await provider.metadata()
    client = WebApplicationClient(config.client_id)
    body = client.prepare_request_body(
        code=code,
        redirect_uri=config.redirect_uri,
        code_verifier=verifier,
        client_secret=config.client_secret,
        include_client_id=True,
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    try:
        async with provider.client().post(
            meta.token_endpoint, data=body, headers=headers, allow_redirects=False
        ) as response:
            status = response.status
            text = (await response.content.read(_MAX_TOKEN_RESPONSE + 1)).decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProviderUnavailable(f"token endpoint: {type(exc).__name__}") from None
    if status >= 500 or len(text) > _MAX_TOKEN_RESPONSE:
        raise ProviderUnavailable(f"token endpoint: HTTP {status}")
    try:
        token = client.parse_request_body_response(text)
    except OAuth2Error:
        raise
    except (ValueError, Warning) as exc:
        what = f"token endpoint: unreadable answer ({type(exc).__name__})"
        raise ProviderUnavailable(what) from None
    return dict(token)
