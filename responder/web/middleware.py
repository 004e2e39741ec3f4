"""The pages' middleware: read the session for every request; refuse a change (POST...) that
does not carry the session's CSRF token, with a page that says so, before any handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from responder.web.render import error_page
from responder.web.session import VIEWER, csrf_ok, sessions_key

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def session_middleware(
    exempt: tuple[str, ...],
) -> Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    Awaitable[web.StreamResponse],
]:
    """Reads the viewer for every request; refuses a change without its CSRF token.

    ``exempt``: path prefixes whose changes are not the pages' (the APIs, with their own
    keys; Teams; the feedback form and the sign-in endpoints, which check their own).
    """

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        sessions = request.app.get(sessions_key)
        viewer = sessions.read(request) if sessions is not None else None
        request[VIEWER] = viewer
        routed = request.match_info.http_exception is None  # else a 404 or 405 to answer
        if routed and request.method in _UNSAFE and not request.path.startswith(exempt):
            form = await request.post() if request.content_type in _FORMS else None
            if viewer is None or not csrf_ok(request, viewer, form):
                return error_page(
                    request,
                    403,
                    "This form has expired",
                    "It did not come from a page of yours that is still open, so nothing "
                    "was changed. Go back, reload the page and try again.",
                )
        return await handler(request)

    return middleware
