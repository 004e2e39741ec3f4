"""Routing: ward lookup, team choice and each officer strategy."""

from __future__ import annotations

import pytest
from domain_helpers import example_council, other_council

from responder.config.model import Team
from responder.domain.routing import (
    OfficerLoad,
    RoutingDecision,
    RoutingError,
    WardLocator,
    choose_officer,
    choose_team,
    route,
)


@pytest.fixture(scope="module")
def example_locator() -> WardLocator:
    return WardLocator(example_council().wards)


@pytest.fixture(scope="module")
def other_locator() -> WardLocator:
    return WardLocator(other_council().wards)


def team(routing: str, officers: list[str], code: str = "t1") -> Team:
    return Team.model_validate(
        {
            "code": code,
            "name": "T",
            "services": ["s"],
            "wards": ["w"],
            "routing": routing,
            "officers": officers,
        }
    )


def load(person: str, open_tasks: int = 0, on_duty: bool = True) -> OfficerLoad:
    return OfficerLoad(person, on_duty, open_tasks)


# --- wards --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "ward"),
    [
        (51.91, 0.89, "Northgate"),
        (51.91, 0.91, "Eastwood"),
        (51.89, 0.89, "Southmere"),
        (51.89, 0.91, "Riverside"),
        (51.92, 0.89, "Northgate"),  # outer boundary counts as inside
        (51.91, 0.9, "Northgate"),  # edge shared with Eastwood: first in the file wins
        (51.9, 0.91, "Eastwood"),  # edge shared with Riverside
        (51.9, 0.9, "Northgate"),  # the corner all four share
    ],
)
def test_locate_example(example_locator: WardLocator, lat: float, lon: float, ward: str) -> None:
    assert example_locator.locate(lat, lon) == ward


@pytest.mark.parametrize(("lat", "lon"), [(51.0, 0.1), (51.93, 0.89), (0.89, 51.91)])
def test_locate_outside(example_locator: WardLocator, lat: float, lon: float) -> None:
    # The last one is a real point with lat/lon swapped: GeoJSON order is lon, lat.
    assert example_locator.locate(lat, lon) is None


@pytest.mark.parametrize(
    ("lat", "lon", "ward"),
    [
        (50.5, 0.5, "Isles"),  # first part of the MultiPolygon
        (50.5, 2.5, "Isles"),  # second part
        (50.5, 1.5, "Marsh"),  # between them
        (50.5, 1.0, "Isles"),  # shared edges: Isles is listed first
        (50.5, 2.0, "Isles"),
        (51.2, 0.5, "Fen"),
        (51.5, 1.5, "Lake"),  # in Fen's hole
        (51.4, 1.5, "Fen"),  # the hole's rim is Fen's boundary, and Fen comes first
        (51.0, 1.5, "Marsh"),  # Marsh/Fen edge: Marsh is listed first
    ],
)
def test_locate_multipolygon_and_holes(
    other_locator: WardLocator, lat: float, lon: float, ward: str
) -> None:
    assert other_locator.locate(lat, lon) == ward


def test_locate_hole_without_a_ward_inside() -> None:
    fen_only = WardLocator([w for w in other_council().wards if w.name == "Fen"])
    assert fen_only.locate(51.5, 1.5) is None
    assert WardLocator([]).locate(51.5, 1.5) is None


# --- teams --------------------------------------------------------------------------------


def test_choose_team_first_in_file_order() -> None:
    assert choose_team(example_council(), "Northgate", "litter").code == "sc-north"
    assert choose_team(example_council(), "Riverside", "litter").code == "sc-south"
    assert choose_team(example_council(), "Riverside", "fallen-tree").code == "green"
    # Marsh is served by both cleansing teams; clean-a is listed first.
    assert choose_team(other_council(), "Marsh", "litter").code == "clean-a"
    assert choose_team(other_council(), "Fen", "litter").code == "clean-b"


def test_choose_team_nobody_serves() -> None:
    with pytest.raises(RoutingError) as info:
        choose_team(other_council(), "Isles", "pothole")
    assert info.value.field == "type"
    assert info.value.problem == "no team serves 'highways' in ward 'Isles'"


def test_choose_team_unknown_type() -> None:
    with pytest.raises(RoutingError) as info:
        choose_team(example_council(), "Northgate", "potholes")
    assert info.value.field == "type"
    assert "'potholes' is not one of the council's task types" in str(info.value)


# --- least-loaded ---------------------------------------------------------------------------


def test_least_loaded_picks_fewest() -> None:
    t = team("least-loaded", ["bob", "carol", "dan"])
    who, reasons = choose_officer(t, [load("bob", 4), load("carol", 2), load("dan", 3)], None)
    assert who == "carol"
    assert reasons == ("least-loaded: carol has 2 open tasks, the fewest (bob 4, dan 3)",)


def test_least_loaded_ties_follow_team_order() -> None:
    t = team("least-loaded", ["bob", "carol"])
    # loads listed in another order must not matter
    who, reasons = choose_officer(t, [load("carol", 1), load("bob", 1)], None)
    assert who == "bob"
    assert reasons == (
        "least-loaded: bob has 1 open task, the fewest (carol 1); tied, so the first listed",
    )
    reordered = team("least-loaded", ["carol", "bob"])
    assert choose_officer(reordered, [load("bob", 1), load("carol", 1)], None)[0] == "carol"


def test_least_loaded_missing_load_means_idle() -> None:
    t = team("least-loaded", ["bob", "carol"])
    assert choose_officer(t, [load("bob", 1)], None)[0] == "carol"


