"""The council file loader: the example loads, and every kind of problem is reported."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from shapely.geometry import Point

from responder.config.load import ConfigError, load_council, validate_council_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_YAML = EXAMPLES / "council.yaml"
EXAMPLE_WARDS = json.loads((EXAMPLES / "wards.geojson").read_text())


CRON_HELP = (
    "a cron expression has five fields, minute hour day-of-month month day-of-week, "
    "e.g. '0 7 * * 1-5' for 07:00 on weekdays"
)


def example() -> dict[str, Any]:
    """A fresh copy of the example council as a dict, to be modified by a test."""
    return yaml.safe_load(EXAMPLE_YAML.read_text())


def write(tmp_path: Path, data: dict[str, Any], wards: dict[str, Any] | None = None) -> Path:
    """Write a council file (and its ward file beside it) into tmp_path."""
    (tmp_path / "wards.geojson").write_text(json.dumps(wards or EXAMPLE_WARDS))
    path = tmp_path / "council.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems_of(tmp_path: Path, data: dict[str, Any], wards: dict[str, Any] | None = None):
    council, problems = validate_council_file(write(tmp_path, data, wards))
    assert council is None
    assert problems
    return problems


def feature(name: Any, geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"name": name}, "geometry": geometry}


def square(x: float, y: float, size: float = 0.02) -> list[list[list[float]]]:
    return [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]


# --- Files that load -----------------------------------------------------------------


def test_example_loads_unchanged():
    council, problems = validate_council_file(EXAMPLE_YAML)
    assert problems == []
    assert council is not None
    assert council.source == EXAMPLE_YAML.resolve()
    assert [w.name for w in council.wards] == ["Northgate", "Eastwood", "Southmere", "Riverside"]
    assert load_council(str(EXAMPLE_YAML)).info.name == "Sample Borough Council"


def test_example_lookups():
    council = load_council(EXAMPLE_YAML)
    assert council.priority_names == ["urgent", "high", "normal", "low"]
    assert council.priority_rank("urgent") == 0
    assert council.priority_rank("low") == 3
    assert council.priority_hours("high") == 24
    assert [t.code for t in council.teams_for("Northgate", "trees")] == ["green"]
    assert [t.code for t in council.teams_for("Southmere", "street-cleansing")] == ["sc-south"]
    assert council.task_type("needles").priority == "urgent"
    assert council.team("green").routing == "queue"
    bob = council.person_by_aad("0B0B0000-0000-4000-8000-000000000003")
    assert bob is not None and bob.id == "bob"
    assert council.person_by_aad("unknown") is None
    assert str(council.tz) == "Europe/London"
    assert council.wards[0].geometry.contains(Point(0.89, 51.91))


def test_a_different_council_loads(tmp_path):
    """Nothing assumes the example's priority names, wards or teams."""
    wards = {
        "type": "FeatureCollection",
        "features": [
            feature("Old Town", {"type": "Polygon", "coordinates": square(-1.5, 53.8)}),
            feature(
                "Islands",
                {
                    "type": "MultiPolygon",
                    "coordinates": [square(-1.6, 53.8, 0.01), square(-1.6, 53.85, 0.01)],
                },
            ),
        ],
    }
    data = {
        "council": {"name": "Other District Council", "timezone": "Europe/Belfast"},
        "priorities": {"P1": 2, "P2": 48, "P3": 48},
        "wards": "wards.geojson",
        "services": [{"code": "clean", "name": "Cleansing"}],
        "task_types": [
            {"code": "spill", "name": "Spill", "service": "clean", "priority": "P1"},
            {"code": "litter", "name": "Litter", "service": "clean", "priority": "P3"},
        ],
        "teams": [
            {
                "code": "crew-a",
                "name": "Crew A",
                "services": ["clean"],
                "wards": ["Old Town", "Islands"],
                "officers": ["sam"],
            }
        ],
        "people": [{"id": "sam", "name": "Sam", "role": "officer"}],
        "rules": [{"when": {"raised_by": "councillor"}, "at_least": "P2"}],
        "digest": {"escalate_unaccepted_after_minutes": {"P1": 15}},
    }
    council, problems = validate_council_file(write(tmp_path, data, wards))
    assert problems == []
    assert council is not None
    assert council.priority_names == ["P1", "P2", "P3"]
    assert council.priority_rank("P3") == 2
    assert council.wards[1].geometry.geom_type == "MultiPolygon"
    assert [t.code for t in council.teams_for("Islands", "clean")] == ["crew-a"]
    assert council.info.reference_prefix == "RSP"
    assert str(council.tz) == "Europe/Belfast"


