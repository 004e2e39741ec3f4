"""The Open311 routes (filled in by issue 17's Open311 server)."""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
