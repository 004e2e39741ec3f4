"""Read the ward boundaries (GeoJSON) the council file names, and check them.

A ward file usually comes from a GIS export or the ONS, and the mistakes a new user
makes with one are silent: latitude and longitude swapped, British National Grid metres
instead of degrees, a ring left open, two wards claiming the same streets, the ward name
in another property. Each would send reports to the wrong ward or to none, so each is
refused here, saying what to do about it.

In problem paths ``wards[i]`` is the i-th feature of the GeoJSON file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from responder.config.model import Ward, WardFile
from responder.config.wording import duplicates, hint, shown

# Overlaps smaller than this (m²) are slivers along a shared edge, left by digitising or
# reprojection; anything larger could hold a house whose reports would go to either ward.
OVERLAP_TOLERANCE_M2 = 100.0
# Metres in a degree of latitude (a degree of longitude is this times cos(latitude)):
# close enough to size an overlap without a projection library.
_METRES_PER_DEGREE = 111_320.0

# Ranges that tell a UK council's coordinates apart. The National Grid's origin lies
# south-west of Scilly, so every GB ward is kilometres from it on both axes.
_UK_LAT = (49.0, 61.0)
_UK_LON = (-9.0, 2.0)
_BNG_EASTING = (1_000.0, 700_000.0)
_BNG_NORTHING = (1_000.0, 1_300_000.0)

Axes = Literal["lonlat", "latlon", "bng", "other"]
_AXES_ADVICE: dict[str | None, str] = {
    "latlon": "coordinates look like [lat, lon]; GeoJSON wants [longitude, latitude]",
    "bng": (
        "these look like British National Grid (EPSG:27700): reproject to WGS84 "
        "(EPSG:4326), e.g. 'ogr2ogr -t_srs EPSG:4326 wards-wgs84.geojson wards.geojson' "
        "or QGIS's Export > Save Features As with CRS EPSG:4326"
    ),
}


@dataclass(frozen=True)
class _Feature:
    index: int
    name: str | None
    geometry: BaseGeometry | None  # None: missing or refused
    axes: Axes | None = None  # how its coordinates read; None: no coordinates to judge


def load_wards(
    source: WardFile, base: Path, at: str
) -> tuple[list[Ward], list[str] | None, list[str]]:
    """(wards in file order, every ward name found or None if unknown, problems).

    ``at`` is the key path of the file's name in the council file (``wards`` or ``wards.file``).
    """
    features, problem = _read_features(source.file, base, at)
    if problem is not None:
        return [], None if features is None else [], [problem]
    assert features is not None
    # Without the name property the shapes are still checked, so one run tells a new user
    # both "name_property: WD23NM" and "reproject from the National Grid".
    missing = _name_property_missing(source, features)
    found: list[_Feature] = []
    problems = [missing] if missing else []
    for i, feature in enumerate(features):
        read, feature_problems = _read_feature(i, feature, source.name_property, not missing)
        found.append(read)
        problems += feature_problems
    problems += _axes_problems(found, source.file, at)
    if missing:
        return [], None, problems  # None: ward names unknown, so references go unchecked
    problems += _overlaps([f for f in found if f.name is not None and f.geometry is not None])
    named = [
        (f"wards[{f.index}].properties.{source.name_property}", f.name) for f in found if f.name
    ]
    problems += duplicates(named, "ward name")
    wards = [Ward(f.name, f.geometry) for f in found if f.name and f.geometry is not None]
    return wards, list(dict.fromkeys(name for _, name in named)), problems


def _read_features(ref: str, base: Path, at: str) -> tuple[list[Any] | None, str | None]:
    """(the features, None), or (None or [] if the file has none, the problem)."""
    path = base / ref
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{at}: ward file not found {str(path)!r}"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{at}: cannot read the ward file {str(path)!r} ({exc})"
    except json.JSONDecodeError as exc:
        return None, f"{at}: not valid JSON in {ref!r} ({exc})"
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list) or doc.get("type") != "FeatureCollection":
        return None, f"{at}: {ref!r} should be a GeoJSON FeatureCollection with features"
    if not features:
        return [], f"{at}: {ref!r} has no features, so no wards"
    return features, None


def _name_property_missing(source: WardFile, features: list[Any]) -> str | None:
    """A problem when no feature has the name property at all: the file names it otherwise."""
    wanted = source.name_property
    properties: list[dict[Any, Any]] = [
        f["properties"]
        for f in features
        if isinstance(f, dict) and isinstance(f.get("properties"), dict)
    ]
    present = list(dict.fromkeys(key for p in properties for key in p if isinstance(key, str)))
    if not present or any(wanted in p for p in properties):
        return None  # a missing name is then reported ward by ward
    listed = ", ".join(present)
    if "name_property" in source.model_fields_set:
        return (
            f"wards.name_property: no ward in {source.file!r} has the property {wanted!r}"
            f"{hint(wanted, present, list_known=False)}; the properties there are: {listed}"
        )
    return (
        f"wards: the wards in {source.file!r} have no {wanted!r} property; name the one "
        f"holding the ward's name, e.g. wards: {{file: {source.file}, name_property: "
        f"{_likely_name(present)}}} (the properties there are: {listed})"
    )


def _likely_name(properties: Sequence[str]) -> str:
    # ONS boundary files: WD23CD is the code, WD23NM the name (WD23NMW the Welsh name).
    for key in properties:
        folded = key.casefold()
        if folded.endswith("nm") or "name" in folded:
            return key
    return properties[0]


def _read_feature(
    i: int, feature: Any, name_property: str, named: bool = True
) -> tuple[_Feature, list[str]]:
    """The feature read, and its problems; ``named``: whether its name can be expected."""
    at = f"wards[{i}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return _Feature(i, None, None), [f"{at}: should be a GeoJSON Feature, got {shown(feature)}"]
    properties = feature.get("properties")
    name = properties.get(name_property) if isinstance(properties, dict) else None
    problems = []
    if not isinstance(name, str) or not name.strip():
        if named:
            problems.append(
                f"{at}.properties.{name_property}: every ward needs a name, got {name!r}"
            )
        name = None
    geometry, axes, geometry_problems = _read_geometry(
        f"{at}.geometry", feature.get("geometry"), name
    )
    return _Feature(i, name, geometry, axes), problems + geometry_problems


def _read_geometry(
    at: str, geometry: Any, ward: str | None
) -> tuple[BaseGeometry | None, Axes | None, list[str]]:
    which = f" (ward {ward!r})" if ward else ""
    kind = geometry.get("type") if isinstance(geometry, dict) else geometry
    if kind not in ("Polygon", "MultiPolygon"):
        return None, None, [f"{at}: should be a Polygon or MultiPolygon, got {kind!r}{which}"]
    try:
        shaped = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        return None, None, [f"{at}: malformed coordinates ({exc}){which}"]
    if shaped.is_empty:
        return None, None, [f"{at}: the {kind} has no coordinates{which}"]

    # shapely closes an open ring silently; the file's author should know it was open.
    problems = [f"{problem}{which}" for problem in _open_rings(at, geometry)]
    coordinates = shapely.get_coordinates(shaped)
    axes = _axes(coordinates)
    if axes == "other":
        x, y = next((x, y) for x, y in coordinates if not (-180 <= x <= 180 and -90 <= y <= 90))
        problems.append(
            f"{at}: coordinates outside lon -180..180 / lat -90..90 [{x:g}, {y:g}]{which}"
        )
    if not shaped.is_valid:
        problems.append(f"{at}: invalid polygon: {explain_validity(shaped)}{which}")
    refused = problems or axes != "lonlat"
    return (None if refused else shaped), axes, problems


def _open_rings(at: str, geometry: dict[str, Any]) -> Iterator[str]:
    """A problem for each ring whose last point is not its first."""
    is_polygon = geometry["type"] == "Polygon"
    polygons = [geometry["coordinates"]] if is_polygon else geometry["coordinates"]
    for p, rings in enumerate(polygons):
        for r, ring in enumerate(rings):
            if list(ring[0]) != list(ring[-1]):
                path = f"{at}.coordinates[{r}]" if is_polygon else f"{at}.coordinates[{p}][{r}]"
                yield (
                    f"{path}: the ring does not close: it starts at {_point(ring[0])} but "
                    f"ends at {_point(ring[-1])}; repeat the first point at the end"
                )


def _point(position: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in position) + "]"


def _axes(coordinates: Any) -> Axes:
    """How a ward's coordinates read: [lon, lat] as GeoJSON wants, swapped, or grid metres."""
    xs, ys = coordinates[:, 0], coordinates[:, 1]

    def within(values: Any, bounds: tuple[float, float]) -> bool:
        return bool(((values >= bounds[0]) & (values <= bounds[1])).all())

    if within(xs, _UK_LAT) and within(ys, _UK_LON):
        return "latlon"
    if within(xs, (-180.0, 180.0)) and within(ys, (-90.0, 90.0)):
        return "lonlat"
    if within(xs, _BNG_EASTING) and within(ys, _BNG_NORTHING):
        return "bng"
    return "other"