def test_load_council_raises_config_error_listing_problems(tmp_path):
    data = example()
    data["teams"][1]["wards"].insert(0, "Hill Parc")
    data["council"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ConfigError) as caught:
        load_council(write(tmp_path, data))
    assert "teams[1].wards[0]: unknown ward 'Hill Parc'" in caught.value.problems
    assert str(caught.value) == "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 2


# --- The file itself -----------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert validate_council_file(path) == (None, [f"{path}: file not found"])


def test_not_yaml(tmp_path):
    path = tmp_path / "council.yaml"
    path.write_text("council: {name: [unclosed\n")
    council, problems = validate_council_file(path)
    assert council is None
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: not valid YAML at line ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the file is empty"),
        (
            "- council\n",
            "the top level should be a mapping (council:, priorities:, ...), got a list",
        ),
        (
            "just words\n",
            "the top level should be a mapping (council:, priorities:, ...), got 'just words'",
        ),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path, text, problem):
    path = tmp_path / "council.yaml"
    path.write_text(text)
    assert validate_council_file(path) == (None, [f"{path}: {problem}"])


def test_duplicate_keys_are_reported_with_their_path(tmp_path):
    text = EXAMPLE_YAML.read_text().replace("  high: 24\n", "  high: 24\n  high: 48\n")
    lines = text.splitlines()
    first = lines.index("  high: 24") + 1
    (tmp_path / "council.yaml").write_text(text)
    shutil.copy(EXAMPLES / "wards.geojson", tmp_path)
    council, problems = validate_council_file(tmp_path / "council.yaml")
    assert council is None
    assert problems == [
        f"priorities.high: duplicate key 'high' at line {first + 1} (first at line {first})"
    ]


def test_duplicate_keys_inside_lists(tmp_path):
    text = EXAMPLE_YAML.read_text().replace(
        "    routing: round-robin\n", "    routing: round-robin\n    routing: queue\n"
    )
    (tmp_path / "council.yaml").write_text(text)
    shutil.copy(EXAMPLES / "wards.geojson", tmp_path)
    _, problems = validate_council_file(tmp_path / "council.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("teams[1].routing: duplicate key 'routing' at line ")


# --- Structure -----------------------------------------------------------------------


def test_structural_problems_have_key_paths_and_values(tmp_path):
    data = example()
    data["teams"][0]["routng"] = "queue"
    data["teams"][1]["routing"] = "fastest"
    del data["teams"][2]["name"]
    data["priorities"]["urgent"] = -4
    data["council"]["reference_prefix"] = "rsp"
    data["duplicates"] = [25]
    data["services"][0]["colour"] = "red"
    problems = problems_of(tmp_path, data)
    assert "teams[0].routng: unknown key (did you mean 'routing'?)" in problems
    assert (
        "teams[1].routing: should be 'least-loaded', 'round-robin' or 'queue', got 'fastest'"
        in problems
    )
    assert "teams[2].name: required but missing" in problems
    assert "priorities.urgent: should be greater than 0, got -4" in problems
    assert (
        "council.reference_prefix: should match pattern '^[A-Z][A-Z0-9]{0,7}$', got 'rsp'"
        in problems
    )
    assert "duplicates: should be a mapping (key: value), got a list" in problems
    assert "services[0].colour: unknown key (known: code, name, outcomes)" in problems


def test_missing_sections_and_wrong_types(tmp_path):
    data = example()
    del data["council"]
    data["teams"] = {"sc-north": {}}
    data["priorities"] = {1: 4, "high": 24}
    problems = problems_of(tmp_path, data)
    assert "council: required but missing" in problems
    assert "teams: should be a valid list, got a mapping" in problems
    assert "priorities.1: the key should be a valid string, got 1" in problems


def test_structural_errors_do_not_hide_cross_reference_problems(tmp_path):
    data = example()
    data["teams"][0]["routing"] = "fastest"  # this team is unusable...
    data["teams"][1]["wards"].insert(0, "Hill Parc")  # ...but this one is still checked
    data["services"][2]["name"] = ""  # a broken service still counts as known
    problems = problems_of(tmp_path, data)
    assert problems == [
        "services[2].name: should have at least 1 character, got ''",
        "teams[0].routing: should be 'least-loaded', 'round-robin' or 'queue', got 'fastest'",
        "teams[1].wards[0]: unknown ward 'Hill Parc'",
    ]


# --- council -------------------------------------------------------------------------


def test_unknown_timezone(tmp_path):
    data = example()
    data["council"]["timezone"] = "Europe/Londn"
    assert problems_of(tmp_path, data) == [
        "council.timezone: unknown time zone 'Europe/Londn' "
        "(use an IANA name such as 'Europe/London')"
    ]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://responder.example.gov.uk/base", True),
        ("http://localhost:8080", True),
        ("http://127.0.0.1:3978", True),
        ("http://responder.example.gov.uk", False),
        ("http://localhost.evil.example", False),
        ("ftp://example.gov.uk", False),
        ("responder.example.gov.uk", False),
    ],
)
def test_public_url(tmp_path, url, ok):
    data = example()
    data["council"]["public_url"] = url
    council, problems = validate_council_file(write(tmp_path, data))
    expected = [
        "council.public_url: should start with https:// (http:// only for localhost "
        f"or 127.0.0.1), got {url!r}"
    ]
    assert problems == ([] if ok else expected)


