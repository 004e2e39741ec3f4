"""The pages as a Teams tab, signed in by Teams' single sign-on.

``/tab?next=/tasks`` (``tab_pages``) asks Teams for the signed-in user's token
(``microsoftTeams.authentication.getAuthToken()``) and posts it here:

``POST /auth/teams`` with ``{"token": "..."}``. The token is an Entra ID access token issued
for this app (the manifest's ``webApplicationInfo``): its signature is checked against
Entra's published keys (the same metadata as the browser's sign-in, ``oidc.py``), its issuer
is Entra's for its own tenant (``https://login.microsoftonline.com/{tid}/v2.0``, or v1's
``https://sts.windows.net/{tid}/``), the tenant is the council's when one is configured,
the audience is the app's Application ID URI ``api://{public host}/{client id}`` (v1) or
its client id (v2), and it has not expired. The person is the council file's with that
``oid``. The session cookie it sets is ``SameSite=None; Secure; Partitioned`` (the tab is
a third-party frame inside Teams).

Refusals are short JSON (``{"error", "message"}``) and set nothing: 400 a body that is not
``{"token": "<string>"}``, 401 a token that is not good, 403 a person not in the council
file (or another organisation's), 413 a body over 16 KB, 415 not JSON.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from responder.web import error_response
from responder.web.oidc import ProviderUnavailable, TokenRejected, config_key, provider_key
from responder.web.oidc import sign_in_setup as _sign_in_setup
from responder.web.session import sessions_key
from responder.web.tab_pages import setup as _tab_pages_setup

if TYPE_CHECKING:
    from responder.web.routes import WebContext

log = logging.getLogger("responder.web.sign_in")

MAX_BODY = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store"}


def setup(app: web.Application, ctx: WebContext) -> None:
    _sign_in_setup(app, ctx)
    app.router.add_post("/auth/teams", teams_sign_in)
    _tab_pages_setup(app, ctx)


def _refuse(status: int, error: str, message: str) -> web.Response:
    return error_response(status, error, message, headers=_NO_STORE)


def tab_issuer_ok(iss: str, claims: dict[str, Any]) -> bool:
    tid = claims.get("tid")
    if not isinstance(tid, str) or not tid:
        return False
    return iss in (
        f"https://login.microsoftonline.com/{tid}/v2.0",
        f"https://sts.windows.net/{tid}/",
    )


async def _read_body(request: web.Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY (however it is sent)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    body = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


async def teams_sign_in(request: web.Request) -> web.StreamResponse:
    config = request.app[config_key]
    body = await _read_body(request)
    if body is None:
        return _refuse(413, "too_large", f"The body is larger than {MAX_BODY // 1024} KB.")
    if request.content_type != "application/json":
        return _refuse(415, "unsupported_media_type", 'Send JSON: {"token": "..."}.')
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        return _refuse(400, "malformed", 'Send JSON: {"token": "<the Teams SSO token>"}.')
    if not config.client_id:
        return _refuse(503, "not_configured", "Sign-in with Microsoft is not set up here.")
    try:
        claims = await request.app[provider_key].verify(
            token, audiences=config.tab_audiences, issuer_ok=tab_issuer_ok
        )
    except TokenRejected as exc:
        log.info("Teams tab sign-in refused: %s", exc)
        return _refuse(401, "invalid_token", "The Teams sign-in token was not accepted.")
    except ProviderUnavailable as exc:
        log.warning("Teams tab sign-in: %s", exc)
        return _refuse(502, "unavailable", "Microsoft's signing keys could not be read.")
    if config.tenant and claims["tid"].lower() != config.tenant.lower():
        log.info("Teams tab sign-in: an account of another organisation")
        return _refuse(403, "other_tenant", "This account is not from this council.")
    sessions = request.app[sessions_key]
    person = sessions.council.person_by_aad(claims["oid"])
    if person is None:
        log.info("Teams tab sign-in: an account that is not in the council file")
        return _refuse(
            403,
            "not_in_council",
            "Your account is not in this council's Responder; ask your manager to add you.",
        )
    response = web.json_response({"signedIn": True}, headers=_NO_STORE)
    sessions.sign_in(request, response, person, "teams")
    return response