def _axes_problems(found: Sequence[_Feature], ref: str, at: str) -> list[str]:
    """Swapped or grid coordinates: one line for the whole file when every ward has them."""
    judged = [f for f in found if f.axes is not None]
    wrong = [f for f in judged if f.axes in _AXES_ADVICE]
    if len(wrong) > 1 and len(wrong) == len(judged) and len({f.axes for f in wrong}) == 1:
        advice = _AXES_ADVICE[wrong[0].axes]
        return [f"{at}: every ward in {ref!r}: {advice}"]
    return [
        f"wards[{f.index}].geometry: {_AXES_ADVICE[f.axes]}"
        + (f" (ward {f.name!r})" if f.name else "")
        for f in wrong
    ]


def _overlaps(wards: Sequence[_Feature]) -> Iterator[str]:
    """Each pair of wards sharing more than a sliver of area: a report there has two wards."""
    shapes = [f.geometry for f in wards]
    if len(shapes) < 2:
        return
    left, right = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    for i, j in sorted({(int(a), int(b)) for a, b in zip(left, right, strict=True) if a < b}):
        first, second = wards[i], wards[j]
        assert first.geometry is not None and second.geometry is not None
        overlap = first.geometry.intersection(second.geometry)
        area = _square_metres(overlap)
        if area > OVERLAP_TOLERANCE_M2:
            where = overlap.representative_point()
            yield (
                f"wards[{first.index}]: ward {first.name!r} overlaps ward {second.name!r} "
                f"(wards[{second.index}]) by about {area:,.0f} m² around "
                f"[{where.x:.5f}, {where.y:.5f}]; wards may share edges but not area, "
                "so fix the boundaries"
            )


def _square_metres(geometry: BaseGeometry) -> float:
    if geometry.is_empty or geometry.area == 0:
        return 0.0
    scale = _METRES_PER_DEGREE**2 * math.cos(math.radians(geometry.centroid.y))
    return float(geometry.area * scale)
