"""The OData v4 feed for Power BI (issue 19), through real HTTP: read by a real OData
client library (python-odata, synchronous, in a thread against a real TCP server), its
$metadata valid against OASIS's CSDL XML schemas (from the npm package odata-csdl), Power
BI's own request shapes, server-driven paging while tasks arrive, keys' scopes, and
hostile queries answered with OData's error format, never a 500."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import requests
from aiohttp.test_utils import unused_port
from export_support import (
    NOW,
    SECRETS,
    basic,
    bearer,
    council_with_keys,
    export_settings,
    insert_report,
    insert_tasks,
    seed,
    task_row,
)
from odata import ODataService
from support import ROOT
from yarl import URL

from responder.app import build_app
from responder.web import db_key

SCHEMAS = ROOT / "tests" / "render" / "node_modules" / "odata-csdl" / "schemas"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/r.db"


async def served(aiohttp_server, database_url, tmp_path, clock):
    """The app on a real port, its public URL that port (so nextLinks lead back to it)."""
    port = unused_port()
    settings = export_settings(
        database_url, council_with_keys(tmp_path), public_url=f"http://127.0.0.1:{port}"
    )
    return await aiohttp_server(build_app(settings, clock=clock), port=port)


async def test_a_real_odata_client_reads_the_feed(aiohttp_server, sqlite_url, tmp_path, clock):
    server = await served(aiohttp_server, sqlite_url, tmp_path, clock)
    db = server.app[db_key]
    rows = seed(30, start=1000)
    rows[0].update(status="completed", closed_at=NOW - timedelta(hours=990), outcome="cleared")
    await db.run(insert_tasks(rows))
    await db.run(insert_report(1000, 1, rating=4))
    url = str(server.make_url("/odata/"))

    def read() -> tuple[list, list, int]:
        session = requests.Session()
        session.headers.update(bearer("bi"))
        service = ODataService(url, reflect_entities=True, session=session, quiet_progress=True)
        Task = service.entities["Tasks"]
        query = (
            service.query(Task)
            .filter(Task.Ward == "Southmere")
            .filter(Task.ReportedAt >= datetime(2026, 1, 1))
        )
        southmere = [(t.Id, t.Ward, t.Team) for t in query.all()]
        done = [
            (t.Id, t.InTime, t.Rating)
            for t in service.query(Task).filter(Task.Status == "completed").all()
        ]
        return southmere, done, service.query(Task).count()

    southmere, done, count = await asyncio.to_thread(read)
    assert southmere and {w for _, w, _ in southmere} == {"Southmere"}
    assert done == [(1000, True, 4.0)]
    assert count == 30


def test_metadata_is_valid_csdl(tmp_path):
    import xmlschema  # the test extra's

    # The README's test command installs it (npm ci --prefix tests/render): never skip.
    assert (SCHEMAS / "edmx.xsd").exists(), "npm ci --prefix tests/render (odata-csdl) first"
    from responder.config import load_council
    from responder.domain.context import Domain
    from responder.domain.visibility import COUNCIL_WIDE
    from responder.export.odata import metadata_xml
    from responder.queries.odata_sets import entity_sets

    domain = Domain.for_council(load_council(council_with_keys(tmp_path)))
    xml = metadata_xml(entity_sets(domain, COUNCIL_WIDE, NOW, internals=True))
    schema = xmlschema.XMLSchema(str(SCHEMAS / "edmx.xsd"))
    schema.validate(xml)  # raises naming the element if not
    assert 'EntitySet Name="Tasks" EntityType="Responder.Task"' in xml


async def get(client, path: str, headers=None):
    resp = await client.get(path, headers=headers if headers is not None else bearer("bi"))
    return resp.status, await resp.json(), resp.headers


async def test_power_bis_requests_and_paging_while_tasks_arrive(
    aiohttp_client, database_url, tmp_path, clock
):
    app = build_app(export_settings(database_url, council_with_keys(tmp_path)), clock=clock)
    client = await aiohttp_client(app)
    db = app[db_key]
    await db.run(insert_tasks(seed(2100, start=1000)))

    # Power BI's shapes: $top/$skip pages, $select lists, $filter on dates, $count.
    status, body, headers = await get(
        client, "/odata/Tasks?$top=1000&$skip=1000&$select=Id,Ward,ReportedAt&$count=true"
    )
    assert status == 200 and headers["OData-Version"] == "4.0"
    assert body["@odata.count"] == 2100 and len(body["value"]) == 1000
    assert set(body["value"][0]) == {"Id", "Ward", "ReportedAt"}
    assert body["@odata.context"].endswith("$metadata#Tasks(Id,Ward,ReportedAt)")
    assert body["value"][0]["Id"] == 2000 and "@odata.nextLink" not in body
    window = "ReportedAt ge 2026-10-01T00:00:00Z and ReportedAt lt 2026-11-01T00:00:00Z"
    status, body, _ = await get(client, f"/odata/Tasks?$filter={window}&$count=true")
    assert status == 200
    for task in body["value"]:
        moment = datetime.fromisoformat(task["ReportedAt"])
        assert datetime(2026, 10, 1, tzinfo=moment.tzinfo) - timedelta(hours=1) <= moment
    assert body["@odata.count"] == len(body["value"]) > 0

    # Server-driven paging: 1,000 a page, a nextLink, none twice and none missed while
    # tasks arrive between pages.
    seen: list[int] = []
    url = "/odata/Tasks?$select=Id"
    extra = iter(range(9000, 9100))
    while url:
        status, body, _ = await get(client, url)
        assert status == 200, body
        seen += [t["Id"] for t in body["value"]]
        await db.run(insert_tasks([task_row(next(extra), "Northgate", "sc-north")]))
        link = body.get("@odata.nextLink")
        url = link and str(URL(link).relative())
    assert len(seen) == len(set(seen)) and set(range(1000, 3100)) <= set(seen)
    assert len(seen) >= 2100


async def test_scopes_and_hostile_queries(aiohttp_client, sqlite_url, tmp_path, clock):
    app = build_app(export_settings(sqlite_url, council_with_keys(tmp_path)), clock=clock)
    client = await aiohttp_client(app)
    await app[db_key].run(insert_tasks(seed(36, start=1000)))

    status, body, _ = await get(client, "/odata/Tasks?$select=Ward", bearer("northgate"))
    assert status == 200 and {t["Ward"] for t in body["value"]} == {"Northgate"}
    status, body, _ = await get(
        client, "/odata/Tasks?$filter=Ward eq 'Southmere'&$count=true", bearer("northgate")
    )
    assert body["value"] == [] and body["@odata.count"] == 0
    status, body, _ = await get(client, "/odata/Events?$select=TaskId", basic("south-team"))
    tasks_of_events = {e["TaskId"] for e in body["value"]}
    status, body, _ = await get(client, "/odata/Tasks?$select=Id,Team", basic("south-team"))
    assert tasks_of_events == {t["Id"] for t in body["value"]}
    assert {t["Team"] for t in body["value"]} == {"sc-south"}
    # Power BI's Web API credential: the key as the api_key query parameter.
    status, body, _ = await get(client, f"/odata/Wards?api_key={SECRETS['bi']}", headers={})
    assert status == 200 and {w["Name"] for w in body["value"]} >= {"Northgate", "Riverside"}
    status, body, _ = await get(client, "/odata/Officers")
    assert set(body["value"][0]) == {"Id", "Name", "Role", "Team", "Active"}

    for path, expected, target in [
        ("/odata/", 401, None),
        ("/odata/$metadata", 401, None),
        ("/odata/Tasks?$filter=Ward eq", 400, "$filter"),
        ("/odata/Tasks?$filter=Secret eq 1", 400, "$filter"),
        ("/odata/Tasks?$filter=Ward eq 'x'; DROP TABLE tasks", 400, "$filter"),
        ("/odata/Tasks?$filter=Id gt 99999999999999999999999", 400, "$filter"),
        ("/odata/Tasks?$filter=substringof('a', Ward)", 400, "$filter"),
        ("/odata/Tasks?$filter=ReportedAt ge 9999-12-31T23:59:59-14:00", 400, "$filter"),
        ("/odata/Tasks?$filter=Ward", 400, "$filter"),
        ("/odata/Tasks?$top=-1", 400, "$top"),
        ("/odata/Tasks?$top=99999999999999", 400, "$top"),
        ("/odata/Tasks?$skip=abc", 400, "$skip"),
        ("/odata/Tasks?$select=Id,Email", 400, "$select"),
        ("/odata/Tasks?$orderby=Id sideways", 400, "$orderby"),
        ("/odata/Tasks?$expand=Events", 501, "$expand"),
        ("/odata/Tasks?$whatever=1", 400, "$whatever"),
        ("/odata/Tasks?$skiptoken=nonsense", 400, "$skiptoken"),
        ("/odata/Tasks?$count=maybe", 400, "$count"),
        ("/odata/Contacts", 404, None),
        ("/odata/Tasks?$filter=" + "a" * 5000, 414, None),
    ]:
        headers = {} if expected == 401 else bearer("bi")
        status, body, resp_headers = await get(client, path, headers)
        assert status == expected, (path, body)
        assert set(body) == {"error"} and body["error"]["message"], path
        assert resp_headers["OData-Version"] == "4.0"
        if target:
            assert body["error"]["target"] == target, path
    # Allowed functions and operators work; every answer is a precise one.
    for expression in (
        "contains(Ward,'gate') and not (Status eq 'completed')",
        "startswith(TypeName,'Gr') or Priority in ('urgent','high')",
        "year(ReportedAt) eq 2026 and DueAt gt 2026-01-01",
        "InTime eq null and Rating eq null",
        "contains(Ward,'%')",
        "(" * 400 + "Id eq 1" + ")" * 400,
    ):
        status, body, _ = await get(client, f"/odata/Tasks?$filter={expression}")
        assert status == 200, (expression, body)
    status, body, _ = await get(client, "/odata/Tasks?$filter=contains(Ward,'%')")
    assert body["value"] == []
