"""/performance: figures counted against tasks made and moved by the app's own commands
(tests/perf_support.py's week), on both databases; the page, its charts and their tables,
who may see it, and hostile parameters (SQLite only)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from perf_support import NOW, build_week
from support import INTAKE_SECRET, write_council
from web_support import sign_in

from responder.app import build_app
from responder.commands.follows import follow
from responder.domain.performance import (
    PeriodError,
    buckets,
    make_period,
    parse_period,
    percent,
)
from responder.domain.visibility import Scope
from responder.queries.performance import Filters, read_performance
from responder.settings import Settings
from responder.web import db_key, domain_key

LONDON = ZoneInfo("Europe/London")
SVG = "{http://www.w3.org/2000/svg}"
EVERYTHING = Filters()


async def _read(
    client, person: str | None, *, filters=EVERYTHING, period=None, officers=True, scope=None
):
    app = client.server.app
    domain = app[domain_key]
    council = domain.council
    scope = scope or _scope(council, person)
    period = period or parse_period({}, NOW.astimezone(LONDON).date(), LONDON)
    return await app[db_key].query(
        lambda c: read_performance(c, domain, scope, period, NOW, filters, with_officers=officers)
    )


def _scope(council, person_id):
    from responder.domain.visibility import scope_of

    return scope_of(council, council.person(person_id))


def _line(lines, key):
    found = [line for line in lines if line.key == key]
    assert found, (key, [line.key for line in lines])
    line = found[0]
    return (line.open, line.overdue, line.created, line.completed, line.in_time)


async def test_figures_match_the_tasks(client, clock):
    """Both databases: every figure is the count of the week's tasks the viewer may see."""
    t = await build_week(client, clock)

    alice = await _read(client, "alice")  # manager of sc-north and sc-south
    # Open now: C, F, G (all overdue); created in the period A B C D G; completed A (in time)
    # and B (late); D was cancelled: closed, not completed.
    totals = alice.totals
    assert (totals.open, totals.overdue, totals.created, totals.completed, totals.in_time) == (
        3,
        3,
        5,
        2,
        1,
    )
    assert totals.in_time_percent == 50
    assert _line(alice.by_team, "sc-north") == (1, 1, 4, 2, 1)
    assert _line(alice.by_team, "sc-south") == (2, 2, 1, 0, 0)
    assert [line.key for line in alice.by_team] == ["sc-north", "sc-south"]
    assert _line(alice.by_priority, "high") == (3, 3, 5, 2, 1)
    assert _line(alice.by_priority, "urgent") == (0, 0, 0, 0, 0)  # every priority listed
    assert _line(alice.by_ward, "Northgate") == (1, 1, 3, 2, 1)
    assert _line(alice.by_ward, "Southmere") == (1, 1, 1, 0, 0)
    assert _line(alice.by_ward, "Eastwood") == (0, 0, 1, 0, 0)
    assert _line(alice.by_ward, "Riverside") == (1, 1, 0, 0, 0)
    # Daily trend over 28 days (27 Oct - 23 Nov): 4 created on Fri 20, D on Sat 21; A done
    # on the 20th in time, B on the 21st late.
    assert len(alice.trend) == 28 and alice.period.first == date(2026, 10, 27)
    by_day = {p.bucket.first: (p.created, p.completed, p.in_time) for p in alice.trend}
    assert by_day[date(2026, 11, 20)] == (4, 1, 1)
    assert by_day[date(2026, 11, 21)] == (1, 1, 0)
    assert sum(p.created for p in alice.trend) == 5
    assert alice.busiest_types == [("Fly-tipping", 5)]
    assert alice.busiest_wards == [("Northgate", 3), ("Eastwood", 1), ("Southmere", 1)]
    loads = {o.person_id: (o.open, o.in_progress, o.overdue) for o in alice.officers}
    expected: dict[str, list[int]] = {}
    for name, in_progress in (("C", 0), ("F", 0), ("G", 1)):
        load = expected.setdefault(t[name].assignee, [0, 0, 0])
        load[0] += 1
        load[1] += in_progress
        load[2] += 1
    assert loads == {k: tuple(v) for k, v in expected.items()}
    # Ratings given in the period: A 4 and B 2 (sc-north); F's, on 2 Sep, is outside it.
    assert [(r.key, r.count, r.average) for r in alice.ratings] == [("sc-north", 2, 3.0)]
    assert (alice.ratings_total.count, alice.ratings_total.average) == (2, 3.0)

    frank = await _read(client, "frank")  # green: only E
    assert (frank.totals.open, frank.totals.overdue, frank.totals.created) == (1, 0, 1)
    assert [line.key for line in frank.by_team] == ["green"] and frank.ratings == []

    hughes = await _read(client, "cllr-hughes", officers=False)  # Northgate: A B E G
    assert _line([hughes.totals], "") == (2, 1, 4, 2, 1)
    assert {line.key for line in hughes.by_ward} == {"Northgate"}
    assert {line.key for line in hughes.by_team} == {"sc-north", "green"}
    assert hughes.officers is None
    patel = await _read(client, "cllr-patel", officers=False)  # Southmere, Riverside: C F
    assert _line([patel.totals], "") == (2, 2, 1, 0, 0)
    assert {line.key for line in patel.by_ward} == {"Southmere", "Riverside"}

    # Filters narrow within what the viewer sees.
    north = await _read(client, "alice", filters=Filters(team="sc-north"))
    assert _line([north.totals], "") == (1, 1, 4, 2, 1)
    eastwood = await _read(client, "alice", filters=Filters(ward="Eastwood"))
    assert _line([eastwood.totals], "") == (0, 0, 1, 0, 0)
    # A filter outside the scope counts nothing (the page refuses it before asking).
    other = await _read(client, "cllr-hughes", filters=Filters(ward="Southmere"), officers=False)
    assert _line([other.totals], "") == (0, 0, 0, 0, 0)

    # An officer sees the team's work and the tasks assigned to or followed by them; a
    # followed case outside the team counts too (the visibility rule), once.
    bob = await _read(client, "bob")
    assert _line([bob.totals], "") == _line([alice.by_team[0]], "sc-north")

    # Followed and assigned tasks outside the own teams or wards count too, each once.
    db = client.server.app[db_key]
    await db.run(lambda c: follow(c, "cllr-hughes", t["C"].id, NOW))  # Southmere
    await db.run(lambda c: follow(c, "cllr-hughes", t["A"].id, NOW))  # Northgate: already in
    hughes = await _read(client, "cllr-hughes", officers=False)
    assert _line([hughes.totals], "") == (3, 2, 5, 2, 1)
    assert _line(hughes.by_ward, "Southmere") == (1, 1, 1, 0, 0)
    # Bob moved to green keeps his sc-north tasks; one of them he also follows.
    held = [name for name in "ABG" if t[name].assignee == "bob"]
    assert held
    await db.run(lambda c: follow(c, "bob", t[held[0]].id, NOW))
    moved = await _read(client, "bob", scope=Scope("bob", teams=frozenset({"green"})))
    expected = [(name, t[name]) for name in ["E", *held]]
    assert moved.totals.created == len(expected)
    assert moved.totals.open == sum(1 for name, _ in expected if name in "EG")
    assert moved.totals.completed == sum(1 for name, _ in expected if name in "AB")

    # 90 days: weekly, and the weeks add up to the same figures.
    ninety = parse_period({"period": "90"}, NOW.astimezone(LONDON).date(), LONDON)
    weekly = await _read(client, "alice", period=ninety)
    assert not weekly.period.daily and len(weekly.trend) == 13
    assert sum(p.created for p in weekly.trend) == 6  # F (1 Sep) is in these 90 days
    assert sum(p.completed for p in weekly.trend) == 2
    assert sum(p.in_time for p in weekly.trend) == 1

    # One day only: Sat 21 Nov holds D's creation and B's (late) completion.
    saturday = make_period(date(2026, 11, 21), date(2026, 11, 21), LONDON)
    one = await _read(client, "alice", period=saturday)
    assert _line([one.totals], "") == (3, 3, 1, 1, 0)


