"""GET /api/tasks for read keys (issue 19), through real HTTP: the web list's filters and
keyset pages (no task twice, none missed while tasks are created between pages, on both
databases), keys' scopes, the permission matrix, and hostile input."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from export_support import (
    INTAKE,
    NOW,
    SECRETS,
    basic,
    bearer,
    council_with_keys,
    export_settings,
    insert_tasks,
    seed,
    task_row,
)
from support import write_council
from yarl import URL

from responder.app import StartupError, build_app
from responder.config import load_council
from responder.export.keys import ReadKeyProblem, read_keys
from responder.web import db_key

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/r.db"


async def started(aiohttp_client, database_url, tmp_path, clock):
    app = build_app(export_settings(database_url, council_with_keys(tmp_path)), clock=clock)
    return await aiohttp_client(app)


async def walk(client, url: str, headers: dict, between=None) -> list[dict]:
    """Every page from ``url`` by its ``next`` links; ``between(n)`` runs after page n."""
    seen: list[dict] = []
    pages = 0
    while url:
        resp = await client.get(url, headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        seen += body["tasks"]
        pages += 1
        if between is not None:
            await between(pages)
        url = body["next"] and str(URL(body["next"]).relative())
        assert pages < 100
    return seen


async def test_pages_miss_nothing_and_repeat_nothing_while_tasks_arrive(
    aiohttp_client, database_url, tmp_path, clock
):
    client = await started(aiohttp_client, database_url, tmp_path, clock)
    db = client.app[db_key]
    await db.run(insert_tasks(seed(60, start=1000)))
    before = set(range(1000, 1060))
    next_id = iter(range(5000, 5100))

    async def arrive(page: int) -> None:
        # New tasks, due before and after the cursor, land between every two pages.
        rows = [
            task_row(next(next_id), "Northgate", "sc-north", due_at=NOW.replace(year=2025)),
            task_row(next(next_id), "Riverside", "sc-south", due_at=NOW.replace(year=2027)),
        ]
        await db.run(insert_tasks(rows))

    for sort in ("due", "-created", "priority"):
        seen = await walk(
            client, f"/api/tasks?status=all&limit=7&sort={sort}", bearer("bi"), arrive
        )
        refs = [t["id"] for t in seen]
        assert len(refs) == len(set(refs)), sort  # never twice
        assert before <= set(refs), sort  # none missed

    # The filters are the web list's: ward, team, officer, dates, q; JSON's fields.
    seen = await walk(
        client, "/api/tasks?ward=Southmere&team=green&status=all&limit=50", bearer("bi")
    )
    assert seen and {(t["ward"], t["team"]) for t in seen} == {("Southmere", "green")}
    first = seen[0]
    assert first["team_name"] == "Grounds and Trees" and first["officer_name"] == "Grace Arborist"
    # Times in the council's time zone: the seeded tasks reach back into summer time.
    for t in seen:
        moment = datetime.fromisoformat(t["reported_at"])
        assert moment.utcoffset() == moment.astimezone(LONDON).utcoffset()
    assert datetime.fromisoformat(first["reported_at"]).utcoffset() == timedelta(hours=1)
    assert first["in_time"] is None
    assert "description" not in first and "reporter" not in first


async def test_keys_scopes_and_the_permission_matrix(aiohttp_client, sqlite_url, tmp_path, clock):
    client = await started(aiohttp_client, sqlite_url, tmp_path, clock)
    await client.app[db_key].run(insert_tasks(seed(24, start=1000)))
    everything = {("Northgate", "sc-north"), ("Eastwood", "sc-north"), ("Southmere", "sc-south")}

    async def wards_teams(headers, query="status=all&limit=200"):
        resp = await client.get(f"/api/tasks?{query}", headers=headers)
        assert resp.status == 200
        return {(t["ward"], t["team"]) for t in (await resp.json())["tasks"]}

    assert everything <= await wards_teams(bearer("bi"))
    assert everything <= await wards_teams(basic("bi"))
    assert {w for w, _ in await wards_teams(bearer("northgate"))} == {"Northgate"}
    assert {t for _, t in await wards_teams(basic("south-team"))} == {"sc-south"}
    # A filter narrows a key's scope, never widens it: another ward is simply empty.
    assert await wards_teams(bearer("northgate"), "ward=Southmere&status=all") == set()

    refused = {
        "no key": ({}, 401),
        "unknown bearer": ({"Authorization": "Bearer not-a-key-at-all"}, 401),
        "basic, wrong name": (basic("northgate", SECRETS["bi"]), 401),
        "basic, not base64": ({"Authorization": "Basic %%%"}, 401),
        "other scheme": ({"Authorization": "Digest abc"}, 401),
        "intake key": (INTAKE, 403),
    }
    for what, (headers, status) in refused.items():
        for path in ("/api/tasks", "/api/tasks.csv", "/api/tasks/1000/history", "/odata/Tasks"):
            resp = await client.get(path, headers=headers)
            assert resp.status == status, (what, path)
            body = await resp.json()
            assert "tasks" not in body and "events" not in body and "value" not in body
            if status == 401:
                assert "Bearer" in resp.headers["WWW-Authenticate"], what
    # A read key cannot write: intake answers it as any unknown key.
    resp = await client.post("/api/tasks", json={"type": "litter"}, headers=bearer("foi"))
    assert resp.status == 401
    # The query-string key is the OData feed's only (Power BI's Web API credential).
    resp = await client.get(f"/api/tasks?api_key={SECRETS['bi']}")
    assert resp.status == 401


async def test_hostile_queries_are_precise_4xx(aiohttp_client, sqlite_url, tmp_path, clock):
    client = await started(aiohttp_client, sqlite_url, tmp_path, clock)
    cases = {
        "status=nonsense": "status",
        "ward=Atlantis": "ward",
        "limit=-1": "limit",
        "limit=100000": "limit",
        "after=not-a-cursor": "after",
        "created_from=2026-13-45": "created_from",
        "sort=id;DROP TABLE tasks": "sort",
        "q=" + "x" * 300: "q",
    }
    for query, param in cases.items():
        resp = await client.get(f"/api/tasks?{query}", headers=bearer("bi"))
        assert resp.status == 400, query
        body = await resp.json()
        assert param in {p["parameter"] for p in body["problems"]}, query
    resp = await client.get("/api/tasks?q=" + "y" * 6_000, headers=bearer("bi"))
    assert resp.status == 414
    # 10 KB: aiohttp's own request-line limit (8190 bytes) answers first, a 400.
    resp = await client.get("/api/tasks?q=" + "y" * 10_000, headers=bearer("bi"))
    assert resp.status == 400
    resp = await client.get("/api/tasks?q=%27%20OR%201%3D1%20--", headers=bearer("bi"))
    assert resp.status == 200 and (await resp.json())["tasks"] == []


def test_read_keys_are_checked_at_start_up(tmp_path, sqlite_url):
    path = council_with_keys(tmp_path)
    council = load_council(path)
    secrets = {k: v for k, v in SECRETS.items() if k != "northgate"}
    production = export_settings(sqlite_url, path, environment="production", read_keys=secrets)
    with pytest.raises(ReadKeyProblem, match="no secret for read key 'northgate'"):
        read_keys(council, production)
    # Elsewhere a key without a secret is only unusable; a secret shared with intake never.
    keys = read_keys(council, export_settings(sqlite_url, path, read_keys=secrets))
    assert {k.name for _, k in keys.keys} == {"bi", "south-team", "foi"}
    shared = secrets | {"bi": INTAKE["Authorization"].removeprefix("Bearer ")}
    with pytest.raises(ReadKeyProblem, match="also an intake key"):
        read_keys(council, export_settings(sqlite_url, path, read_keys=shared))
    # A ward that is not the council's stops start-up (build_app's StartupError).
    (tmp_path / "bad").mkdir()
    bad = write_council(
        tmp_path / "bad",
        lambda d: d.__setitem__("read_keys", [{"name": "x", "wards": ["Nowhere"]}]),
    )
    with pytest.raises(StartupError, match="'Nowhere' is not a ward"):
        build_app(export_settings(sqlite_url, bad))
