"""The Teams tab's own pages (scripts in ``static/tab.js``; no inline script: CSP).

- ``GET /tab?next=/tasks``: the content page of the personal tab and of a configured team
  tab. Inside a Teams host it loads the Teams JavaScript library, gets the user's SSO
  token, posts it to ``/auth/teams`` and goes on to ``next``; if that fails (or the page is
  not in Teams) it says so, with a link to sign in in a new window.
- ``GET /tab/config``: the team tab's configuration page: what the tab shows (the task
  list, the map, performance, or a ward's view), saved with
  ``microsoftTeams.pages.config.setConfig``.

Neither shows anything of the council's work: what the tab then shows is the ordinary
page, behind its own sign-in and visibility checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from responder.web.access import safe_next
from responder.web.render import CSP, page

if TYPE_CHECKING:
    from responder.web.routes import WebContext

tab_context_key = web.AppKey("tab_context", dict)

# Inside Teams the Teams library fetches the current list of Teams' hosts from Microsoft's
# CDN (it falls back to a built-in list without it): the one address these two pages may
# connect to beyond this site.
TEAMS_CDN = "https://res.cdn.office.net"
TAB_CSP = CSP.replace("connect-src 'self';", f"connect-src 'self' {TEAMS_CDN};", 1)
assert TAB_CSP != CSP, "render.CSP no longer has connect-src 'self'"


def setup(app: web.Application, ctx: WebContext) -> None:
    app[tab_context_key] = {
        "public_url": ctx.public_url,
        "wards": sorted(w.name for w in ctx.council.wards),
    }
    app.router.add_get("/tab", tab)
    app.router.add_get("/tab/config", tab_config)


async def tab(request: web.Request) -> web.StreamResponse:
    target = safe_next(request.query.get("next"))
    response = page(request, "tab/tab.html", {"next": target})
    response.headers["Content-Security-Policy"] = TAB_CSP
    return response


async def tab_config(request: web.Request) -> web.StreamResponse:
    context = request.app[tab_context_key]
    response = page(
        request,
        "tab/config.html",
        {"public_url": context["public_url"], "wards": context["wards"]},
    )
    response.headers["Content-Security-Policy"] = TAB_CSP
    return response
