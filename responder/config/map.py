"""``map:`` in the council file: where the web map's tiles come from.

Browsers never fetch tiles from the tile service itself: they ask Responder's tile proxy
(``/tiles/{z}/{x}/{y}``), which fills in ``{key}`` from ``RESPONDER_MAP_KEY`` (so an OS
Maps API key stays on the server) and keeps the pages' Content-Security-Policy to
``'self'``. The default is OpenStreetMap's tiles, for development and trials; a council in
production uses its own licensed service (the OS Maps API under the PSGA).
"""

from __future__ import annotations

from pydantic import Field

from responder.config.base import Strict

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"


class MapConfig(Strict):
    # The tile URL template: {z}, {x}, {y}, and optionally {key} (from RESPONDER_MAP_KEY).
    tiles: str = Field(default=OSM_TILES, min_length=1, max_length=2048)
    # Shown on every map, as the tile service's licence requires.
    attribution: str = Field(default=OSM_ATTRIBUTION, min_length=1, max_length=300)
    min_zoom: int = Field(default=7, ge=0, le=22)
    max_zoom: int = Field(default=19, ge=0, le=22)
