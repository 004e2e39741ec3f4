"""`responder check-config`, tried as a new user would (issue 16): mistakes that used to pass
silently are refused with the key path and what to do about it."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import EXAMPLES, ROOT, write_council

from responder.cli import main
from responder.config import load_council
from responder.config.model import NOTIFY_EVENTS
from responder.domain.routing import WardLocator, route
from responder.notify.personalisation import EVENT_FIELDS

EXAMPLE_WARDS: dict[str, Any] = json.loads((EXAMPLES / "wards.geojson").read_text())
RESPONDER = ROOT / ".venv" / "bin" / "responder"
CRON_HELP = (
    "a cron expression has five fields, minute hour day-of-month month day-of-week, "
    "e.g. '0 7 * * 1-5' for 07:00 on weekdays"
)
BNG_ADVICE = (
    "these look like British National Grid (EPSG:27700): reproject to WGS84 (EPSG:4326), "
    "e.g. 'ogr2ogr -t_srs EPSG:4326 wards-wgs84.geojson wards.geojson' or QGIS's "
    "Export > Save Features As with CRS EPSG:4326"
)
SWAPPED_ADVICE = "coordinates look like [lat, lon]; GeoJSON wants [longitude, latitude]"


def council_file(
    tmp_path: Path,
    change: Callable[[dict], None] | None = None,
    wards: dict[str, Any] | None = None,
) -> Path:
    """The example council changed by ``change``, with ``wards`` as its wards.geojson."""
    path = write_council(tmp_path, change)
    if wards is not None:
        (path.parent / "wards.geojson").write_text(json.dumps(wards))
    return path


def check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Run `responder check-config FILE`: (exit status, the problem lines it printed)."""
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(path)])
    lines = capsys.readouterr().out.splitlines()
    status = exited.value.code
    assert isinstance(status, int)
    if status == 0:
        return status, lines
    assert lines[0] == f"{path}: {len(lines) - 1} problem{'s' if len(lines) > 2 else ''}:"
    return status, [line.strip() for line in lines[1:]]


def edited_wards(change: Callable[[list[dict[str, Any]]], None]) -> dict[str, Any]:
    """A copy of the example's wards with ``change`` applied to its features."""
    wards = copy.deepcopy(EXAMPLE_WARDS)
    change(wards["features"])
    return wards


def each_position(wards: dict[str, Any], move: Callable[[list[float]], list[float]]) -> None:
    for feature in wards["features"]:
        for ring in feature["geometry"]["coordinates"]:
            ring[:] = [move(position) for position in ring]


# --- Files that pass -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [EXAMPLES / "council.yaml", ROOT / "responder/defaults/council.yaml"]
)
def test_the_example_council_still_passes(path, capsys):
    status, lines = check_config(path, capsys)
    assert status == 0
    assert lines == [
        f"{path}: OK (Sample Borough Council: 4 wards, 14 task types, 3 teams, 10 people)"
    ]


def test_wards_named_by_a_custom_property_load_and_route(tmp_path, capsys):
    # As an ONS boundary file names them: WD23CD the code, WD23NM the name.
    def ons(features: list[dict[str, Any]]) -> None:
        for i, feature in enumerate(features):
            name = feature["properties"].pop("name")
            feature["properties"] = {"WD23CD": f"E0500000{i}", "WD23NM": name}

    def name_property(data: dict) -> None:
        data["wards"] = {"file": "wards.geojson", "name_property": "WD23NM"}

    path = council_file(tmp_path, name_property, edited_wards(ons))
    assert check_config(path, capsys)[0] == 0
    council = load_council(path)
    assert [w.name for w in council.wards] == ["Northgate", "Eastwood", "Southmere", "Riverside"]
    locator = WardLocator(council.wards)
    assert locator.locate(51.89, 0.91) == "Riverside"
    decision = route(council, locator, "fly-tipping", 51.91, 0.89, [], None)
    assert (decision.ward, decision.team) == ("Northgate", "sc-north")


