"""Form packages' own payloads at POST /api/intake/{source} (issue 17)."""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