# --- priorities ----------------------------------------------------------------------


def test_priorities_must_be_listed_most_urgent_first(tmp_path):
    data = example()
    data["priorities"] = {"urgent": 4, "high": 24, "soon": 8, "normal": 72, "low": 1.5}
    assert problems_of(tmp_path, data) == [
        "priorities.soon: 8 hours is quicker than 'high' (24 hours) listed before it; "
        "list priorities most urgent first",
        "priorities.low: 1.5 hours is quicker than 'normal' (72 hours) listed before it; "
        "list priorities most urgent first",
    ]


# --- wards ---------------------------------------------------------------------------


def test_ward_file_missing(tmp_path):
    data = example()
    data["wards"] = "boundaries/wards.geojson"
    problems = problems_of(tmp_path, data)
    assert problems == [
        f"wards: ward file not found {str(tmp_path / 'boundaries/wards.geojson')!r}"
    ]


def test_ward_file_not_json_or_not_a_feature_collection(tmp_path):
    path = write(tmp_path, example())
    (tmp_path / "wards.geojson").write_text("{not json")
    _, problems = validate_council_file(path)
    assert len(problems) == 1
    assert problems[0].startswith("wards: not valid JSON in 'wards.geojson' (")

    (tmp_path / "wards.geojson").write_text(json.dumps(EXAMPLE_WARDS["features"][0]))
    assert validate_council_file(path)[1] == [
        "wards: 'wards.geojson' should be a GeoJSON FeatureCollection with features"
    ]


def test_ward_feature_problems(tmp_path):
    bow_tie = [[[0.9, 51.88], [0.92, 51.9], [0.92, 51.88], [0.9, 51.9], [0.9, 51.88]]]
    wards = copy.deepcopy(EXAMPLE_WARDS)
    wards["features"] += [
        feature("", {"type": "Polygon", "coordinates": square(0.8, 51.8)}),
        feature("Northgate", {"type": "Polygon", "coordinates": square(0.7, 51.8)}),
        feature("Hill Park", {"type": "Point", "coordinates": [0.9, 51.9]}),
        feature("Bow Tie", {"type": "Polygon", "coordinates": bow_tie}),
        feature("Swapped", {"type": "Polygon", "coordinates": square(51.9, 190)}),
        feature("Broken", {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}),
    ]
    problems = problems_of(tmp_path, example(), wards)
    # The named wards also need teams; that is tested elsewhere.
    assert [p for p in problems if not p.startswith("task_types[")] == [
        "wards[4].properties.name: every ward needs a name, got ''",
        "wards[6].geometry: should be a Polygon or MultiPolygon, got 'Point' (ward 'Hill Park')",
        "wards[7].geometry: invalid polygon: Self-intersection[0.91 51.89] (ward 'Bow Tie')",
        "wards[8].geometry: coordinates outside lon -180..180 / lat -90..90 [51.9, 190] "
        "(ward 'Swapped')",
        "wards[9].geometry: malformed coordinates (A linearring requires at least 4 "
        "coordinates.) (ward 'Broken')",
        "wards[5].properties.name: duplicate ward name 'Northgate' (also wards[0].properties.name)",
    ]


# --- services, task types ------------------------------------------------------------


def test_duplicate_codes(tmp_path):
    data = example()
    data["services"].append({"code": "trees", "name": "Trees again"})
    data["task_types"].append(dict(data["task_types"][0]))
    data["teams"].append({**data["teams"][2], "name": "Copy"})
    assert problems_of(tmp_path, data) == [
        "services[3].code: duplicate service code 'trees' (also services[2].code)",
        "task_types[14].code: duplicate task type code 'fly-tipping' (also task_types[0].code)",
        "teams[3].code: duplicate team code 'green' (also teams[2].code)",
    ]


