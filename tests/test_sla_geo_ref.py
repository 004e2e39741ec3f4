"""Due times across clock changes, distances, duplicate matching and references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from math import asin, atan2, cos, degrees, radians, sin
from zoneinfo import ZoneInfo

import pytest
from domain_helpers import other_council, utc

from responder.domain.dedupe import OpenTaskAt, find_duplicate
from responder.domain.geo import EARTH_RADIUS_M, bbox, haversine_m
from responder.domain.reference import REFERENCE_OFFSET, format_reference, parse_reference
from responder.domain.sla import due_at

LONDON = ZoneInfo("Europe/London")

# --- sla: in 2025 the UK clocks go forward at 01:00 UTC on 30 March, back on 26 October.


@pytest.mark.parametrize(
    ("reported", "hours", "due"),
    [
        (utc(2025, 6, 10, 9, 0), 4, utc(2025, 6, 10, 13, 0)),
        (utc(2025, 6, 10, 9, 0), 0.5, utc(2025, 6, 10, 9, 30)),
        # 09:00 GMT Friday + 72 h: 09:00 BST Monday (an hour sooner than elapsed time).
        (utc(2025, 3, 28, 9, 0), 72, utc(2025, 3, 31, 8, 0)),
        # 09:00 BST Friday + 72 h: 09:00 GMT Monday (an hour later than elapsed time).
        (utc(2025, 10, 24, 8, 0), 72, utc(2025, 10, 27, 9, 0)),
        # Whole days by the calendar, the rest elapsed: 12:00 GMT + 1 day = 12:00 BST, + 6 h.
        (utc(2025, 3, 29, 12, 0), 30, utc(2025, 3, 30, 17, 0)),
        # Under a day is elapsed time, straight across the change.
        (utc(2025, 3, 30, 0, 30), 4, utc(2025, 3, 30, 4, 30)),
        (utc(2025, 10, 26, 0, 30), 4, utc(2025, 10, 26, 4, 30)),
        # 01:30 on 30 March does not exist in London: it moves forward to 02:30 BST.
        (utc(2025, 3, 29, 1, 30), 24, utc(2025, 3, 30, 1, 30)),
        # 01:30 on 26 October happens twice: the first (BST) one is taken.
        (utc(2025, 10, 25, 0, 30), 24, utc(2025, 10, 26, 0, 30)),
        # Reported in the second 01:15 (GMT): under a day keeps that exact instant.
        (utc(2025, 10, 26, 1, 15), 2, utc(2025, 10, 26, 3, 15)),
        # Ten days spanning the October change: same wall-clock time (09:00).
        (utc(2025, 10, 20, 8, 0), 240, utc(2025, 10, 30, 9, 0)),
    ],
)
def test_due_at_london(reported: datetime, hours: float, due: datetime) -> None:
    result = due_at(reported, hours, LONDON)
    assert result == due
    assert result.tzinfo is UTC


def test_due_at_local_wall_clock() -> None:
    due = due_at(utc(2025, 3, 28, 9, 0), 72, LONDON)
    assert due.astimezone(LONDON).replace(tzinfo=None) == datetime(2025, 3, 31, 9, 0)


def test_due_at_accepts_any_aware_input() -> None:
    reported = datetime(2025, 3, 28, 9, 0, tzinfo=LONDON)
    assert due_at(reported, 72, LONDON) == utc(2025, 3, 31, 8, 0)


def test_due_at_other_timezone() -> None:
    # New York springs forward on 9 March 2025: 09:00 EST + 24 h = 09:00 EDT.
    assert due_at(utc(2025, 3, 8, 14, 0), 24, ZoneInfo("America/New_York")) == utc(
        2025, 3, 9, 13, 0
    )


def test_due_at_refuses_naive_and_negative() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2025, 1, 1, 9, 0), 4, LONDON)
    with pytest.raises(ValueError, match="negative"):
        due_at(utc(2025, 1, 1, 9, 0), -1, LONDON)


# --- geo


def test_haversine_known_distances() -> None:
    assert haversine_m(51.5, 0.1, 51.5, 0.1) == 0
    one_degree = haversine_m(51.0, 0.5, 52.0, 0.5)
    assert one_degree == pytest.approx(111_195, abs=1)
    london_paris = haversine_m(51.5074, -0.1278, 48.8566, 2.3522)
    assert london_paris == pytest.approx(343_560, rel=2e-3)
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(london_paris)
    assert haversine_m(0, 0, 0, 180) == pytest.approx(EARTH_RADIUS_M * 3.141592653589793)


def _destination(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    d, b, p1, l1 = metres / EARTH_RADIUS_M, radians(bearing), radians(lat), radians(lon)
    p2 = asin(sin(p1) * cos(d) + cos(p1) * sin(d) * cos(b))
    l2 = l1 + atan2(sin(b) * sin(d) * cos(p1), cos(d) - sin(p1) * sin(p2))
    return degrees(p2), (degrees(l2) + 540) % 360 - 180


@pytest.mark.parametrize(
    ("lat", "lon", "metres"),
    [(51.9, 0.9, 50), (0, 0, 1000), (60, 10, 500_000), (-45, 170, 2_000_000), (70, -20, 25)],
)
def test_bbox_encloses_the_circle(lat: float, lon: float, metres: float) -> None:
    min_lat, max_lat, min_lon, max_lon = bbox(lat, lon, metres)
    assert min_lat < lat < max_lat and min_lon < lon < max_lon
    for bearing in range(0, 360, 3):
        plat, plon = _destination(lat, lon, metres * 0.999999, bearing)
        assert haversine_m(lat, lon, plat, plon) <= metres
        assert min_lat <= plat <= max_lat
        assert min_lon <= plon <= max_lon


def test_bbox_is_tight() -> None:
    min_lat, max_lat, min_lon, max_lon = bbox(51.9, 0.9, 50)
    assert haversine_m(min_lat, 0.9, max_lat, 0.9) == pytest.approx(100, abs=0.01)
    assert haversine_m(51.9, min_lon, 51.9, 0.9) == pytest.approx(50, rel=1e-3)


def test_bbox_poles_and_antimeridian() -> None:
    assert bbox(89.999, 0, 1000)[1:] == (90.0, -180.0, 180.0)
    assert bbox(-89.999, 0, 1000)[0] == -90.0
    assert bbox(10, 179.9999, 1000)[2:] == (-180.0, 180.0)
    assert bbox(10, 20, 0) == (10, 10, 20, 20)
    assert bbox(10, 20, 1e9) == (-90.0, 90.0, -180.0, 180.0)


# --- dedupe

BASE = (51.91, 0.89)
M = 1 / 111_195  # about a metre of latitude in degrees


def at(task_id: int, metres_north: float) -> OpenTaskAt:
    return OpenTaskAt(task_id, BASE[0] + metres_north * M, BASE[1])


def test_find_duplicate_nearest_within_distance() -> None:
    candidates = [at(1, 20), at(2, 5), at(3, 30), at(4, -10)]
    assert find_duplicate(*BASE, candidates, 25) == at(2, 5)
    assert find_duplicate(*BASE, [at(1, 20), at(3, 30)], 25) == at(1, 20)


def test_find_duplicate_ties_go_to_lowest_id() -> None:
    assert find_duplicate(*BASE, [at(9, 10), at(4, -10), at(7, 10)], 25) == at(4, -10)


def test_find_duplicate_none() -> None:
    assert find_duplicate(*BASE, [at(1, 30)], 25) is None
    assert find_duplicate(*BASE, [], 25) is None
    # 0 turns duplicate detection off, even for a report at the very same spot.
    assert find_duplicate(*BASE, [at(1, 0)], 0) is None


# --- references


def test_format_reference() -> None:
    assert REFERENCE_OFFSET == 1000
    assert format_reference("RSP", 42) == "RSP-1042"
    assert format_reference("RSP", 1) == "RSP-1001"
    assert format_reference(other_council().info.reference_prefix, 7) == "FEN2-1007"


@pytest.mark.parametrize(
    "text",
    [
        "RSP-1042",
        "rsp 1042",
        "RSP1042",
        "#1042",
        "1042",
        "  RSP-1042 ",
        "Rsp_1042",
        "#RSP-1042",
        "RSP #1042",
        "RSP-01042",
    ],
)
def test_parse_reference_forgiving(text: str) -> None:
    assert parse_reference(text, "RSP") == 42


@pytest.mark.parametrize(
    "text",
    [
        "ABC-1042",
        "RS-1042",
        "RSP-",
        "",
        "RSP-10x42",
        "1042x",
        "RSP-1000",
        "999",
        "-1042",
        "RSP--",
        "RSP 1042 please",
        "١٠٤٢",
    ],
)
def test_parse_reference_refuses(text: str) -> None:
    assert parse_reference(text, "RSP") is None


def test_parse_reference_prefix_with_digits() -> None:
    assert parse_reference("FEN2-1007", "FEN2") == 7
    assert parse_reference("fen21007", "FEN2") == 7
    assert parse_reference("RSP-1007", "FEN2") is None


@pytest.mark.parametrize("task_id", [1, 42, 999, 123_456])
def test_reference_round_trip(task_id: int) -> None:
    assert parse_reference(format_reference("RSP", task_id), "RSP") == task_id


def test_due_at_uses_council_timezone() -> None:
    # The council object's zone is what callers pass in.
    council = other_council()
    assert due_at(utc(2025, 3, 28, 9, 0), 72, council.tz) - utc(2025, 3, 28, 9, 0) == timedelta(
        hours=71
    )
