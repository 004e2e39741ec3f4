"""/map, /map/data, /map/wards.geojson and the tile proxy (/tiles/...) through HTTP, with a
fake tile service on 127.0.0.1 (SQLite: the query itself is tested on both databases in
test_task_filter.py)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from support import AUTH, INTAKE_SECRET, write_council
from test_task_filter import body, place
from web_support import sign_in

from responder.app import build_app
from responder.settings import Settings

MAP_KEY = "os-key-SECRET-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"tile" * 10
STATIC = Path(__file__).resolve().parents[1] / "responder" / "web" / "static"


class FakeTiles:
    """A tile service: PNGs, and for some x a failure of each kind."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (path, key)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path, request.query.get("key", "")))
        x = int(request.match_info["x"])
        if x == 1:
            raise web.HTTPFound("http://127.0.0.1:9/elsewhere.png")
        if x == 2:
            return web.Response(
                text=f"<html>error for key {MAP_KEY}</html>", content_type="text/html"
            )
        if x == 3:
            return web.Response(status=500, text=f"upstream error {MAP_KEY}")
        if x == 4:
            return web.Response(body=b"<svg onload='x()'/>", content_type="image/svg+xml")
        return web.Response(body=PNG, content_type="image/png")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{z}/{x}/{y}.png", self.handle)
        return app


@pytest.fixture
async def fake_tiles(aiohttp_server) -> tuple[FakeTiles, str]:
    fake = FakeTiles()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/")).rstrip("/")


@pytest.fixture
async def map_client(aiohttp_client, tmp_path, fake_tiles, clock):
    fake, base = fake_tiles

    def change(data: dict) -> None:
        data["map"] = {
            "tiles": base + "/{z}/{x}/{y}.png?key={key}",
            "attribution": "© Test <Tiles> & Co",
            "min_zoom": 7,
            "max_zoom": 12,
        }

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        config_path=write_council(tmp_path, change),
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
        map_key=MAP_KEY,
    )
    return await aiohttp_client(build_app(settings, clock=clock))


async def test_tiles_come_through_the_proxy_with_the_key_kept_on_the_server(map_client, fake_tiles):
    fake, _ = fake_tiles
    client = map_client
    resp = await client.get("/tiles/10/511/340.png")
    assert resp.status == 401 and not fake.seen  # not signed in: nothing fetched

    await sign_in(client, "bob")
    resp = await client.get("/tiles/10/511/340.png")
    assert resp.status == 200 and await resp.read() == PNG
    assert resp.content_type == "image/png"
    assert resp.headers["Cache-Control"] == "private, max-age=86400"
    assert fake.seen == [("/10/511/340.png", MAP_KEY)]  # the key reached the tile service
    resp = await client.get("/tiles/10/511/340.png")
    assert resp.status == 200 and len(fake.seen) == 1  # the second from the cache

    for bad in (
        "/tiles/6/0/0.png",  # below min_zoom
        "/tiles/13/0/0.png",  # above max_zoom
        "/tiles/7/128/0.png",  # x >= 2^7
        "/tiles/7/0/128.png",
        "/tiles/a/0/0.png",
        "/tiles/7/-1/0.png",
        "/tiles/7/%D9%A3/0.png",  # an Arabic-Indic digit
        "/tiles/7/99999999999999999999/0.png",
    ):
        resp = await client.get(bad)
        assert resp.status == 400, bad
    assert len(fake.seen) == 1  # nothing asked upstream for those

    # Upstream failures: a redirect (not followed), HTML, a 500, SVG: 502, no upstream body.
    for x in (1, 2, 3, 4):
        resp = await client.get(f"/tiles/7/{x}/0.png")
        assert resp.status == 502, x
        text = await resp.text()
        assert text == "" and MAP_KEY not in text
    assert not any("elsewhere" in path for path, _ in fake.seen)

    # The key is in no page and no script the browser gets.
    for path in ("/map", "/map/data", "/map/wards.geojson", "/tasks", "/static/map.js"):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert MAP_KEY not in await resp.text(), path
        assert all(MAP_KEY not in v for v in resp.headers.values()), path
    assert MAP_KEY not in (STATIC / "map.js").read_text()