def test_task_type_unknown_service_and_priority(tmp_path):
    data = example()
    data["task_types"][3]["priority"] = "urgentt"
    data["task_types"][4]["service"] = "street-cleaning"
    assert problems_of(tmp_path, data) == [
        "task_types[3].priority: unknown priority 'urgentt' (did you mean 'urgent'?)",
        "task_types[4].service: unknown service 'street-cleaning' "
        "(did you mean 'street-cleansing'?)",
    ]


# --- teams ---------------------------------------------------------------------------


def test_team_references(tmp_path):
    data = example()
    data["teams"][1]["wards"].insert(0, "Hill Parc")
    data["teams"][2]["services"].append("roads")
    data["teams"][0]["officers"].append("zed")
    data["teams"][0]["managers"] = ["bob"]
    data["teams"][1]["officers"] = ["alice", "dan"]
    assert problems_of(tmp_path, data) == [
        "teams[0].managers[0]: 'bob' is an officer, not a manager",
        "teams[0].officers[2]: unknown person 'zed'",
        "teams[1].wards[0]: unknown ward 'Hill Parc'",
        "teams[1].officers[0]: 'alice' is a manager, not an officer",
        "teams[2].services[2]: unknown service 'roads' (known: street-cleansing, grounds, trees)",
    ]


def test_team_needs_an_officer(tmp_path):
    data = example()
    data["teams"][2]["officers"] = []
    assert problems_of(tmp_path, data) == ["teams[2].officers: a team needs at least one officer"]


def test_every_task_type_must_be_routable_in_every_ward(tmp_path):
    data = example()
    data["teams"][2]["wards"].remove("Eastwood")
    assert problems_of(tmp_path, data) == [
        f"task_types[{i}]: no team serves '{service}' in ward 'Eastwood'"
        for i, service in [
            (8, "grounds"),
            (9, "grounds"),
            (10, "grounds"),
            (11, "grounds"),
            (12, "trees"),
            (13, "trees"),
        ]
    ]


# --- people --------------------------------------------------------------------------


def test_people_problems(tmp_path):
    data = example()
    people = data["people"]
    people[3]["aad_object_id"] = people[2]["aad_object_id"].upper()
    people.append({"id": "bob", "name": "Another Bob", "role": "officer"})
    people[8]["wards"].append("Westfield")
    people[4]["wards"] = ["Northgate"]
    assert problems_of(tmp_path, data) == [
        "people[10].id: duplicate person id 'bob' (also people[2].id)",
        "people[3].aad_object_id: duplicate aad_object_id '0B0B0000-0000-4000-8000-000000000003' "
        "(also people[2].aad_object_id)",
        "people[4].wards: only councillors have wards; 'dan' is an officer",
        "people[8].wards[1]: unknown ward 'Westfield'",
    ]


# --- rules ---------------------------------------------------------------------------


def test_rule_problems(tmp_path):
    data = example()
    data["rules"] += [
        {"when": {"type": "grafitti", "text_matches": "(unclosed"}, "priority": "urgent"},
        {"when": {}, "at_least": "high"},
        {"when": {"raised_by": "resident"}},
        {"when": {"raised_by": "resident"}, "priority": "urgent", "at_least": "hgh"},
    ]
    assert problems_of(tmp_path, data) == [
        "rules[3].when.type: unknown task type 'grafitti' (did you mean 'graffiti'?)",
        "rules[3].when.text_matches: invalid regular expression "
        "(missing ), unterminated subpattern at position 0) '(unclosed'",
        "rules[4].when: a rule needs at least one condition "
        "(raised_by, type, text_matches, repeat_reports)",
        "rules[5]: a rule needs priority or at_least",
        "rules[6]: set priority or at_least, not both",
        "rules[6].at_least: unknown priority 'hgh' (did you mean 'high'?)",
    ]


def test_repeat_reports_must_be_positive(tmp_path):
    data = example()
    data["rules"][2]["when"]["repeat_reports"]["at_least"] = 0
    assert problems_of(tmp_path, data) == [
        "rules[2].when.repeat_reports.at_least: should be greater than 0, got 0"
    ]


# --- notify, digest ------------------------------------------------------------------


def test_notify_problems(tmp_path):
    data = example()
    data["notify"]["events"]["received"]["sms_template"] = "template-7"
    data["notify"]["events"]["completed"] = {}
    data["notify"]["events"]["closed"] = {}
    assert problems_of(tmp_path, data) == [
        "notify.events.received.sms_template: should be a GOV.UK Notify template id (a UUID), "
        "got 'template-7'",
        "notify.events.completed: set email_template or sms_template (or both)",
        "notify.events.closed: unknown Notify event 'closed' (known: received, completed)",
    ]


