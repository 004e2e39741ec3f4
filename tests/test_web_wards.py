"""/wards/{ward}: the chat's ward summary, live (htmx fragment), the ward's open cases and
the map's contract; who may see which ward (SQLite: the page's own reads are
queries.cases.ward_summary, tested on both databases with the chat, and queries.wards)."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from perf_support import build_week
from support import INTAKE_SECRET, write_council
from web_support import sign_in

from responder.app import build_app
from responder.settings import Settings
from responder.web import db_key, domain_key


@pytest.fixture
async def web(aiohttp_client, tmp_path, clock):
    def change(data: dict) -> None:
        # In the file, but in no team and no ward.
        data["people"].append({"id": "ivy", "name": "Ivy Visitor", "role": "officer"})

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        config_path=write_council(tmp_path, change),
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
    )
    return await aiohttp_client(build_app(settings, clock=clock))


def _references(html: str) -> set[str]:
    return set(re.findall(r'href="/tasks/([A-Z]+-\d+)"', html))


async def test_the_councillors_ward_page_live_summary_cases_and_map(web, clock):
    t = await build_week(web, clock)
    await sign_in(web, "cllr-hughes")
    response = await web.get("/wards/Northgate")
    assert response.status == 200
    html = await response.text()
    # The chat's summary in its words: Northgate's open cases are E and G (G overdue).
    assert "Northgate: 2 open cases" in html
    assert "Overdue: 1" in html
    assert "Showing your teams" not in html  # a councillor sees all of their ward
    assert "Fly-tipping" in html and "Grass needs cutting" in html
    # The live region: htmx asks the same page every 60 s and swaps the summary in.
    region = re.search(r'<section id="ward-summary"[^>]*>', html).group(0)
    assert 'aria-live="polite"' in region
    assert 'hx-get="/wards/Northgate"' in region and 'hx-trigger="every 60s"' in region
    # The open cases, each linking to its task page; nothing from other wards, nothing
    # closed.
    assert _references(html) == {t["E"].reference, t["G"].reference}
    assert "Open cases (2)" in html
    # No officer's name anywhere on a councillor's page.
    for officer in ("Bob Warden", "Carol Warden", "Grace Arborist", "Henry Gardener"):
        assert officer not in html
    # The map, as map.js expects it.
    div = re.search(r'<div class="responder-map"[^>]*>', html).group(0)
    assert 'data-src="/map/data?ward=Northgate"' in div
    assert 'data-wards="/map/wards.geojson?ward=Northgate"' in div
    assert 'data-tiles="/tiles/{z}/{x}/{y}.png"' in div
    assert 'data-attribution="© OpenStreetMap contributors"' in div
    assert 'data-min-zoom="7"' in div and 'data-max-zoom="19"' in div
    for asset in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/markercluster/leaflet.markercluster.js",
        "/static/map.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/markercluster/MarkerCluster.css",
        "/static/vendor/markercluster/MarkerCluster.Default.css",
        "/static/map.css",
        "/static/wards.css",
    ):
        assert asset in html, asset
    assert "style=" not in html and "<script>" not in html  # CSP: no inline style or script

    # htmx's refresh gets the summary only, as it is now: G completed meanwhile.
    from responder.commands.act import ActionRequest, act
    from responder.domain.lifecycle import Action

    app = web.server.app
    done = await act(
        app[db_key],
        app[domain_key],
        ActionRequest(t["G"].id, Action.COMPLETE, t["G"].assignee, None, outcome="resolved"),
        clock.now,
    )
    assert done.applied
    response = await web.get("/wards/Northgate", headers={"HX-Request": "true"})
    part = await response.text()
    assert response.status == 200 and "<html" not in part and "<h1" not in part
    assert "Northgate: 1 open case" in part and "Overdue" not in part
    assert response.headers["Vary"] == "HX-Request"

    # A manager whose teams cover the ward sees their teams' work there, and is told so.
    web.session.cookie_jar.clear()
    await sign_in(web, "frank")
    html = await (await web.get("/wards/Northgate")).text()
    assert "Northgate: 1 open case" in html and "Showing your teams" in html
    assert _references(html) == {t["E"].reference}


async def test_who_may_see_a_ward_page(web, clock):
    await build_week(web, clock)
    # Not signed in: sent to sign in.
    response = await web.get("/wards/Northgate", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith("/auth/sign-in")
    refusal = None
    allowed = {
        "alice": {"Northgate", "Eastwood", "Southmere", "Riverside"},
        "bob": {"Northgate", "Eastwood"},
        "frank": {"Northgate", "Eastwood", "Southmere", "Riverside"},
        "cllr-hughes": {"Northgate"},
        "cllr-patel": {"Southmere", "Riverside"},
        "ivy": set(),
    }
    strange = [
        "Atlantis",
        "northgate",  # wards are named exactly
        "Northgate%2F..%2FSouthmere",
        quote("Southmere\x00"),
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "x" * 3000,
    ]
    for person, wards in allowed.items():
        web.session.cookie_jar.clear()
        await sign_in(web, person)
        for ward in ("Northgate", "Eastwood", "Southmere", "Riverside", *strange):
            response = await web.get(f"/wards/{ward}")
            html = await response.text()
            if ward in wards:
                assert response.status == 200, (person, ward)
                assert f"<h1>{ward}</h1>" in html
            else:
                assert response.status == 404, (person, ward)
                # The same answer for "no such ward" and "not yours": no figures.
                body = html[html.index("<main") :]
                assert "open case" not in body and "responder-map" not in body
                assert "<script>alert" not in html
                words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()
                refusal = refusal or words
                assert words == refusal, (person, ward)
        # htmx asking for another ward's fragment is refused the same way.
        if "Southmere" not in wards:
            response = await web.get("/wards/Southmere", headers={"HX-Request": "true"})
            assert response.status == 404


async def test_a_ward_name_that_needs_encoding(aiohttp_client, tmp_path, clock):
    """'St Mary's & Northgate': its page is at its URL-encoded name, and every link and the
    map's addresses carry it encoded."""
    name = "St Mary's & Northgate"

    def rename(data: dict) -> None:
        for team in data["teams"]:
            team["wards"] = [name if w == "Northgate" else w for w in team["wards"]]
        for person in data["people"]:
            if "wards" in person:
                person["wards"] = [name if w == "Northgate" else w for w in person["wards"]]

    path = write_council(tmp_path, rename)
    wards = path.parent / "wards.geojson"
    wards.write_text(wards.read_text().replace('"Northgate"', json.dumps(name)))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        config_path=path,
        intake_keys={"forms": INTAKE_SECRET},
        background=False,
    )
    client = await aiohttp_client(build_app(settings, clock=clock))
    await sign_in(client, "cllr-hughes")
    encoded = quote(name, safe="")
    response = await client.get(f"/wards/{encoded}")
    html = await response.text()
    assert response.status == 200, html[:500]
    assert "<h1>St Mary&#39;s &amp; Northgate</h1>" in html
    assert f'hx-get="/wards/{encoded}"' in html
    assert f'data-src="/map/data?ward={encoded}"' in html
    assert (await client.get("/wards/Northgate")).status == 404
    assert (await client.get("/wards/St%20Mary")).status == 404
