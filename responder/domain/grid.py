"""British National Grid (EPSG:27700) eastings and northings to and from WGS84 lat/lon.

FixMyStreet sends ``attribute[easting]``/``attribute[northing]`` beside lat/long, and some
UK forms packages send only a grid reference. The conversion is PROJ's (through pyproj),
never hand-written: PROJ picks the best transformation it has. Without the OSTN15 grid
file (not bundled with pyproj, and nothing here may download it: PROJ's network access
stays off) that is the Helmert transformation, good to a few metres: ample for finding
a ward and a street, and the report's own lat/long is used whenever it has one.
"""

from __future__ import annotations

import math
from functools import cache

from pyproj import Transformer

# What the grid covers (EPSG:27700's area of use, with a margin): a point outside is a
# wrong field or a typo, not a place in Great Britain.
EASTING_RANGE = (-10_000.0, 710_000.0)
NORTHING_RANGE = (-10_000.0, 1_250_000.0)


class GridError(ValueError):
    """Not a British National Grid position; the message says why."""


@cache
def _to_wgs84() -> Transformer:
    return Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)


@cache
def _to_grid() -> Transformer:
    return Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)


def to_lat_lon(easting: float, northing: float) -> tuple[float, float]:
    """(lat, lon) of a grid position, or GridError when it is not on the grid."""
    if not (math.isfinite(easting) and math.isfinite(northing)):
        raise GridError("must be finite numbers")
    if not EASTING_RANGE[0] <= easting <= EASTING_RANGE[1]:
        raise GridError("easting is not on the British National Grid")
    if not NORTHING_RANGE[0] <= northing <= NORTHING_RANGE[1]:
        raise GridError("northing is not on the British National Grid")
    lon, lat = _to_wgs84().transform(easting, northing)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise GridError("could not be converted")
    return lat, lon


def to_grid(lat: float, lon: float) -> tuple[float, float]:
    """(easting, northing) of a lat/lon, rounded to the metre (what FixMyStreet sends)."""
    easting, northing = _to_grid().transform(lon, lat)
    return round(easting), round(northing)
