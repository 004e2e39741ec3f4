"""Rendering the pages: Jinja2 templates (``web/templates/``, autoescaped) through
aiohttp-jinja2, the headers every page carries, and HTML answers for errors.

A page handler returns ``page(request, "tasks/list.html", {...})``; a request made by htmx
(header ``HX-Request``) for a part of a page gets ``fragment(...)`` of the same template
data, so one handler serves the whole page and its partial update.

Headers. The pages load scripts, styles and images from this origin only (the map's tiles
come through the tile proxy), so the Content-Security-Policy is ``'self'`` throughout, with
no inline script or style. ``frame-ancestors`` lets the Teams clients show the pages as a
tab and nobody else frame them. Signed-in pages are ``no-store``: they hold what only this
person may see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from responder.web.session import CSRF_FIELD, CSRF_HEADER, sessions_key, viewer_of

# Where Teams shows a tab from (Microsoft's list for tabs' frame-ancestors): the Teams
# clients on the web, desktop and mobile, and Microsoft 365 and Outlook, which host Teams
# apps too.
TEAMS_FRAME_ANCESTORS = (
    "https://teams.microsoft.com https://*.teams.microsoft.com https://*.teams.microsoft.us "
    "https://*.cloud.microsoft https://*.office.com https://outlook.office.com "
    "https://*.microsoft365.com https://*.skype.com"
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    f"form-action 'self'; frame-ancestors 'self' {TEAMS_FRAME_ANCESTORS}"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def setup_templates(app: web.Application, *, static_version: str) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("responder.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_version"] = static_version
    env.globals["csrf_field"] = CSRF_FIELD
    env.globals["csrf_header"] = CSRF_HEADER


def _common(request: web.Request) -> dict[str, Any]:
    """What every template may use (the layout's navigation and forms need it)."""
    viewer = viewer_of(request)
    sessions = request.app.get(sessions_key)
    return {
        "council_name": sessions.council.info.name if sessions is not None else "",
        "viewer": viewer,
        "csrf": viewer.csrf if viewer is not None else "",
        "path": request.path,
        "in_teams": request.query.get("in") == "teams" or bool(viewer and viewer.via == "teams"),
    }


def page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    fragment: str | None = None,
) -> web.Response:
    """The page, or only ``fragment`` (a template of its own) when htmx asked for a part."""
    name = fragment if fragment is not None and is_htmx(request) else template
    response = aiohttp_jinja2.render_template(
        name, request, _common(request) | dict(context), status=status
    )
    response.headers.update(PAGE_HEADERS)
    if fragment is not None:
        response.headers["Vary"] = "HX-Request"
    return response


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """An HTML answer for a page's error (404, 403, 400...): what happened and where to go."""
    return page(request, "error.html", {"title": title, "message": message}, status=status)


def not_found(request: web.Request) -> web.Response:
    """The one answer for "no such page or task" and "not yours to see" (same status, same
    words, no content), so ids and references cannot be walked."""
    return error_page(
        request,
        404,
        "Page not found",
        "There is no such page, or it is not one you can see. Check the address, or go back "
        "to the task list.",
    )
