"""GET /api/tasks/{id}/history and .../history.csv (issue 19), through real HTTP: a task's
full history for FOI requests and complaints, with internal notes and reporters' contact
details only for keys allowed them, retention visible (which contact details were erased,
and when), and a task the key may not see answered exactly as an unknown one."""

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
from sqlalchemy import insert

from responder.app import build_app
from responder.store.schema import deliveries, notifications, task_events
from responder.web import db_key


@pytest.fixture
async def client(aiohttp_client, tmp_path, clock):
    url = f"sqlite:///{tmp_path}/r.db"
    app = build_app(export_settings(url, council_with_keys(tmp_path)), clock=clock)
    client = await aiohttp_client(app)
    db = app[db_key]
    await db.run(insert_tasks(seed(6, start=1000)))  # 1002: Northgate, sc-north, bob

    def history(conn):
        events = [
            ("bob", "accept", "assigned", "accepted", None),
            ("alice", "priority", "accepted", "accepted", "Internal: the landlord again"),
            ("bob", "update", "accepted", "accepted", "Cleared half, back tomorrow"),
            ("system", "contact_erased", "accepted", "accepted", "Reporter contact erased"),
        ]
        conn.execute(
            insert(task_events),
            [
                {
                    "task_id": 1002,
                    "at": NOW + timedelta(minutes=i),
                    "actor": a,
                    "action": x,
                    "from_status": f,
                    "to_status": t,
                    "note": n,
                }
                for i, (a, x, f, t, n) in enumerate(events)
            ],
        )
        conn.execute(
            insert(deliveries),
            {
                "task_id": 1002,
                "recipient": "person:bob",
                "conversation_id": "c",
                "service_url": "https://smba.example",
                "activity_id": "a",
                "version": 3,
                "created_at": NOW,
                "updated_at": NOW,
            },
        )

    await db.run(history)
    await db.run(insert_report(1002, 700))  # contact details held
    await db.run(insert_report(1002, 701, erased=NOW - timedelta(days=1)))
    await db.run(
        lambda conn: conn.execute(
            insert(notifications),
            {
                "reference": "r-1",
                "task_id": 1002,
                "report_id": 700,
                "event": "received",
                "channel": "email",
                "status": "delivered",
                "created_at": NOW,
                "updated_at": NOW,
            },
        )
    )
    return client


async def history(client, key: str, ident="1002", suffix=""):
    resp = await client.get(f"/api/tasks/{ident}/history{suffix}", headers=bearer(key))
    return resp.status, (await resp.json() if not suffix or resp.status != 200 else None), resp


async def test_what_each_key_is_shown(client):
    status, public, _ = await history(client, "northgate")
    assert status == 200
    actions = [e["action"] for e in public["events"]]
    assert actions == ["created", "accept", "update"]  # no priority, no erasure record
    assert {e["who"] for e in public["events"]} <= {"officer", "intake (forms)", "manager"}
    assert "Internal" not in str(public) and "officer_name" not in public["task"]
    assert public["deliveries"]["teams"] == []
    assert public["deliveries"]["notify"][0]["status"] == "delivered"
    held, erased = public["reports"]
    assert held["contact_held"] is True and "contact" not in held
    assert erased["contact_held"] is False and erased["contact_erased_at"].startswith("2026-11-22")

    status, internal, _ = await history(client, "bi")  # whole council: internals
    assert [e["action"] for e in internal["events"]][-2:] == ["update", "contact_erased"]
    assert {"Bob Warden", "Alice Manager"} <= {e["who"] for e in internal["events"]}
    assert internal["deliveries"]["teams"][0]["recipient"] == "Bob Warden"
    assert "Rita" not in str(internal) and "rita@example.com" not in str(internal)

    status, foi, _ = await history(client, "foi")  # contacts: true
    assert foi["reports"][0]["contact"] == {
        "name": "Rita Reporter",
        "email": "rita@example.com",
        "phone": "07700900999",
    }
    assert "contact" not in foi["reports"][1]  # erased: nothing left to show

    status, _, resp = await history(client, "foi", suffix=".csv")
    assert status == 200 and "RSP-2002-history.csv" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await resp.read()).decode(), newline="")))
    assert rows[0] == ["kind", "at", "who", "action", "from", "to", "note"]
    kinds = [r[0] for r in rows[1:]]
    assert kinds.count("event") == 5 and kinds.count("report") == 2
    assert any("erased at 2026-11-22" in r[6] for r in rows)
    assert "teams_card" in kinds and "notify" in kinds


async def test_not_yours_is_the_same_404_as_nothing(client):
    status, other_ward, _ = await history(client, "northgate", ident="1003")  # Eastwood
    status2, unknown, _ = await history(client, "northgate", ident="999999")
    assert status == status2 == 404 and other_ward == unknown
    for ident in ("0", "-1", "abc", "9" * 30, "RSP-2003", "%00"):
        status, body, _ = await history(client, "northgate", ident=ident)
        assert status == 404 and body == unknown, ident
    status, _, _ = await history(client, "northgate", ident="RSP-2002")
    assert status == 200
    resp = await client.get("/api/tasks/1002/history")
    assert resp.status == 401
    status, _, _ = await history(client, "south-team", ident="1002", suffix=".csv")
    assert status == 404
