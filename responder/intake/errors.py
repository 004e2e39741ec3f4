"""JSON answers for every error, so a client never has to parse an HTML page or a 500."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("responder.http")


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
        if exc.content_type == "application/json":
            raise
        slug = exc.reason.lower().replace(" ", "_")
        return error_response(
            exc.status,
            slug,
            _MESSAGES.get(exc.status, exc.reason),
            headers={
                k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")
            },
        )
    except Exception as exc:
        # Exception messages may quote request data (personal data): log the type and where.
        incident = uuid.uuid4().hex[:12]
        where = "".join(traceback.format_tb(exc.__traceback__)[-3:])
        log.error(
            "unhandled %s on %s %s (incident %s)\n%s",
            type(exc).__name__,
            request.method,
            request.path,
            incident,
            where,
        )
        return error_response(500, "internal", f"Something went wrong (incident {incident}).")
