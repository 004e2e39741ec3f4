"""What a page asks before it shows anything: who is signed in, and where to send them back.

Pages call ``require_viewer``: without a session, a page load is sent to sign in (and back
afterwards); an htmx request for a part of a page gets 401 with ``HX-Redirect``, so the
whole page goes, not a sign-in form inside a table.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from aiohttp import web

from responder.web.session import Viewer, viewer_of

MAX_NEXT = 2048


def safe_next(value: str | None, default: str = "/tasks") -> str:
    """A path on this site to go to after signing in: never another site (``//evil``,
    ``https://evil``, ``/\\evil``), never a control character."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/"):
        return default
    if value.startswith(("//", "/\\")) or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def sign_in_url(request: web.Request) -> str:
    return "/auth/sign-in?next=" + quote(safe_next(request.path_qs), safe="")


def require_viewer(request: web.Request) -> Viewer:
    viewer = viewer_of(request)
    if viewer is not None:
        return viewer
    target = sign_in_url(request)
    if request.headers.get("HX-Request") == "true":
        raise web.HTTPUnauthorized(headers={"HX-Redirect": target})
    raise web.HTTPFound(target)
