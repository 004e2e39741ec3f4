"""GET /api/tasks.csv (issue 19), through real HTTP: streamed (chunked), the web list's
filters within the key's scope, UTF-8 with an Excel BOM on request, times in the council's
time zone, a rating from residents' feedback, never reporters' contact details, and cells
a spreadsheet would run as formulas escaped (OWASP)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from export_support import (
    NOW,
    bearer,
    council_with_keys,
    export_settings,
    insert_report,
    insert_tasks,
    seed,
)
from support import AUTH

from responder.app import build_app
from responder.export.rows import CSV_HEADER
from responder.queries import export as export_query
from responder.web import db_key


async def read_csv(client, query: str, key: str = "bi") -> tuple[list[dict], object, bytes]:
    resp = await client.get(f"/api/tasks.csv?{query}", headers=bearer(key))
    assert resp.status == 200, await resp.text()
    raw = await resp.read()
    text = raw.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline=""))), resp, raw


@pytest.fixture
def small_batches(monkeypatch):
    # Several keyset batches over a few dozen tasks (the batch size, not HTTP).
    monkeypatch.setattr(export_query, "BATCH", 7)


async def test_csv_export(aiohttp_client, database_url, tmp_path, clock):
    app = build_app(export_settings(database_url, council_with_keys(tmp_path)), clock=clock)
    client = await aiohttp_client(app)
    db = app[db_key]
    # Through intake: a resident's report with name, email and phone.
    intake_body = {
        "type": "litter",
        "description": "Bags by the bus stop",
        "location": {"lat": 51.9051, "lon": 0.8873, "address": "1 High Street"},
        "reporter": {"name": "Zed Zebedee", "email": "zed@example.org", "phone": "07700900111"},
        "source": "web-form",
    }
    resp = await client.post("/api/tasks", json=intake_body, headers=AUTH)
    assert resp.status in (200, 201), await resp.text()
    rows = seed(40, start=1000)
    rows[0].update(
        status="completed",
        closed_at=NOW - timedelta(hours=999),
        outcome="cleared",
        source='=HYPERLINK("http://evil")',
    )
    rows[1].update(status="completed", closed_at=NOW, source="+1+2")  # late: due long ago
    rows[2].update(source="@SUM(A1)")
    rows[3].update(source="-3")
    await db.run(insert_tasks(rows))
    await db.run(insert_report(1000, 900, rating=4))
    await db.run(insert_report(1001, 901, rating=2))

    found, resp, raw = await read_csv(client, "status=all")
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="tasks-' in resp.headers["Content-Disposition"]
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert tuple(found[0]) == CSV_HEADER
    assert len(found) == 41 and len({r["reference"] for r in found}) == 41
    for secret in (b"Zed", b"zed@example.org", b"07700900111", b"Rita", b"rita@", b"0770090"):
        assert secret not in raw
    by_ref = {r["reference"]: r for r in found}
    done, late = by_ref["RSP-2000"], by_ref["RSP-2001"]
    assert done["in_time"] == "yes" and done["rating"] == "4.0"
    assert done["outcome"] and done["completed"].endswith("+01:00")  # BST in October
    assert late["in_time"] == "no" and late["rating"] == "2.0"
    assert by_ref["RSP-2002"]["in_time"] == "" and by_ref["RSP-2002"]["completed"] == ""
    assert done["source"] == '\'=HYPERLINK("http://evil")'
    assert late["source"] == "'+1+2"
    assert by_ref["RSP-2002"]["source"] == "'@SUM(A1)" and by_ref["RSP-2003"]["source"] == "'-3"
    assert done["team"] == "Grounds and Trees" and done["officer"] == "Grace Arborist"

    # Excel: the BOM; the filters and the key's scope as the list's.
    found, _, raw = await read_csv(client, "status=all&ward=Eastwood&excel=1")
    assert raw.startswith(b"\xef\xbb\xbf") and {r["ward"] for r in found} == {"Eastwood"}
    found, _, _ = await read_csv(client, "status=all", key="northgate")
    assert found and {r["ward"] for r in found} == {"Northgate"}
    found, _, _ = await read_csv(client, "status=all&ward=Southmere", key="northgate")
    assert found == []

    resp = await client.get("/api/tasks.csv?status=bogus", headers=bearer("bi"))
    assert resp.status == 400 and (await resp.json())["problems"][0]["parameter"] == "status"


async def test_csv_reads_in_batches_none_twice(aiohttp_client, tmp_path, clock, small_batches):
    url = f"sqlite:///{tmp_path}/r.db"
    app = build_app(export_settings(url, council_with_keys(tmp_path)), clock=clock)
    client = await aiohttp_client(app)
    await app[db_key].run(insert_tasks(seed(50, start=1000)))
    found, _, _ = await read_csv(client, "status=all")
    assert [r["reference"] for r in found] == [f"RSP-{i + 1000}" for i in range(1000, 1050)]


def test_local_times_by_the_hour_match_datetime_across_clock_changes():
    # SQLite's UTC text is rewritten by its hour (export/rows.LocalTimes): the same text as
    # datetime's own conversion, every 7 minutes through both of 2026's clock changes, in
    # London and in a zone whose offset is not whole hours (which takes the slow path).
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from responder.export.rows import LocalTimes

    for zone in ("Europe/London", "Asia/Kolkata", "America/St_Johns"):
        tz = ZoneInfo(zone)
        local = LocalTimes(tz)
        for start in (
            datetime(2026, 3, 28, 22, tzinfo=UTC),
            datetime(2026, 10, 24, 22, tzinfo=UTC),
        ):
            for step in range(0, 60 * 24 * 2, 7):
                moment = start + timedelta(minutes=step, seconds=step % 60)
                text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
                expected = moment.astimezone(tz).isoformat(timespec="seconds")
                assert local.text(text) == expected == local.text(moment), (zone, text)
    assert LocalTimes(ZoneInfo("Europe/London")).text(None) == ""