def test_periods_buckets_and_percentages():
    today = date(2026, 11, 23)
    default = parse_period({}, today, LONDON)
    assert (default.first, default.last, default.days, default.preset) == (
        date(2026, 10, 27),
        today,
        28,
        28,
    )
    # The clocks went back on 25 Oct 2026: that day is 25 hours long, and each day starts at
    # local midnight (BST before, GMT after).
    span = parse_period({"from": "2026-10-24", "to": "2026-10-26"}, today, LONDON)
    days = buckets(span, LONDON)
    assert [b.start for b in days] == [
        datetime(2026, 10, 23, 23, tzinfo=UTC),
        datetime(2026, 10, 24, 23, tzinfo=UTC),
        datetime(2026, 10, 26, 0, tzinfo=UTC),
    ]
    assert days[1].end - days[1].start == timedelta(hours=25)
    assert span.end == datetime(2026, 10, 27, 0, tzinfo=UTC)
    year = parse_period({"from": "2025-11-23", "to": "2026-11-23"}, today, LONDON)
    weeks = buckets(year, LONDON)
    assert year.days == 366 and len(weeks) == 53 and weeks[-1].label() == "22–23 Nov"
    assert weeks[0].label() == "23–29 Nov" and weeks[5].label() == "28 Dec–3 Jan"
    assert days[0].label() == "Sat 24 Oct"
    assert [percent(1, 2), percent(1, 3), percent(2, 3), percent(0, 0)] == [50, 33, 67, None]
    for params, param in [
        ({"period": "5"}, "period"),
        ({"period": "28", "from": "2026-11-01"}, "period"),
        ({"from": "2026-11-01"}, "to"),
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"from": "2025-11-22", "to": "2026-11-23"}, "to"),  # 367 days
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
        ({"from": "2026-1-1", "to": "2026-01-02"}, "from"),
    ]:
        with pytest.raises(PeriodError) as caught:
            parse_period(params, today, LONDON)
        assert caught.value.param == param, params


