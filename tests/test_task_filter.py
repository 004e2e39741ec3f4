"""The task filter (domain/task_filter.py, pure) and the list query (queries/task_list.py)
on SQLite and PostgreSQL: keyset pages that stay whole while tasks arrive, and the scope."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from support import AUTH, EXAMPLES

from responder.config.load import load_council
from responder.domain.task_filter import (
    ALL,
    CLOSED,
    OPEN,
    Problem,
    TaskFilter,
    cursor_after,
    day_bounds,
    like_pattern,
    parse_filter,
)
from responder.domain.visibility import COUNCIL_WIDE, Scope, scope_of
from responder.queries.task_list import list_tasks, map_points
from responder.web import db_key, domain_key

COUNCIL = load_council(EXAMPLES / "council.yaml")
# One corner of each example ward (a 0.02-degree square each; see examples/wards.geojson).
CORNERS = {
    "Northgate": (51.9, 0.88),
    "Eastwood": (51.9, 0.90),
    "Southmere": (51.88, 0.88),
    "Riverside": (51.88, 0.90),
}


def place(ward: str, i: int) -> tuple[float, float]:
    """The i-th spot in ``ward``, ~170 m from the others (never a duplicate)."""
    lat, lon = CORNERS[ward]
    return (lat + 0.001 + (i // 10) * 0.0015, lon + 0.001 + (i % 10) * 0.0018)


def body(type_: str, at: tuple[float, float], description: str = "Bags by the bus stop") -> dict:
    return {
        "type": type_,
        "description": description,
        "location": {"lat": at[0], "lon": at[1], "address": f"{int(at[1] * 10000)} High Street"},
        "source": "web-form",
    }


def parsed(*pairs: tuple[str, str]) -> TaskFilter:
    result = parse_filter(pairs, COUNCIL)
    assert isinstance(result, TaskFilter), result
    return result


def problems(*pairs: tuple[str, str]) -> dict[str, str]:
    result = parse_filter(pairs, COUNCIL)
    assert isinstance(result, list), result
    return {p.param: p.message for p in result}


def test_filters_read_from_query_parameters():
    assert parsed() == TaskFilter()  # open tasks, due soonest first, 50 a page
    assert parsed().statuses == OPEN
    assert parsed(("status", "closed")).statuses == CLOSED
    assert parsed(("status", "all")).statuses == ALL
    assert parsed(("status", "completed,assigned"), ("status", "assigned")).statuses == (
        "completed",
        "assigned",
    )
    f = parsed(
        ("status", ""),  # a form's "Any": not given
        ("team", "sc-north,sc-south"),
        ("ward", "Northgate"),
        ("type", "fly-tipping"),
        ("priority", "urgent"),
        ("officer", "none"),
        ("officer", "bob"),
        ("source", "web-form"),
        ("created_from", "2026-11-01"),
        ("created_to", "2026-11-30"),
        ("overdue", "1"),
        ("q", "  Mattress   BUS_stop 100% "),
        ("sort", "-created"),
        ("limit", "20"),
        ("in", "teams"),  # a page's own parameter: ignored
    )
    assert f.statuses == OPEN and f.teams == ("sc-north", "sc-south")
    assert f.officers == ("none", "bob") and f.overdue and f.limit == 20
    assert f.created_from == date(2026, 11, 1) and f.created_to == date(2026, 11, 30)
    assert f.words == ("mattress", "bus_stop", "100%") and f.reference_id is None
    # The filter as query parameters again (the sort links and the map keep the filter).
    assert parse_filter(f.query_pairs(), COUNCIL) == f
    # A reference finds that task; a bare number is words (a house number).
    assert parsed(("q", "rsp-1042")).reference_id == 42
    assert parsed(("q", "#1042")).reference_id == 42
    assert parsed(("q", "1042")).words == ("1042",)
    # LIKE's own characters are taken literally.
    assert like_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"
    # Dates are the council's days: 'to' inclusive, midnight London time in UTC.
    low, high = day_bounds(date(2026, 7, 1), date(2026, 7, 1), COUNCIL.tz)
    assert low == datetime(2026, 6, 30, 23, tzinfo=UTC)
    assert high == datetime(2026, 7, 1, 23, tzinfo=UTC)


def test_bad_filters_are_problems_naming_the_parameter():
    assert problems(("status", "opne")).keys() == {"status"}
    assert "not a team" in problems(("team", "nowhere"))["team"]
    assert problems(("ward", "Atlantis")).keys() == {"ward"}
    assert problems(("officer", "mallory")).keys() == {"officer"}
    assert problems(("type", "x"), ("priority", "meh")).keys() == {"type", "priority"}
    assert problems(("source", "bad source!")).keys() == {"source"}
    for bad in (
        "2026-13-01",
        "2026-02-30",
        "yesterday",
        "0001-01-01",
        "9999-12-31",
        "２０２６-01-01",
    ):
        assert problems(("due_from", bad)).keys() == {"due_from"}, bad
    assert (
        "before"
        in problems(("created_from", "2026-02-02"), ("created_to", "2026-02-01"))["created_to"]
    )
    assert problems(("overdue", "perhaps")).keys() == {"overdue"}
    for bad in ("0", "201", "-1", "1e3", "٣", "99999999999999999999"):
        assert problems(("limit", bad)).keys() == {"limit"}, bad
    assert problems(("sort", "random()")).keys() == {"sort"}
    assert problems(("sort", "due"), ("sort", "-due")).keys() == {"sort"}
    assert problems(("q", "x" * 201)).keys() == {"q"}
    assert problems(("q", "a\x00b")).keys() == {"q"}
    assert problems(("q", " ".join("w" * 11))).keys() == {"q"}
    assert problems(("team", ",".join(["sc-north"] * 51) + ",a" * 50)).keys() == {"team"}
    assert problems(*[("x", "1")] * 101) == {"query": "has more than 100 parameters"}
    # Cursors: only what a page gave, for the same sort.
    good = cursor_after("due", None, datetime(2026, 11, 23, 9, tzinfo=UTC), 7).encode()
    assert parsed(("after", good)).after is not None
    for bad in ("", "!!!", "W10", "WyJkdWUiXQ", "x" * 400, good[:-3]):
        if bad:
            assert problems(("after", bad)).keys() == {"after"}, bad
    assert "another sort" in problems(("after", good), ("sort", "-due"))["after"]
    # Every problem at once, each a Problem with its parameter.
    result = parse_filter([("status", "x"), ("limit", "0")], COUNCIL)
    assert result == [
        Problem("status", result[0].message),  # type: ignore[index]
        Problem("limit", "must be a whole number from 1 to 200"),
    ]


async def test_pages_stay_whole_while_tasks_arrive_and_stay_in_scope(client, clock):
    """Keyset pages over both databases: every task there when paging began is listed
    exactly once, whatever arrives between pages; each viewer sees only their scope."""
    ids: list[int] = []
    spots = iter(range(20, 100))  # places for the tasks arriving while paging

    async def create(ward: str, i: int, type_: str = "fly-tipping", text: str = "Bags") -> int:
        resp = await client.post("/api/tasks", json=body(type_, place(ward, i), text), headers=AUTH)
        assert resp.status == 201, await resp.text()
        return (await resp.json())["id"]

    for i in range(6):
        ids.append(await create("Northgate", i, ("fly-tipping", "needles", "litter")[i % 3]))
        clock.now += timedelta(minutes=7)
    ids.append(await create("Eastwood", 0, "graffiti", "Offensive words on the wall"))
    southmere = await create("Southmere", 0, "litter", "Crisp packets 100% everywhere")
    db, domain = client.app[db_key], client.app[domain_key]
    people = {p.id: p for p in domain.council.file.people}

    async def page_through(scope, *pairs):
        seen: list[int] = []
        after: list[tuple[str, str]] = []
        while True:
            f = parsed(*pairs, ("limit", "3"), *after)
            page = await db.query(lambda conn, f=f: list_tasks(conn, domain, scope, f, clock.now))
            assert len(page.rows) <= 3
            seen += [r.id for r in page.rows]
            if page.next_cursor is None:
                return seen
            after = [("after", page.next_cursor)]
            # A task arrives between pages (due at every point of the order).
            clock.now += timedelta(minutes=1)
            await create("Northgate", next(spots))

    alice = scope_of(domain.council, people["alice"])  # sc-north, sc-south
    for sort in ("due", "-created", "priority", "updated"):
        before = set(ids)
        seen = await page_through(alice, ("sort", sort))
        assert len(seen) == len(set(seen)), f"{sort}: a task listed twice"
        assert before | {southmere} <= set(seen), f"{sort}: a task missed"
        ids += [i for i in seen if i not in ids and i != southmere]

    f = parsed(("sort", "priority"), ("limit", "200"))
    page = await db.query(lambda conn: list_tasks(conn, domain, alice, f, clock.now))
    ranks = [(domain.council.priority_rank(r.priority), r.due_at, r.id) for r in page.rows]
    assert ranks == sorted(ranks) and page.next_cursor is None
    row = next(r for r in page.rows if r.id == southmere)
    assert row.reference == f"RSP-{southmere + 1000}" and row.ward == "Southmere"
    assert row.type_name == "Litter" and row.team_name == "Street Cleansing South"

    # A councillor of Northgate: Northgate's tasks only, whatever the filter asks.
    hughes = scope_of(domain.council, people["cllr-hughes"])
    for pairs in ([], [("ward", "Southmere")], [("status", "all"), ("team", "sc-south")]):
        f = parsed(*pairs, ("limit", "200"))
        rows = (
            await db.query(lambda conn, f=f: list_tasks(conn, domain, hughes, f, clock.now))
        ).rows
        assert southmere not in {r.id for r in rows}
        assert {r.ward for r in rows} <= {"Northgate"}
        points = await db.query(lambda conn, f=f: map_points(conn, domain, hughes, f, clock.now))
        assert {p.id for p in points.points} == {r.id for r in rows}
    f = parsed(("q", f"RSP-{southmere + 1000}"))
    assert not (await db.query(lambda conn: list_tasks(conn, domain, hughes, f, clock.now))).rows
    # Words: every word, in the description or the address, LIKE characters literal.
    f = parsed(("q", "100% PACKETS"))
    rows = (await db.query(lambda conn: list_tasks(conn, domain, COUNCIL_WIDE, f, clock.now))).rows
    assert [r.id for r in rows] == [southmere]
    f = parsed(("q", "1_0%"))
    assert not (
        await db.query(lambda conn: list_tasks(conn, domain, COUNCIL_WIDE, f, clock.now))
    ).rows
    # Overdue: open and due before now; the map caps and says so.
    clock.now += timedelta(hours=5)  # needles (urgent, 4 h) are overdue now
    f = parsed(("overdue", "1"), ("limit", "200"))
    rows = (await db.query(lambda conn: list_tasks(conn, domain, COUNCIL_WIDE, f, clock.now))).rows
    assert rows and all(r.overdue and r.due_at < clock.now for r in rows)
    assert {r.type for r in rows} == {"needles", "graffiti"}  # both urgent (offensive)
    capped = await db.query(lambda conn: map_points(conn, domain, alice, parsed(), clock.now, 4))
    assert capped.capped and len(capped.points) == 4
    # A read key scoped to a ward (issue 19) sees that ward's tasks, in every order.
    key = Scope(person_id=None, wards=frozenset({"Southmere"}))
    for sort in ("due", "-created", "priority"):
        f = parsed(("status", "all"), ("sort", sort))
        rows = (await db.query(lambda conn, f=f: list_tasks(conn, domain, key, f, clock.now))).rows
        assert [r.id for r in rows] == [southmere], sort
    # Someone the council file does not know sees nothing.
    nobody = scope_of(domain.council, None)
    assert not (
        await db.query(lambda conn: list_tasks(conn, domain, nobody, parsed(), clock.now))
    ).rows
