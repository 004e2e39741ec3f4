"""/tasks, the work list, through HTTP (SQLite: the list query itself is tested on both
databases in test_task_filter.py): each role's scope, the form, htmx's partial answer,
keyset pages, and hostile query strings."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from support import AUTH
from test_task_filter import body, place
from web_support import sign_in

REF = re.compile(r'href="/tasks/(RSP-\d+)"')


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'r.db'}"


async def seed(client, clock) -> dict[str, str]:
    """A street-cleansing task in each ward, and a grounds task in Northgate."""
    refs = {}
    for ward in ("Northgate", "Eastwood", "Southmere", "Riverside"):
        resp = await client.post(
            "/api/tasks", json=body("fly-tipping", place(ward, 0)), headers=AUTH
        )
        assert resp.status == 201
        refs[ward] = (await resp.json())["reference"]
        clock.now += timedelta(minutes=5)
    resp = await client.post(
        "/api/tasks", json=body("grass-cutting", place("Northgate", 1), "Verge"), headers=AUTH
    )
    refs["grass"] = (await resp.json())["reference"]
    return refs


async def listed(client, url: str = "/tasks", status: int = 200, **headers) -> tuple[set, str]:
    resp = await client.get(url, headers=headers, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, text[:2000]
    return set(REF.findall(text)), text


async def test_each_role_sees_its_own_work_and_nothing_else(client, clock):
    refs = await seed(client, clock)
    street = {refs[w] for w in ("Northgate", "Eastwood", "Southmere", "Riverside")}

    # Not signed in: sent to sign in (back here afterwards); htmx gets a 401 to redirect.
    resp = await client.get("/tasks?ward=Northgate", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/auth/sign-in?next=")
    assert "ward%3DNorthgate" in resp.headers["Location"]
    resp = await client.get("/tasks", headers={"HX-Request": "true"}, allow_redirects=False)
    assert resp.status == 401 and resp.headers["HX-Redirect"].startswith("/auth/sign-in?")
    assert "RSP-" not in await resp.text()

    await sign_in(client, "alice")  # manager of sc-north and sc-south
    shown, page = await listed(client)
    assert shown == street
    assert '<label for="f-ward">Ward</label>' in page and "Apply filters" in page
    # Her own teams are offered, not Grounds and Trees.
    assert 'value="sc-north"' in page and 'value="green"' not in page
    assert "<caption" in page and 'scope="col"' in page
    shown, _ = await listed(client, "/tasks?ward=Southmere")
    assert shown == {refs["Southmere"]}
    shown, _ = await listed(client, "/tasks?team=green")  # not hers: empty, not Frank's rows
    assert shown == set()

    await sign_in(client, "frank")  # Grounds and Trees
    shown, _ = await listed(client)
    assert shown == {refs["grass"]}

    await sign_in(client, "bob")  # officer, sc-north (Northgate, Eastwood)
    shown, _ = await listed(client)
    assert shown == {refs["Northgate"], refs["Eastwood"]}

    await sign_in(client, "cllr-hughes")  # councillor for Northgate
    shown, page = await listed(client)
    assert shown == {refs["Northgate"], refs["grass"]}
    assert 'value="Southmere"' not in page  # only her own wards are offered
    for url in (
        "/tasks?ward=Southmere",
        "/tasks?ward=Southmere&status=all",
        "/tasks?team=sc-south",
        f"/tasks?q={refs['Southmere']}",
        "/tasks?officer=dan",
        "/tasks?sort=-created&status=all&limit=200",
    ):
        shown, page = await listed(client, url)
        # (the form and the map link show what was typed)
        results = page.split('id="results"', 1)[1].split('class="pager"')[0]
        assert refs["Southmere"] not in results and refs["Riverside"] not in results, url
        assert shown <= {refs["Northgate"], refs["grass"]}, url
    shown, page = await listed(client, "/tasks?ward=Southmere")
    assert shown == set() and "No tasks to show" in page


async def test_htmx_gets_the_results_alone_and_pages_follow_the_cursor(client, clock):
    refs = await seed(client, clock)
    await sign_in(client, "alice")
    full = await client.get("/tasks?limit=2&sort=-created")
    text = await full.text()
    assert text.startswith("<!doctype html>") and '<div id="results"' in text
    assert 'hx-get="/tasks" hx-target="#results" hx-push-url="true"' in text
    assert full.headers["Vary"] == "HX-Request"
    assert "Content-Security-Policy" in full.headers and "<script>" not in text
    first, part = await listed(client, "/tasks?limit=2&sort=-created", **{"HX-Request": "true"})
    assert "<html" not in part and "<form" not in part and first == set(REF.findall(text))
    assert first == {refs["Riverside"], refs["Southmere"]}  # the newest two
    next_url = re.search(r'href="(/tasks\?[^"]*after=[^"]+)"[^>]*>Next page', part)
    assert next_url is not None
    # A task arriving between pages does not push one out of the next page.
    clock.now += timedelta(minutes=1)
    await client.post("/api/tasks", json=body("litter", place("Eastwood", 5)), headers=AUTH)
    url = next_url.group(1).replace("&amp;", "&")
    second, part = await listed(client, url, **{"HX-Request": "true"})
    assert second == {refs["Eastwood"], refs["Northgate"]}
    assert "Back to first page" in part
    assert "Next page" not in part


BAD_FILTERS = [
    ("status=opne", "Status"),
    ("ward=Atlantis", "Ward"),
    ("team=%00", "Team"),
    ("created_from=not-a-date", "Created from"),
    ("due_to=2026-02-30", "Due to"),
    ("limit=100000", "Tasks per page"),
    ("sort=id;DROP TABLE tasks", "Sort by"),
    ("after=bm90IGEgY3Vyc29y", "Page"),
    ("q=" + "x" * 300, "Search"),
    ("sort=due&sort=-due", "Sort by"),
]


async def test_filters_it_cannot_read_are_a_400_naming_them(client, clock):
    refs = await seed(client, clock)
    await sign_in(client, "alice")
    for query, param in BAD_FILTERS:
        shown, page = await listed(client, "/tasks?" + query + "&ward=Northgate", status=400)
        assert shown == set(), query  # nothing listed as if the filter had been read
        assert "There is a problem with the filters" in page and f"{param}:" in page, query
        assert "<title>Error: Tasks" in page and refs["Northgate"] not in page
        # htmx swaps it in too (tasks.js lets a 400 through), without the layout.
        shown, part = await listed(client, "/tasks?" + query, 400, **{"HX-Request": "true"})
        assert "<html" not in part and f"{param}:" in part, query


async def test_hostile_query_strings(client, clock):
    refs = await seed(client, clock)
    await sign_in(client, "alice")
    # Over 4 KB: 414, nothing listed.
    shown, page = await listed(client, "/tasks?q=a&pad=" + "b" * 5000, status=414)
    assert shown == set() and "too long" in page
    # What was typed comes back escaped, never as markup.
    _, page = await listed(client, "/tasks?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    # LIKE's wildcards are literal: '%' matches nothing here, not everything.
    shown, _ = await listed(client, "/tasks?q=%25")
    assert shown == set()
    shown, _ = await listed(client, f"/tasks?q={refs['Eastwood'].lower()}")
    assert shown == {refs["Eastwood"]}
    # Unknown parameters are ignored; repeated list values are one filter.
    shown, _ = await listed(client, "/tasks?ward=Northgate,Eastwood&ward=Northgate&x=%FF")
    assert shown == {refs["Northgate"], refs["Eastwood"]}
    # Only GET: the list changes nothing.
    resp = await client.post("/tasks", data={"q": "x"})
    assert resp.status in (403, 405)
