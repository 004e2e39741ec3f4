"""``GET /api/photos/{token}``: officers' photos, for the images on task cards.

Teams fetches a card's images without signing in, so the token (32 random bytes) is the
only key: a photo is served only once it belongs to a task, and anything else, a malformed
token included, is the same JSON 404.
"""

from __future__ import annotations

import re

from aiohttp import web

from responder.queries.photos import photo_content
from responder.store.db import Database
from responder.web import error_response

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
HEADERS = {
    # Only the viewer's device may keep it: it is a photo of someone's street, not a logo.
    "Cache-Control": "private, max-age=86400",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
    "Referrer-Policy": "no-referrer",
}


def routes(db: Database) -> list[web.RouteDef]:
    async def serve(request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        found = await photo_content(db, token) if _TOKEN.fullmatch(token) else None
        if found is None:
            return error_response(404, "not_found", "No such photo.")
        content_type, data = found
        return web.Response(body=data, content_type=content_type, headers=HEADERS)

    return [web.get("/api/photos/{token}", serve)]
