"""What every HTTP surface shares: the application's keys, and JSON answers for every error
(so a client never has to parse an HTML page or a 500).

Intake, the Teams endpoint, Notify's receipts, photos and the web pages all import from
here, not from one another. The pages themselves (sign-in, the task list, map, task page,
performance, ward view and residents' feedback) live in this package's modules, wired by
``responder.web.routes``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web

from responder.domain.context import Domain
from responder.incidents import log_incident
from responder.store.db import Database

log = logging.getLogger("responder.http")

db_key = web.AppKey("db", Database)
domain_key = web.AppKey("domain", Domain)
intake_keys_key = web.AppKey("intake_keys", dict)
clock_key: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")


def error_response(
    status: int,
    error: str,
    message: str,
    problems: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict = {"error": error, "message": message}
    if problems is not None:
        body["problems"] = problems
    return web.json_response(body, status=status, headers=headers)


_MESSAGES = {
    404: "No such resource.",
    405: "Method not allowed here.",
    413: "The request body is larger than 1 MB.",
}


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type in ("application/json", "text/html"):
            raise  # already an answer of its own (the web pages' HTML errors)
        slug = exc.reason.lower().replace(" ", "_")
        return error_response(
            exc.status,
            slug,
            _MESSAGES.get(exc.status, exc.reason),
            headers={
                k: v
                for k, v in exc.headers.items()
                # HX-Redirect: an htmx request whose session ended goes to sign in, whole page.
                if k.lower() in ("allow", "www-authenticate", "hx-redirect")
            },
        )
    except Exception as exc:
        # Exception messages may quote request data (personal data): log the type and where.
        # The route's pattern, not the path: a path can carry what the client sent.
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "?"
        incident = log_incident(log, f"unhandled on {request.method} {route}", exc)
        return error_response(500, "internal", f"Something went wrong (incident {incident}).")
