"""Great-circle distances and bounding boxes (pure maths, no GIS dependency needed)."""

from __future__ import annotations

from math import asin, cos, degrees, pi, radians, sin, sqrt

# Mean Earth radius (IUGG); the error against the ellipsoid is well under 0.5 %,
# far below the accuracy of a resident's phone location.
EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in metres between two WGS84 points given in degrees."""
    p1, p2 = radians(lat1), radians(lat2)
    dp, dl = p2 - p1, radians(lon2 - lon1)
    h = sin(dp / 2) ** 2 + cos(p1) * cos(p2) * sin(dl / 2) ** 2
    # min() guards against h creeping past 1 through rounding for antipodal points.
    return 2 * EARTH_RADIUS_M * asin(min(1.0, sqrt(h)))


def bbox(lat: float, lon: float, metres: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing every point within ``metres``.

    Meant as a cheap SQL prefilter before the exact haversine test, so it must never
    be too small: the longitude half-width uses the exact spherical-cap formula
    (``d / cos(lat)`` under-estimates it away from the equator). A circle reaching a
    pole, or crossing the antimeridian, gets the full longitude range.
    """
    d = max(metres, 0.0) / EARTH_RADIUS_M  # angular radius, radians
    if d >= pi:
        return (-90.0, 90.0, -180.0, 180.0)
    min_lat, max_lat = lat - degrees(d), lat + degrees(d)
    if min_lat <= -90.0 or max_lat >= 90.0:
        return (max(min_lat, -90.0), min(max_lat, 90.0), -180.0, 180.0)
    ratio = sin(d) / cos(radians(lat))
    if ratio >= 1.0:
        return (min_lat, max_lat, -180.0, 180.0)
    half = degrees(asin(ratio))
    min_lon, max_lon = lon - half, lon + half
    if min_lon < -180.0 or max_lon > 180.0:
        return (min_lat, max_lat, -180.0, 180.0)
    return (min_lat, max_lat, min_lon, max_lon)
