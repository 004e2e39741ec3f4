"""``GET /tiles/{z}/{x}/{y}.png``: the map's tiles, through Responder.

Browsers never ask the tile service themselves: the council file's ``map.tiles`` template
is filled in here, with ``{key}`` from ``RESPONDER_MAP_KEY`` (an OS Maps API key stays on
the server: it is in no page and no script), and the pages' Content-Security-Policy stays
``'self'``. Signed-in people only (401 otherwise); ``z`` within the council's zoom range
and ``x``, ``y`` below 2^z (400 otherwise).

Upstream: one ``aiohttp.ClientSession`` (made and closed by the app's cleanup context), a
short timeout, no redirects followed, at most ``MAX_TILE_BYTES``, and only raster image
types passed on (never SVG or HTML); anything else is a 502 with no body of the upstream's.
Tiles are kept in a bounded in-memory LRU (``CACHE_TILES``) and sent with
``Cache-Control: private, max-age=86400``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import aiohttp
from aiohttp import web

from responder import __version__
from responder.web import error_response
from responder.web.session import viewer_of

if TYPE_CHECKING:
    from responder.web.routes import WebContext

log = logging.getLogger("responder.web.tiles")

CACHE_TILES = 2000
MAX_TILE_BYTES = 1_000_000
TIMEOUT_SECONDS = 5.0
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
CACHE_CONTROL = "private, max-age=86400"


class TileProxy:
    """The upstream template, the key, the session and the cache."""

    def __init__(self, template: str, key: str, min_zoom: int, max_zoom: int) -> None:
        self.template = template
        self.key = key
        self.min_zoom = min_zoom
        self.max_zoom = max_zoom
        self.session: aiohttp.ClientSession | None = None
        self.cache: OrderedDict[tuple[int, int, int], tuple[str, bytes]] = OrderedDict()

    def url(self, z: int, x: int, y: int) -> str:
        return (
            self.template.replace("{z}", str(z))
            .replace("{x}", str(x))
            .replace("{y}", str(y))
            .replace("{key}", quote(self.key, safe=""))
        )

    def remember(self, tile: tuple[int, int, int], value: tuple[str, bytes]) -> None:
        self.cache[tile] = value
        self.cache.move_to_end(tile)
        while len(self.cache) > CACHE_TILES:
            self.cache.popitem(last=False)

    async def fetch(self, z: int, x: int, y: int) -> tuple[str, bytes] | None:
        """The tile (content type, bytes), or None when the tile service failed us."""
        if self.session is None:
            return None
        try:
            async with self.session.get(self.url(z, x, y), allow_redirects=False) as response:
                content_type = response.content_type.lower()
                if response.status != 200 or content_type not in IMAGE_TYPES:
                    log.warning(
                        "tile service answered %s (%s) for zoom %s",
                        response.status,
                        content_type,
                        z,
                    )
                    return None
                if (response.content_length or 0) > MAX_TILE_BYTES:
                    return None
                body = await response.content.read(MAX_TILE_BYTES + 1)
                if len(body) > MAX_TILE_BYTES:
                    return None
                return content_type, body
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The type only: an error's text may quote the URL, and with it the key.
            log.warning("tile service unreachable (%s)", type(exc).__name__)
            return None


proxy_key = web.AppKey("tile_proxy", TileProxy)


def _coordinate(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > 8:
        return None
    return int(text)


async def tile(request: web.Request) -> web.StreamResponse:
    if viewer_of(request) is None:
        return error_response(401, "unauthorised", "Sign in to see the map.")
    proxy = request.app[proxy_key]
    z = _coordinate(request.match_info["z"])
    x = _coordinate(request.match_info["x"])
    y = _coordinate(request.match_info["y"])
    if z is None or x is None or y is None:
        return error_response(400, "bad_tile", "Zoom, x and y must be whole numbers.")
    if not proxy.min_zoom <= z <= proxy.max_zoom:
        return error_response(
            400, "bad_tile", f"Zoom must be from {proxy.min_zoom} to {proxy.max_zoom}."
        )
    if x >= 2**z or y >= 2**z:
        return error_response(400, "bad_tile", f"x and y must be below {2**z} at zoom {z}.")
    tile_id = (z, x, y)
    found = proxy.cache.get(tile_id)
    if found is not None:
        proxy.cache.move_to_end(tile_id)
    else:
        found = await proxy.fetch(z, x, y)
        if found is None:
            return web.Response(status=502, headers={"Cache-Control": "no-store"})
        proxy.remember(tile_id, found)
    content_type, body = found
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
    )


def setup(app: web.Application, ctx: WebContext) -> None:
    cfg = ctx.council.file.map
    proxy = TileProxy(cfg.tiles, ctx.settings.map_key or "", cfg.min_zoom, cfg.max_zoom)
    if "{key}" in cfg.tiles and not ctx.settings.map_key:
        log.warning("map.tiles asks for {key} but RESPONDER_MAP_KEY is not set: tiles will fail")
    app[proxy_key] = proxy

    async def session(app: web.Application) -> AsyncIterator[None]:
        proxy.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS, connect=3),
            headers={"User-Agent": f"Responder/{__version__} (council map tile proxy)"},
        )
        try:
            yield
        finally:
            await proxy.session.close()
            proxy.session = None

    app.cleanup_ctx.append(session)
    app.router.add_get("/tiles/{z}/{x}/{y}.png", tile)