# -- the page (SQLite) -----------------------------------------------------------------------


@pytest.fixture
async def web(aiohttp_client, tmp_path, clock):
    """The app on SQLite (the page's HTML does not depend on the database)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        config_path=write_council(tmp_path, _with_a_stranger),
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
    )
    return await aiohttp_client(build_app(settings, clock=clock))


def _with_a_stranger(data: dict) -> None:
    # In the file, but in no team and no ward: no scope over any task.
    data["people"].append({"id": "ivy", "name": "Ivy Visitor", "role": "officer"})


class _Tables(HTMLParser):
    """Each <table data-chart=...>'s rows (cell texts), and every <svg> element's markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("data-chart"):
            self._table = attrs["data-chart"]
            self.tables[self._table] = []
        elif self._table and tag == "tr":
            self.tables[self._table].append([])
        elif self._table and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _charts(html: str) -> dict[str, ET.Element]:
    found = {}
    for markup in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        svg = ET.fromstring(markup)  # well-formed XML, or this raises
        found[svg.get("aria-labelledby").split()[0].removesuffix("-title")] = svg
    return found


async def test_the_page_shows_the_figures_with_charts_and_tables(web, clock):
    t = await build_week(web, clock)
    await sign_in(web, "alice")
    response = await web.get("/performance")
    assert response.status == 200
    html = await response.text()
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert 'data-figure="open">3<' in html and 'data-figure="overdue">3<' in html
    assert 'data-figure="created">5<' in html and 'data-figure="completed">2<' in html
    assert re.search(r'data-figure="in_time">1\s*\(50%\)', html)
    assert "Officers&#39; loads" in html or "Officers' loads" in html
    assert "Bob Warden" in html or "Carol Warden" in html
    assert "27 Oct 2026 to 23 Nov 2026" in html
    assert "style=" not in html  # the CSP allows no inline style

    charts = _charts(html)
    assert set(charts) == {"chart-volume", "chart-in-time"}
    parser = _Tables()
    parser.feed(html)
    for chart_id, svg in charts.items():
        assert svg.get("role") == "img" and svg.get("viewBox") == "0 0 400 240"
        assert svg.find(f"{SVG}title").text and svg.find(f"{SVG}desc").text
        assert chart_id in parser.tables, f"{chart_id} has no table alternative"
    # The volume chart's bars carry the same numbers as its table, bucket by bucket.
    rows = parser.tables["chart-volume"][1:]
    assert len(rows) == 28
    bars = {}
    for rect in charts["chart-volume"].iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None:
            series, rest = title.text.split(", ", 1)
            label, value = rest.rsplit(": ", 1)
            bars[(series, label)] = int(value)
    assert len(bars) == 56
    for (day, created, completed), point in zip(rows, _trend_labels(rows), strict=True):
        assert bars[("Created", point)] == int(created), day
        assert bars[("Completed", point)] == int(completed), day
    assert ["Fri 20 Nov", "4", "1"] in rows and ["Sat 21 Nov", "1", "1"] in rows
    # The in-time line: a point (with its value) only where something was completed.
    in_time_rows = parser.tables["chart-in-time"][1:]
    assert ["Fri 20 Nov", "1", "1", "100%"] in in_time_rows
    assert ["Sat 21 Nov", "1", "0", "0%"] in in_time_rows
    titles = [c.find(f"{SVG}title") for c in charts["chart-in-time"].iter(f"{SVG}circle")]
    points = [title.text for title in titles if title is not None]
    assert sorted(points) == ["20 Nov: 100%", "21 Nov: 0%"]
    assert sum(1 for r in in_time_rows if r[3] == "–") == 26

    # A team and a period, through the form's parameters.
    response = await web.get(
        "/performance", params={"from": "2026-11-21", "to": "2026-11-21", "team": "sc-north"}
    )
    html = await response.text()
    assert response.status == 200
    assert 'data-figure="created">1<' in html and 'data-figure="completed">1<' in html
    assert 'data-figure="open">1<' in html  # G, sc-north's open task
    assert t["C"].team == "sc-south"

    # 90 days: weekly steps, still a table for each chart.
    html = await (await web.get("/performance", params={"period": "90"})).text()
    parser = _Tables()
    parser.feed(html)
    assert len(parser.tables["chart-volume"]) == 1 + 13
    assert sum(int(r[1]) for r in parser.tables["chart-volume"][1:]) == 6
    assert 'aria-current="page">Last 90 days' in html

    # A councillor: their wards only, no officers' names or loads.
    web.session.cookie_jar.clear()
    await sign_in(web, "cllr-hughes")
    html = await (await web.get("/performance")).text()
    assert 'data-figure="open">2<' in html and 'data-figure="created">4<' in html
    assert "Officers" not in html
    for officer in ("Bob Warden", "Carol Warden", "Dan Operative", "Erin Operative"):
        assert officer not in html
    assert "Southmere" not in html and "Riverside" not in html


