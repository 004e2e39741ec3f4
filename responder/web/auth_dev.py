"""``GET /auth/dev?as=<person id>``: sign in as anyone in the council file, without a
Microsoft account, for the quick start, demonstrations and tests.

It exists only when ``RESPONDER_ENV`` is not ``production``: there the route is never
added, so the path is a plain 404 like any other unknown page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from responder.web.access import safe_next
from responder.web.render import error_page
from responder.web.session import sessions_key

if TYPE_CHECKING:
    from responder.web.routes import WebContext


def setup(app: web.Application, ctx: WebContext) -> None:
    if ctx.settings.environment == "production":
        return
    app.router.add_get("/auth/dev", dev_sign_in)


async def dev_sign_in(request: web.Request) -> web.StreamResponse:
    sessions = request.app[sessions_key]
    person_id = request.query.get("as", "")
    person = sessions.council.person(person_id) if len(person_id) <= 64 else None
    if person is None:
        return error_page(
            request,
            404,
            "No such person",
            "Development sign-in needs ?as= and the id of a person in the council file.",
        )
    response = web.Response(status=302, headers={"Location": safe_next(request.query.get("next"))})
    sessions.sign_in(request, response, person, "dev")
    return response
