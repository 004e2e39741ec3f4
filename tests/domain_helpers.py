"""Councils for the pure domain tests, built straight from the models.

Built without ``responder.config.load`` on purpose: these tests are about the task
logic, so a loader problem should not show up here as a routing failure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import shapely.geometry
import yaml

from responder.config.model import Council, CouncilFile, Ward

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def build_council(file_data: dict[str, Any], geojson: dict[str, Any]) -> Council:
    wards = tuple(
        Ward(f["properties"]["name"], shapely.geometry.shape(f["geometry"]))
        for f in geojson["features"]
    )
    return Council(file=CouncilFile.model_validate(file_data), wards=wards)


@cache
def example_council() -> Council:
    """examples/council.yaml: priorities urgent/high/normal/low, four square wards."""
    file_data = yaml.safe_load((EXAMPLES / "council.yaml").read_text())
    geojson = json.loads((EXAMPLES / "wards.geojson").read_text())
    return build_council(file_data, geojson)


# A second council that shares nothing with the example but the format: other priority
# names (P1..P3), a MultiPolygon ward, a ward with a hole and another ward inside it.
OTHER_COUNCIL_YAML = """
council: {name: Fenland Test District, timezone: Europe/London, reference_prefix: FEN2}
priorities: {P1: 2, P2: 12, P3: 48}
wards: wards.geojson
services:
  - {code: cleansing, name: Cleansing}
  - {code: highways, name: Highways}
task_types:
  - {code: sharps, name: Sharps, service: cleansing, priority: P1}
  - {code: litter, name: Litter, service: cleansing, priority: P3}
  - {code: pothole, name: Pothole, service: highways, priority: P2}
  - {code: abandoned-car, name: Abandoned car, service: highways, priority: P3}
teams:
  - {code: clean-a, name: Cleansing A, services: [cleansing], wards: [Isles, Marsh],
     routing: round-robin, managers: [mo], officers: [ann, ben, cat]}
  - {code: clean-b, name: Cleansing B, services: [cleansing], wards: [Marsh, Fen, Lake],
     routing: least-loaded, managers: [mo], officers: [dee, eve]}
  - {code: roads, name: Roads, services: [highways], wards: [Marsh, Fen, Lake],
     routing: queue, managers: [mo], officers: [fay]}
people:
  - {id: mo, name: Mo Manager, role: manager}
  - {id: ann, name: Ann, role: officer}
  - {id: ben, name: Ben, role: officer}
  - {id: cat, name: Cat, role: officer}
  - {id: dee, name: Dee, role: officer}
  - {id: eve, name: Eve, role: officer}
  - {id: fay, name: Fay, role: officer}
  - {id: cllr-x, name: Cllr X, role: councillor, wards: [Fen]}
rules:
  - when: {raised_by: councillor}
    at_least: P2
  - when: {type: litter, text_matches: "(?i)school|hospital"}
    priority: P1
  - when: {raised_by: officer, type: pothole, text_matches: "(?i)\\\\bminor\\\\b"}
    priority: P3
  - when: {type: pothole, repeat_reports: {within_days: 2, within_metres: 100, at_least: 2}}
    at_least: P1
  - when: {repeat_reports: {within_days: 10, within_metres: 30, at_least: 5}}
    at_least: P2
"""


def _square(lon0: float, lat0: float, size: float) -> list[list[float]]:
    return [
        [lon0, lat0],
        [lon0 + size, lat0],
        [lon0 + size, lat0 + size],
        [lon0, lat0 + size],
        [lon0, lat0],
    ]


def _feature(name: str, geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"name": name}, "geometry": geometry}


# Isles: two squares, lon 0..1 and 2..3 (lat 50..51), with Marsh (lon 1..2) between,
# sharing both edges. Fen: lon 0..3, lat 51..52, with a hole (lon 1.4..1.6,
# lat 51.4..51.6) that is the whole of Lake.
OTHER_WARDS: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        _feature(
            "Isles",
            {
                "type": "MultiPolygon",
                "coordinates": [[_square(0, 50, 1)], [_square(2, 50, 1)]],
            },
        ),
        _feature("Marsh", {"type": "Polygon", "coordinates": [_square(1, 50, 1)]}),
        _feature(
            "Fen",
            {
                "type": "Polygon",
                "coordinates": [
                    [[0, 51], [3, 51], [3, 52], [0, 52], [0, 51]],
                    _square(1.4, 51.4, 0.2),
                ],
            },
        ),
        _feature("Lake", {"type": "Polygon", "coordinates": [_square(1.4, 51.4, 0.2)]}),
    ],
}


@cache
def other_council() -> Council:
    return build_council(yaml.safe_load(OTHER_COUNCIL_YAML), OTHER_WARDS)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
