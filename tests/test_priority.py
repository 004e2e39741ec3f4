"""Priority: the type's default, then each kind of rule, in file order, with reasons."""

from __future__ import annotations

from datetime import timedelta

import pytest
from domain_helpers import example_council, other_council, utc

from responder.domain import priority as priority_module
from responder.domain.priority import NearbyReport, PriorityDecision, prioritise, repeat_window

AT = utc(2025, 6, 10, 12, 0)
LAT, LON = 51.91, 0.89  # Northgate in the example council
# Roughly 1 m of latitude, in degrees.
M = 1 / 111_195


def near(metres: float, days_ago: float, count: int = 1) -> NearbyReport:
    return NearbyReport(LAT + metres * M, LON, AT - timedelta(days=days_ago), count)


def test_type_default_with_reason() -> None:
    d = prioritise(example_council(), "fly-tipping", "sofa on the verge", "resident", LAT, LON, AT)
    assert d == PriorityDecision("high", ("fly-tipping is 'high' by default",), ())


def test_other_council_names_default() -> None:
    d = prioritise(other_council(), "litter", "crisp packets", "resident", 50.5, 0.5, AT)
    assert d == PriorityDecision("P3", ("litter is 'P3' by default",), ())


def test_unknown_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown task type 'nope'"):
        prioritise(example_council(), "nope", "", "resident", LAT, LON, AT)


def test_raised_by_at_least_raises_a_lower_priority() -> None:
    d = prioritise(example_council(), "litter", "bags", "councillor", LAT, LON, AT)
    assert d.priority == "high"
    assert d.fired == (0,)
    assert d.reasons[1] == "rule 1: raised by a councillor -> at least high"


def test_at_least_never_lowers() -> None:
    d = prioritise(example_council(), "needles", "syringe", "councillor", LAT, LON, AT)
    assert d.priority == "urgent"
    assert d.fired == (0,)  # its conditions held, but it changed nothing
    assert d.reasons[1] == "rule 1: raised by a councillor -> at least high (already urgent)"


def test_raised_by_must_match() -> None:
    assert prioritise(example_council(), "litter", "", "officer", LAT, LON, AT).fired == ()


def test_text_matches_sets_priority() -> None:
    d = prioritise(example_council(), "graffiti", "Some RACIST slogans", "resident", LAT, LON, AT)
    assert d.priority == "urgent"
    assert d.fired == (1,)
    assert d.reasons[1] == (
        "rule 2: type is graffiti and description matches '(?i)offensive|racist|abusive' -> urgent"
    )


def test_text_rule_needs_its_type_too() -> None:
    d = prioritise(example_council(), "litter", "racist leaflets", "resident", LAT, LON, AT)
    assert (d.priority, d.fired) == ("normal", ())


def test_text_not_matching() -> None:
    d = prioritise(example_council(), "graffiti", "a tag on a wall", "resident", LAT, LON, AT)
    assert (d.priority, d.fired) == ("normal", ())


def test_repeat_reports_fire_at_threshold() -> None:
    nearby = [near(10, 1), near(40, 6.9)]
    d = prioritise(example_council(), "litter", "", "resident", LAT, LON, AT, nearby)
    assert d.priority == "high"
    assert d.fired == (2,)
    assert d.reasons[1] == "rule 3: 3 reports within 50 m in 7 days -> at least high"


def test_repeat_reports_below_threshold() -> None:
    d = prioritise(example_council(), "litter", "", "resident", LAT, LON, AT, [near(10, 1)])
    assert (d.priority, d.fired) == ("normal", ())


@pytest.mark.parametrize(
    "outsider",
    [
        near(60, 1),  # too far
        near(10, 7.5),  # too long ago
        near(10, -0.1),  # after this report: not an earlier one
    ],
)
def test_repeat_reports_outside_the_window_do_not_count(outsider: NearbyReport) -> None:
    nearby = [near(10, 1), outsider]
    d = prioritise(example_council(), "litter", "", "resident", LAT, LON, AT, nearby)
    assert d.fired == ()


def test_repeat_reports_window_edges_count() -> None:
    nearby = [near(49.9, 7), near(0, 0)]  # exactly 7 days ago; at the same instant
    d = prioritise(example_council(), "litter", "", "resident", LAT, LON, AT, nearby)
    assert d.fired == (2,)


def test_repeat_reports_count_linked_duplicates() -> None:
    # One task that already stands for two reports, plus this one, makes three.
    d = prioritise(example_council(), "litter", "", "resident", LAT, LON, AT, [near(5, 2, count=2)])
    assert d.priority == "high"


def test_rules_apply_in_file_order() -> None:
    council = other_council()
    # Pothole is P2; rule 3 sets it to P3 (officer, "minor"); rule 4 (repeat) raises to P1.
    lat, lon = 51.2, 0.5
    earlier = [NearbyReport(lat, lon + 0.0005, AT - timedelta(hours=5))]  # ~35 m away
    d = prioritise(council, "pothole", "A minor pothole", "officer", lat, lon, AT, earlier)
    assert d.priority == "P1"
    assert d.fired == (2, 3)
    assert d.reasons == (
        "pothole is 'P2' by default",
        "rule 3: raised by an officer and type is pothole and description matches"
        " '(?i)\\bminor\\b' -> P3",
        "rule 4: type is pothole and 2 reports within 100 m in 2 days -> at least P1",
    )
    # Without the repeat, the outright rule lowers it.
    alone = prioritise(council, "pothole", "minor", "officer", lat, lon, AT)
    assert (alone.priority, alone.fired) == ("P3", (2,))
    # "minority" is not the word "minor".
    other = prioritise(council, "pothole", "minority", "officer", lat, lon, AT)
    assert (other.priority, other.fired) == ("P2", ())


def test_other_council_rules() -> None:
    council = other_council()
    d = prioritise(council, "litter", "outside the SCHOOL", "councillor", 50.5, 0.5, AT)
    # Rule 1 raises P3 to P2, rule 2 then sets P1.
    assert (d.priority, d.fired) == ("P1", (0, 1))
    assert d.reasons[1:] == (
        "rule 1: raised by a councillor -> at least P2",
        "rule 2: type is litter and description matches '(?i)school|hospital' -> P1",
    )
    # Rule 5 applies to every type: four earlier reports within 30 m in 10 days.
    crowd = [NearbyReport(50.5, 0.5, AT - timedelta(days=d)) for d in (1, 2, 3, 9)]
    many = prioritise(council, "abandoned-car", "", "resident", 50.5, 0.5, AT, crowd)
    assert many.priority == "P2"
    assert many.reasons[-1] == "rule 5: 5 reports within 30 m in 10 days -> at least P2"


def test_regexes_are_compiled_once() -> None:
    priority_module._regex.cache_clear()
    for _ in range(5):
        prioritise(example_council(), "graffiti", "offensive", "resident", LAT, LON, AT)
    info = priority_module._regex.cache_info()
    assert info.misses == 1 and info.hits == 4


def test_repeat_window() -> None:
    assert repeat_window(example_council(), "litter") == (7, 50)
    # The pothole-only rule widens the window for potholes alone.
    assert repeat_window(other_council(), "pothole") == (10, 100)
    assert repeat_window(other_council(), "litter") == (10, 30)


def test_repeat_window_none_without_repeat_rules() -> None:
    council = example_council()
    rules = [r for r in council.file.rules if r.when.repeat_reports is None]
    bare = type(council)(file=council.file.model_copy(update={"rules": rules}), wards=())
    assert repeat_window(bare, "litter") is None