def test_least_loaded_skips_off_duty_and_excluded() -> None:
    t = team("least-loaded", ["bob", "carol", "dan"])
    loads = [load("bob", 0, on_duty=False), load("carol", 0), load("dan", 5)]
    who, reasons = choose_officer(t, loads, None, exclude=frozenset({"carol"}))
    assert who == "dan"
    assert reasons == (
        "bob is off duty",
        "carol is excluded from this task",
        "least-loaded: dan has 5 open tasks, the only officer available",
    )


def test_least_loaded_ignores_last_assigned() -> None:
    t = team("least-loaded", ["bob", "carol"])
    assert choose_officer(t, [load("bob", 0), load("carol", 0)], "carol")[0] == "bob"


# --- round-robin ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "expected"),
    [(None, "ann"), ("ann", "ben"), ("ben", "cat"), ("cat", "ann"), ("stranger", "ann")],
)
def test_round_robin_next_and_wrap(last: str | None, expected: str) -> None:
    t = team("round-robin", ["ann", "ben", "cat"])
    assert choose_officer(t, [], last)[0] == expected


def test_round_robin_reasons() -> None:
    t = team("round-robin", ["ann", "ben", "cat"])
    assert choose_officer(t, [], None)[1] == ("round-robin: ann is first in the rota",)
    assert choose_officer(t, [], "ann")[1] == ("round-robin: ben is next after ann",)


def test_round_robin_skips_off_duty_and_excluded() -> None:
    t = team("round-robin", ["ann", "ben", "cat"])
    loads = [load("ben", on_duty=False), load("ann", 9)]
    # ben is off, cat just handed it back, so it wraps to ann (her load is ignored).
    who, reasons = choose_officer(t, loads, "cat", exclude=frozenset({"cat"}))
    assert who == "ann"
    assert reasons == ("round-robin: ann is next after cat",)
    who, reasons = choose_officer(t, loads, "ann", exclude=frozenset({"cat"}))
    assert who == "ann"
    assert reasons == (
        "ben is off duty",
        "cat is excluded from this task",
        "round-robin: ann gets it again, as nobody else is available",
    )


def test_round_robin_nobody_available() -> None:
    t = team("round-robin", ["ann", "ben"], code="clean-a")
    who, reasons = choose_officer(
        t, [load("ann", on_duty=False)], "ann", exclude=frozenset({"ben"})
    )
    assert who is None
    assert reasons == (
        "ann is off duty",
        "ben is excluded from this task",
        "no officer of clean-a is available; waiting in the team queue",
    )


# --- queue and empty teams --------------------------------------------------------------------


def test_queue_offers_to_the_team() -> None:
    t = team("queue", ["grace", "henry"], code="green")
    who, reasons = choose_officer(t, [load("grace", 0)], "grace")
    assert who is None
    assert reasons == ("green works from a queue: the first officer to accept takes it",)


def test_all_off_duty_waits_in_queue() -> None:
    t = team("least-loaded", ["bob", "carol"], code="sc-north")
    loads = [load("bob", on_duty=False), load("carol", on_duty=False)]
    assert choose_officer(t, loads, None) == (
        None,
        (
            "bob is off duty",
            "carol is off duty",
            "no officer of sc-north is on duty; waiting in the team queue",
        ),
    )


def test_team_without_officers() -> None:
    assert choose_officer(team("round-robin", [], code="t0"), [], None) == (
        None,
        ("team t0 has no officers; waiting in the team queue",),
    )


# --- route --------------------------------------------------------------------------------------


def test_route_least_loaded(example_locator: WardLocator) -> None:
    loads = [load("bob", 2), load("carol", 3)]
    decision = route(example_council(), example_locator, "litter", 51.91, 0.89, loads, None)
    assert decision == RoutingDecision(
        ward="Northgate",
        team="sc-north",
        strategy="least-loaded",
        assignee="bob",
        reasons=(
            "in ward Northgate",
            "team sc-north serves street-cleansing in Northgate",
            "least-loaded: bob has 2 open tasks, the fewest (carol 3)",
        ),
    )


def test_route_round_robin_with_exclude(example_locator: WardLocator) -> None:
    # erin would be next after dan, but just handed it back: round the rota to dan.
    council = example_council()
    erin_out = frozenset({"erin"})
    decision = route(council, example_locator, "graffiti", 51.89, 0.91, [], "dan", erin_out)
    assert (decision.team, decision.strategy, decision.assignee) == (
        "sc-south",
        "round-robin",
        "dan",
    )


def test_route_queue(other_locator: WardLocator) -> None:
    decision = route(other_council(), other_locator, "pothole", 51.5, 1.5, [], None)
    assert (decision.ward, decision.team, decision.strategy, decision.assignee) == (
        "Lake",
        "roads",
        "queue",
        None,
    )


def test_route_outside_every_ward(example_locator: WardLocator) -> None:
    with pytest.raises(RoutingError) as info:
        route(example_council(), example_locator, "litter", 51.0, 0.1, [], None)
    assert info.value.field == "location"
    assert info.value.problem == "the point 51.0, 0.1 is not inside any of the council's wards"


def test_route_no_team_for_type(other_locator: WardLocator) -> None:
    with pytest.raises(RoutingError) as info:
        route(other_council(), other_locator, "pothole", 50.5, 2.5, [], None)
    assert (info.value.field, info.value.problem) == (
        "type",
        "no team serves 'highways' in ward 'Isles'",
    )