def _trend_labels(rows):
    # The table's "Fri 20 Nov" is the chart's "20 Nov".
    return [row[0].split(" ", 1)[1] for row in rows]


async def test_who_may_see_the_performance_page(web, clock):
    await build_week(web, clock)
    # Not signed in: sent to sign in (and back); htmx: 401.
    response = await web.get("/performance?period=7", allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith("/auth/sign-in?next=") and "performance" in location
    response = await web.get("/performance", headers={"HX-Request": "true"}, allow_redirects=False)
    assert response.status == 401

    seen = {}
    for person in ("alice", "bob", "frank", "cllr-hughes", "cllr-patel", "ivy"):
        web.session.cookie_jar.clear()
        await sign_in(web, person)
        response = await web.get("/performance")
        seen[person] = (response.status, await response.text())
    for person in ("alice", "bob", "frank", "cllr-hughes", "cllr-patel"):
        assert seen[person][0] == 200, person
    # Ivy is in the file but sees no task: the one "not found" answer, no figures.
    status, html = seen["ivy"]
    assert status == 404 and "data-figure" not in html
    web.session.cookie_jar.clear()
    await sign_in(web, "alice")
    missing = await web.get("/performance/nothing")
    assert missing.status == 404
    # A forged or foreign session cookie is no session.
    web.session.cookie_jar.clear()
    web.session.cookie_jar.update_cookies({"responder_session": "gAAAAAforged"})
    response = await web.get("/performance", allow_redirects=False)
    assert response.status == 302


HOSTILE = [
    ("alice", "period=5", "period"),
    ("alice", "period=28&period=7", "period"),
    ("alice", "period=7&from=2026-11-01&to=2026-11-02", "period"),
    ("alice", "from=2026-11-01", "to"),
    ("alice", "from=yesterday&to=2026-11-02", "from"),
    ("alice", "from=2026-02-29&to=2026-03-01", "from"),
    ("alice", "from=2024-01-01&to=2026-01-01", "to"),
    ("alice", "from=9999-12-31&to=9999-12-31", "from"),
    ("alice", "period=" + "9" * 5000, "period"),
    ("alice", "team=green", "team"),
    ("alice", "team=%3Cscript%3E", "team"),
    ("alice", "ward=Atlantis", "ward"),
    ("alice", "ward=North%00gate", "ward"),
    ("frank", "team=sc-north", "team"),
    ("bob", "team=sc-south", "team"),
    ("cllr-hughes", "ward=Southmere", "ward"),
    ("cllr-hughes", "ward=Eastwood", "ward"),
    ("cllr-hughes", "team=other", "team"),
    ("cllr-hughes", "ward=northgate", "ward"),
    ("cllr-patel", "ward=Northgate", "ward"),
]


async def test_hostile_or_foreign_parameters_get_a_400_naming_them(web):
    """Bad values, and teams or wards not the viewer's (a councillor asking for another
    ward, a manager for another's team): a 400 naming the parameter, and no figures."""
    signed_in = None
    for person, query, param in HOSTILE:
        if person != signed_in:
            web.session.cookie_jar.clear()
            await sign_in(web, person)
            signed_in = person
        response = await web.get("/performance?" + query)
        html = await response.text()
        assert response.status == 400, (query, html[:300])
        assert f"parameter &#39;{param}&#39;" in html or f"parameter '{param}'" in html, query
        assert "data-figure" not in html and "<svg" not in html
        assert "<script>" not in html