async def test_map_page_data_and_wards_for_each_role(map_client, clock):
    client = map_client
    refs = {}
    for ward in ("Northgate", "Southmere"):
        resp = await client.post("/api/tasks", json=body("needles", place(ward, 0)), headers=AUTH)
        refs[ward] = (await resp.json())["reference"]
        clock.now += timedelta(minutes=5)

    # Not signed in: the page sends to sign in; the data is a 401, JSON.
    resp = await client.get("/map", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/auth/sign-in")
    for path in ("/map/data", "/map/wards.geojson"):
        resp = await client.get(path)
        assert resp.status == 401 and "features" not in await resp.text()

    await sign_in(client, "alice")
    resp = await client.get("/map")
    page = await resp.text()
    assert resp.status == 200
    element = re.search(r'<div class="responder-map"[^>]*>', page)
    assert element is not None
    tag = element.group(0)
    for attribute in ("data-src", "data-wards", "data-tiles", "data-attribution"):
        assert attribute in tag
    assert 'data-tiles="/tiles/{z}/{x}/{y}.png"' in tag
    assert 'data-attribution="© Test &lt;Tiles&gt; &amp; Co"' in tag
    assert 'data-min-zoom="7" data-max-zoom="12"' in tag
    assert '<script src="/static/map.js' in page and "<script>" not in page
    assert "style=" not in page  # the CSP allows no inline styles
    assert set(re.findall(r'href="/tasks/(RSP-\d+)"', page)) == set(refs.values())
    assert "<caption" in page  # the list of the same tasks, below the map

    resp = await client.get("/map/data")
    assert resp.status == 200 and resp.content_type == "application/json"
    data = await resp.json()
    assert data["type"] == "FeatureCollection" and data["capped"] is False
    by_ref = {f["properties"]["reference"]: f for f in data["features"]}
    assert set(by_ref) == set(refs.values())
    feature = by_ref[refs["Northgate"]]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
    lat, lon = place("Northgate", 0)
    assert feature["geometry"]["coordinates"] == [lon, lat]  # GeoJSON: lon, lat
    props = feature["properties"]
    assert props == {
        "reference": refs["Northgate"],
        "type": "needles",
        "priority": "urgent",
        "status": props["status"],
        "overdue": False,
    }
    assert data["words"]["types"]["needles"].startswith("Discarded needles")
    assert data["words"]["priorities"]["urgent"] == "Urgent priority"
    assert data["words"]["statuses"][props["status"]]
    clock.now += timedelta(hours=5)  # urgent: due in 4 hours
    data = await (await client.get("/map/data?overdue=1")).json()
    assert {f["properties"]["overdue"] for f in data["features"]} == {True}

    # Bad filters: 400 naming the parameter, JSON; 414 when the query is too long.
    resp = await client.get("/map/data?ward=Atlantis&limit=0")
    assert resp.status == 400
    problems = {p["field"] for p in (await resp.json())["problems"]}
    assert problems == {"ward", "limit"}
    resp = await client.get("/map/data?q=" + "a" * 5000)
    assert resp.status == 414
    resp = await client.get("/map?created_from=not-a-date")
    assert resp.status == 400 and "Created from:" in await resp.text()

    # Ward boundaries: all, or one; simplified GeoJSON.
    resp = await client.get("/map/wards.geojson")
    wards = json.loads(await resp.text())
    assert resp.status == 200 and len(wards["features"]) == 4
    resp = await client.get("/map/wards.geojson?ward=Northgate")
    one = json.loads(await resp.text())
    assert [f["properties"]["name"] for f in one["features"]] == ["Northgate"]
    assert one["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    for bad in ("?ward=Atlantis", "?ward=Northgate&ward=Eastwood"):
        resp = await client.get("/map/wards.geojson" + bad)
        assert resp.status == 400 and (await resp.json())["problems"][0]["field"] == "ward"

    # A councillor of Northgate: never Southmere's point, whatever the filter.
    await sign_in(client, "cllr-hughes")
    for query in ("", "?ward=Southmere", "?status=all&team=sc-south", f"?q={refs['Southmere']}"):
        data = await (await client.get("/map/data" + query)).json()
        shown = {f["properties"]["reference"] for f in data["features"]}
        assert refs["Southmere"] not in shown, query
        assert shown <= {refs["Northgate"]}, query
        page = await (await client.get("/map" + query)).text()
        assert f'href="/tasks/{refs["Southmere"]}"' not in page, query
