"""A different council, written by the test, proves nothing is hard-wired to the example."""

from __future__ import annotations

import json

import pytest
from support import INTAKE_SECRET

from responder.app import build_app
from responder.settings import Settings

AUTH = {"Authorization": f"Bearer {INTAKE_SECRET}"}

# Two wards: a triangle and a two-part MultiPolygon, nowhere near the example's.
WARDS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "Harbour"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[-1.10, 50.78], [-1.05, 50.78], [-1.075, 50.82], [-1.10, 50.78]]],
            },
        },
        {
            "type": "Feature",
            "properties": {"name": "Islands"},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [
                    [
                        [
                            [-1.00, 50.78],
                            [-0.98, 50.78],
                            [-0.98, 50.80],
                            [-1.00, 50.80],
                            [-1.00, 50.78],
                        ]
                    ],
                    [
                        [
                            [-0.95, 50.78],
                            [-0.93, 50.78],
                            [-0.93, 50.80],
                            [-0.95, 50.80],
                            [-0.95, 50.78],
                        ]
                    ],
                ],
            },
        },
    ],
}

COUNCIL = """
council: {name: Other Harbour Council, timezone: Europe/London, reference_prefix: OHC}
priorities: {P1: 2, P2: 48, P3: 336}
wards: boundaries.geojson
services:
  - {code: cleansing, name: Cleansing}
task_types:
  - {code: sharps, name: Sharps, service: cleansing, priority: P1}
  - {code: leaves, name: Leaves, service: cleansing, priority: P3}
teams:
  - {code: harbour, name: Harbour crew, services: [cleansing], wards: [Harbour],
     routing: round-robin, managers: [mia], officers: [olu, pat, quinn]}
  - {code: islands, name: Island crew, services: [cleansing], wards: [Islands],
     routing: queue, managers: [mia], officers: [ray]}
people:
  - {id: mia, name: Mia, role: manager}
  - {id: olu, name: Olu, role: officer}
  - {id: pat, name: Pat, role: officer}
  - {id: quinn, name: Quinn, role: officer}
  - {id: ray, name: Ray, role: officer}
rules:
  - when: {type: leaves, text_matches: "(?i)blocking|slippery"}
    at_least: P2
duplicates: {within_metres: 0}
"""


@pytest.fixture
def council_path(tmp_path):
    (tmp_path / "boundaries.geojson").write_text(json.dumps(WARDS))
    path = tmp_path / "other.yaml"
    path.write_text(COUNCIL)
    return path


@pytest.fixture
async def other(aiohttp_client, database_url, council_path, clock):
    settings = Settings(
        database_url=database_url, config_path=council_path, intake_keys={"forms": INTAKE_SECRET}
    )
    return await aiohttp_client(build_app(settings, clock=clock))


async def _post(client, type_, lat, lon, description=""):
    resp = await client.post(
        "/api/tasks",
        headers=AUTH,
        json={"type": type_, "description": description, "location": {"lat": lat, "lon": lon}},
    )
    return resp.status, await resp.json()


async def test_other_council_routes_with_its_own_names_and_shapes(other):
    status, task = await _post(other, "sharps", 50.79, -1.075)
    assert status == 201
    assert task["reference"].startswith("OHC-")
    assert (task["ward"], task["team"], task["priority"], task["assignee"]) == (
        "Harbour",
        "harbour",
        "P1",
        "olu",
    )
    # P1 is two hours.
    assert task["due_at"] == "2026-11-23T11:00:00Z"
    # duplicates disabled (0 m): the same spot makes a new task; round-robin moves on.
    assigned = [(await _post(other, "sharps", 50.79, -1.075))[1]["assignee"] for _ in range(3)]
    assert assigned == ["pat", "quinn", "olu"]
    # Both parts of the MultiPolygon ward are Islands, routed to the queue team.
    for lon in (-0.99, -0.94):
        status, task = await _post(other, "leaves", 50.79, lon, "Leaves blocking the drain")
        assert (status, task["ward"], task["team"], task["assignee"], task["priority"]) == (
            201,
            "Islands",
            "islands",
            None,
            "P2",
        )
    # Between the two parts is outside the council.
    status, answer = await _post(other, "leaves", 50.79, -0.965)
    assert status == 422 and answer["problems"][0]["field"] == "location"
    # The example's types do not exist here.
    status, answer = await _post(other, "fly-tipping", 50.79, -1.075)
    assert status == 422 and answer["problems"][0]["field"] == "type"
    resp = await other.get(f"/api/tasks/{task['reference']}", headers=AUTH)
    assert resp.status == 200