def test_slivers_along_a_shared_edge_are_not_overlaps(tmp_path, capsys):
    # Eastwood's west edge 1e-7 degrees into Northgate: about 15 m² along 2.2 km.
    def nudge(features: list[dict[str, Any]]) -> None:
        for position in features[1]["geometry"]["coordinates"][0]:
            if position[0] == 0.9:
                position[0] = 0.9 - 1e-7

    assert check_config(council_file(tmp_path, wards=edited_wards(nudge)), capsys)[0] == 0


# --- Mistakes that are refused -------------------------------------------------------


def test_a_misspelt_notify_event_is_refused_with_the_name_meant(tmp_path, capsys):
    def misspell(data: dict) -> None:
        events = data["notify"]["events"]
        events["recieved"] = events.pop("received")

    assert check_config(council_file(tmp_path, misspell), capsys) == (
        1,
        ["notify.events.recieved: unknown Notify event 'recieved' (did you mean 'received'?)"],
    )


def test_the_notify_events_known_are_the_ones_sent():
    assert set(NOTIFY_EVENTS) == set(EVENT_FIELDS)


def test_a_ring_that_does_not_close_is_refused(tmp_path, capsys):
    def open_ring(features: list[dict[str, Any]]) -> None:
        features[1]["geometry"]["coordinates"][0].pop()  # Eastwood's closing point
        riverside = features[3]
        riverside["geometry"] = {
            "type": "MultiPolygon",
            "coordinates": [riverside["geometry"]["coordinates"]],
        }
        riverside["geometry"]["coordinates"][0][0].pop()

    status, problems = check_config(council_file(tmp_path, wards=edited_wards(open_ring)), capsys)
    assert (status, problems) == (
        1,
        [
            "wards[1].geometry.coordinates[0]: the ring does not close: it starts at "
            "[0.9, 51.9] but ends at [0.9, 51.92]; repeat the first point at the end "
            "(ward 'Eastwood')",
            "wards[3].geometry.coordinates[0][0]: the ring does not close: it starts at "
            "[0.9, 51.88] but ends at [0.9, 51.9]; repeat the first point at the end "
            "(ward 'Riverside')",
        ],
    )


def test_overlapping_wards_are_refused_naming_both(tmp_path, capsys):
    # Eastwood drawn 0.005 degrees too far west, over Northgate's east side.
    def shift(features: list[dict[str, Any]]) -> None:
        for position in features[1]["geometry"]["coordinates"][0]:
            position[0] = round(position[0] - 0.005, 6)

    status, problems = check_config(council_file(tmp_path, wards=edited_wards(shift)), capsys)
    assert (status, problems) == (
        1,
        [
            "wards[0]: ward 'Northgate' overlaps ward 'Eastwood' (wards[1]) by about "
            "764,469 m² around [0.89750, 51.91000]; wards may share edges but not area, "
            "so fix the boundaries"
        ],
    )


def test_latitude_and_longitude_swapped_in_every_ward(tmp_path, capsys):
    wards = copy.deepcopy(EXAMPLE_WARDS)
    each_position(wards, lambda position: [position[1], position[0]])
    status, problems = check_config(council_file(tmp_path, wards=wards), capsys)
    assert (status, problems) == (1, [f"wards: every ward in 'wards.geojson': {SWAPPED_ADVICE}"])


def test_latitude_and_longitude_swapped_in_one_ward(tmp_path, capsys):
    def swap(features: list[dict[str, Any]]) -> None:
        ring = features[2]["geometry"]["coordinates"][0]
        ring[:] = [[lat, lon] for lon, lat in ring]

    status, problems = check_config(council_file(tmp_path, wards=edited_wards(swap)), capsys)
    assert (status, problems) == (1, [f"wards[2].geometry: {SWAPPED_ADVICE} (ward 'Southmere')"])


