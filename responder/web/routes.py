"""The web pages, wired: sessions, templates, static files, sign-in and each page's routes.

Each page module has ``setup(app, ctx)``: it adds its routes (and anything it keeps on the
app). ``WebContext`` is what they share from start-up.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aiohttp import web

from responder import __version__
from responder.config import Council
from responder.settings import Settings
from responder.web import (
    auth_dev,
    auth_entra,
    auth_teams,
    feedback,
    map_page,
    performance,
    task_page,
    tasks_list,
    tiles,
    wards,
)
from responder.web.middleware import session_middleware
from responder.web.render import page, setup_templates
from responder.web.session import Sessions, secret_key, sessions_key
from responder.web.startup import WebStartupError

log = logging.getLogger("responder.web")

# Changes under these paths are not the pages': each checks its own credentials.
CSRF_EXEMPT = (
    "/api/",
    "/open311/",
    "/auth/teams",
    "/auth/callback",
    "/feedback/",
)


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    council: Council
    public_url: str  # no trailing slash
    secret: str  # RESPONDER_SECRET_KEY, or this process's own in development


def static_dir() -> Path:
    return Path(str(resources.files("responder.web").joinpath("static")))


def middlewares() -> list:
    return [session_middleware(CSRF_EXEMPT)]


def setup_web(app: web.Application, settings: Settings, council: Council, public_url: str) -> None:
    secret = settings.secret_key
    if not secret:
        if settings.environment == "production":
            raise WebStartupError(
                "RESPONDER_SECRET_KEY is not set: refusing to sign sessions and residents' "
                "feedback links with a key of the moment with RESPONDER_ENV=production"
            )
        log.warning(
            "RESPONDER_SECRET_KEY is not set: web sessions and feedback links last until "
            "this process restarts (fine for development)"
        )
        secret = secrets.token_urlsafe(32)
    elif len(secret) < 32:
        raise WebStartupError("RESPONDER_SECRET_KEY must be at least 32 characters long")
    production = settings.environment == "production"
    app[sessions_key] = Sessions(council, secret, always_secure=production)
    app[secret_key] = secret  # feedback links in Notify messages are signed with it too
    setup_templates(app, static_version=__version__)
    app.router.add_static("/static/", static_dir(), append_version=False)
    app.router.add_post("/auth/sign-out", sign_out)
    app.router.add_get("/auth/signed-out", signed_out)
    ctx = WebContext(settings, council, public_url, secret)
    for module in (
        auth_dev,
        auth_entra,
        auth_teams,
        tasks_list,
        map_page,
        tiles,
        task_page,
        performance,
        wards,
        feedback,
    ):
        module.setup(app, ctx)


async def sign_out(request: web.Request) -> web.StreamResponse:
    """Ends the session (the middleware has checked the form's CSRF token)."""
    response = web.Response(status=303, headers={"Location": "/auth/signed-out"})
    request.app[sessions_key].sign_out(request, response)
    return response


async def signed_out(request: web.Request) -> web.StreamResponse:
    return page(request, "signed_out.html", {})