def test_digest_problems(tmp_path):
    data = example()
    data["digest"] = {
        "schedule": "0 8 * *",
        "escalate_unaccepted_after_minutes": {"urgent": 30, "critical": 10},
    }
    assert problems_of(tmp_path, data) == [
        "digest.schedule: invalid cron expression '0 8 * *' (it has 4 fields); " + CRON_HELP,
        "digest.escalate_unaccepted_after_minutes.critical: unknown priority 'critical' "
        "(known: urgent, high, normal, low)",
    ]


# --- Everything at once --------------------------------------------------------------


def test_a_file_with_many_problems_lists_them_all(tmp_path):
    data = example()
    data["teams"][0]["routing"] = "fastest"
    data["council"]["timezone"] = "Nowhere/Special"
    data["priorities"]["low"] = 1
    data["task_types"][0]["priority"] = "critical"
    data["teams"][1]["wards"].insert(0, "Hill Parc")
    data["people"][0]["role"] = "officer"
    data["rules"][1]["when"]["text_matches"] = "*"
    data["notify"]["events"]["completed"] = {}
    data["digest"]["schedule"] = "every day"
    problems = problems_of(tmp_path, data)
    expected = [
        "teams[0].routing: should be 'least-loaded', 'round-robin' or 'queue', got 'fastest'",
        "council.timezone: unknown time zone 'Nowhere/Special' "
        "(use an IANA name such as 'Europe/London')",
        "priorities.low: 1 hours is quicker than 'normal' (72 hours) listed before it; "
        "list priorities most urgent first",
        "task_types[0].priority: unknown priority 'critical' (known: urgent, high, normal, low)",
        "teams[1].wards[0]: unknown ward 'Hill Parc'",
        "teams[1].managers[0]: 'alice' is an officer, not a manager",
        "rules[1].when.text_matches: invalid regular expression "
        "(nothing to repeat at position 0) '*'",
        "notify.events.completed: set email_template or sms_template (or both)",
        "digest.schedule: invalid cron expression 'every day' (it has 2 fields); " + CRON_HELP,
    ]
    assert problems == expected


def test_services_may_name_their_own_outcomes(tmp_path):
    data = example()
    data["services"][1]["outcomes"] = [
        {"code": "cut", "name": "Cut"},
        {"code": "passed-to-highways", "name": "Passed to Highways", "resident": "passed on"},
    ]
    council = load_council(write(tmp_path, data))
    assert [(o.code, o.name, o.resident) for o in council.outcomes_for("grass-cutting")] == [
        ("cut", "Cut", "cut"),
        ("passed-to-highways", "Passed to Highways", "passed on"),
    ]
    assert [o.code for o in council.outcomes_for("litter")][0] == "resolved"  # the defaults


def test_outcome_problems(tmp_path):
    data = example()
    data["services"][0]["outcomes"] = [
        {"code": "cleared", "name": "Cleared"},
        {"code": "Passed to highways", "name": "Passed to Highways"},
        {"code": "cleared", "name": "Cleared away"},
        {"code": "gone", "name": "cleared"},
        {"code": "late", "name": "Late\nagain"},
        {"code": "x" * 65, "name": "Long"},
        {"code": "odd", "name": "Odd", "colour": "red"},
        {"code": "blank"},
    ]
    data["services"][1]["outcomes"] = []
    data["services"][2]["outcomes"] = [{"code": "felled", "name": "Felled", "resident": "  "}]
    problems = problems_of(tmp_path, data)
    for expected in (
        "services[0].outcomes[1].code: use lower-case letters, digits and hyphens "
        "(like 'passed-to-highways'), got 'Passed to highways'",
        "services[0].outcomes[2].code: duplicate outcome code 'cleared' "
        "(also services[0].outcomes[0].code)",
        "services[0].outcomes[3].name: duplicate outcome name 'cleared' "
        "(also services[0].outcomes[0].name)",
        "services[0].outcomes[4].name: should be words on one line, got 'Late\\nagain'",
        "services[0].outcomes[5].code: should have at most 64 characters, got '" + "x" * 65 + "'",
        "services[0].outcomes[6].colour: unknown key (known: code, name, resident)",
        "services[0].outcomes[7].name: required but missing",
        "services[1].outcomes: should have at least 1 item, not 0",
        "services[2].outcomes[0].resident: should be words on one line, got '  '",
    ):
        assert expected in problems, (expected, problems)