def test_british_national_grid_coordinates_are_refused_with_how_to_reproject(tmp_path, capsys):
    # Roughly where the example's wards are, as eastings and northings in metres.
    wards = copy.deepcopy(EXAMPLE_WARDS)
    each_position(
        wards, lambda p: [600_000 + (p[0] - 0.88) * 68_700, 224_000 + (p[1] - 51.88) * 111_000]
    )
    status, problems = check_config(council_file(tmp_path, wards=wards), capsys)
    assert (status, problems) == (1, [f"wards: every ward in 'wards.geojson': {BNG_ADVICE}"])


def test_british_national_grid_coordinates_in_one_ward(tmp_path, capsys):
    def to_grid(features: list[dict[str, Any]]) -> None:
        features[0]["geometry"]["coordinates"] = [
            [[600_000, 224_000], [601_000, 224_000], [601_000, 225_000], [600_000, 224_000]]
        ]

    status, problems = check_config(council_file(tmp_path, wards=edited_wards(to_grid)), capsys)
    assert (status, problems) == (1, [f"wards[0].geometry: {BNG_ADVICE} (ward 'Northgate')"])


def ons_wards() -> dict[str, Any]:
    def ons(features: list[dict[str, Any]]) -> None:
        for i, feature in enumerate(features):
            feature["properties"] = {
                "WD23CD": f"E0500000{i}",
                "WD23NM": feature["properties"]["name"],
            }

    return edited_wards(ons)


def test_a_ward_file_without_name_says_which_property_to_name(tmp_path, capsys):
    status, problems = check_config(council_file(tmp_path, wards=ons_wards()), capsys)
    assert (status, problems) == (
        1,
        [
            "wards: the wards in 'wards.geojson' have no 'name' property; name the one "
            "holding the ward's name, e.g. wards: {file: wards.geojson, name_property: WD23NM} "
            "(the properties there are: WD23CD, WD23NM)"
        ],
    )


def test_an_ons_file_in_national_grid_gets_both_answers_in_one_run(tmp_path, capsys):
    wards = ons_wards()
    each_position(wards, lambda p: [600_000 + p[0] * 1000, 224_000 + p[1] * 1000])
    status, problems = check_config(council_file(tmp_path, wards=wards), capsys)
    assert status == 1
    assert problems == [
        "wards: the wards in 'wards.geojson' have no 'name' property; name the one "
        "holding the ward's name, e.g. wards: {file: wards.geojson, name_property: WD23NM} "
        "(the properties there are: WD23CD, WD23NM)",
        f"wards: every ward in 'wards.geojson': {BNG_ADVICE}",
    ]


def test_an_unknown_name_property_lists_the_properties_there(tmp_path, capsys):
    def name_property(data: dict) -> None:
        data["wards"] = {"file": "wards.geojson", "name_property": "WD23MN"}

    path = council_file(tmp_path, name_property, ons_wards())
    assert check_config(path, capsys) == (
        1,
        [
            "wards.name_property: no ward in 'wards.geojson' has the property 'WD23MN' "
            "(did you mean 'WD23NM'?); the properties there are: WD23CD, WD23NM"
        ],
    )


@pytest.mark.parametrize(
    ("wards", "problem"),
    [
        (
            {"file": "wards.geojson", "nam_property": "WD23NM"},
            "wards.nam_property: unknown key (did you mean 'name_property'?)",
        ),
        (
            {"file": "boundaries.geojson"},
            "wards.file: ward file not found '{folder}/boundaries.geojson'",
        ),
        (
            5,
            "wards: should be the ward file's path (like wards.geojson) or a mapping with "
            "file: and name_property:, got 5",
        ),
    ],
)
def test_the_wards_key_itself(tmp_path, capsys, wards, problem):
    path = council_file(tmp_path, lambda data: data.__setitem__("wards", wards))
    assert check_config(path, capsys) == (1, [problem.format(folder=path.parent)])


def test_unknown_people_and_wards_get_the_name_meant(tmp_path, capsys):
    def misspell(data: dict) -> None:
        data["teams"][0]["managers"] = ["alcie"]
        data["teams"][0]["officers"][1] = "carl"
        data["teams"][1]["wards"][0] = "Southmeer"
        data["teams"][2]["routing"] = "least-loded"
        data["people"][8]["wards"] = ["northgate"]
        data["people"][9]["role"] = "councilor"

    status, problems = check_config(council_file(tmp_path, misspell), capsys)
    assert (status, problems) == (
        1,
        [
            "teams[2].routing: should be 'least-loaded', 'round-robin' or 'queue', "
            "got 'least-loded' (did you mean 'least-loaded'?)",
            "people[9].role: should be 'manager', 'officer' or 'councillor', "
            "got 'councilor' (did you mean 'councillor'?)",
            "teams[0].managers[0]: unknown person 'alcie' (did you mean 'alice'?)",
            "teams[0].officers[1]: unknown person 'carl' (did you mean 'carol'?)",
            "teams[1].wards[0]: unknown ward 'Southmeer' (did you mean 'Southmere'?)",
            "people[8].wards[0]: unknown ward 'northgate' (did you mean 'Northgate'?)",
        ],
    )


@pytest.mark.parametrize("schedule", ["0 7 * * 1-5", "30 6 1 jan-mar mon", "@daily"])
def test_cron_expressions_that_pass(tmp_path, capsys, schedule):
    path = council_file(tmp_path, lambda data: data["digest"].__setitem__("schedule", schedule))
    assert check_config(path, capsys)[0] == 0


@pytest.mark.parametrize(
    ("schedule", "fault"),
    [
        ("every weekday at 7", "it has 4 fields"),
        ("0 7 * * 1-5 2026 extra", "it has 7 fields"),
        ("0 7 * * 1-5 *", "it has 6 fields"),
        ("0 25 * * 1-5", "the hour field '25' should be 0-23"),
        (
            "0 7 * * mon-fry",
            "the day-of-week field 'mon-fry' should be 0-6 from Sunday, or sun-sat",
        ),
    ],
)
def test_a_bad_cron_expression_is_explained_with_an_example(tmp_path, capsys, schedule, fault):
    path = council_file(tmp_path, lambda data: data["digest"].__setitem__("schedule", schedule))
    assert check_config(path, capsys) == (
        1,
        [f"digest.schedule: invalid cron expression {schedule!r} ({fault}); {CRON_HELP}"],
    )


def test_the_installed_command_refuses_swapped_coordinates(tmp_path):
    wards = copy.deepcopy(EXAMPLE_WARDS)
    each_position(wards, lambda position: [position[1], position[0]])
    path = council_file(tmp_path, wards=wards)
    run = subprocess.run(
        [str(RESPONDER), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        f"{path}: 1 problem:",
        f"  wards: every ward in 'wards.geojson': {SWAPPED_ADVICE}",
    ]


def test_a_source_says_how_it_sends_and_names_real_photo_hosts(tmp_path, capsys):
    def sources(data: dict) -> None:
        data["sources"] = {
            "fixmystreet": {
                "open311": {},
                "auth": "hmac",
                "photo_hosts": ["fixmystreet.com", "*.fixmystreet.com", "https://fms.example/"],
            },
            "nowhere": {"photo_hosts": []},
        }

    assert check_config(council_file(tmp_path, sources), capsys) == (
        1,
        [
            "sources.fixmystreet.auth: FixMyStreet signs in with its api_key; leave auth out",
            "sources.fixmystreet.photo_hosts[2]: not a host name, e.g. fixmystreet.com or "
            "*.fixmystreet.com, got 'https://fms.example/'",
            "sources.nowhere: say how the source sends reports (open311: or form:)",
        ],
    )


def test_the_readmes_sources_example_loads(tmp_path, capsys):
    """The README shows a council how sources and subscribers read: that YAML must load."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## FixMyStreet, forms packages") :]
    example = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    assert set(example) == {"sources", "subscribers"}
    path = council_file(tmp_path, lambda data: data.update(example))
    assert check_config(path, capsys)[0] == 0
