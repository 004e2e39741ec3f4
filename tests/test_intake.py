"""The intake API through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from support import AUTH

from responder.store.schema import contacts, outbox, people, reports, task_events, tasks
from responder.web import db_key

# Points inside the example wards (see examples/wards.geojson).
NORTHGATE = (51.9051, 0.8873)
SOUTHMERE = (51.8850, 0.8850)
OUTSIDE = (51.5000, -0.1200)


def report(type_: str = "fly-tipping", at=NORTHGATE, **extra) -> dict:
    body = {
        "type": type_,
        "description": "Mattress and bags dumped by the bus stop",
        "location": {"lat": at[0], "lon": at[1], "address": "1 High Street"},
        "photos": ["https://forms.example/uploads/abc.jpg"],
        "reporter": {
            "name": "A Resident",
            "email": "a@example.com",
            "phone": "07700900123",
            "updates": ["email", "sms"],
        },
        "source": "web-form",
    }
    body.update(extra)
    return body


def spread(i: int) -> tuple[float, float]:
    """Distinct points in Northgate, far enough apart (>100 m) not to be duplicates."""
    return (51.9005 + (i // 10) * 0.0015, 0.8805 + (i % 10) * 0.0018)


async def post(client, body, headers=AUTH):
    resp = await client.post("/api/tasks", json=body, headers=headers)
    return resp.status, await resp.json()


async def rows(client, table, *where):
    async with client.app[db_key].read() as conn:
        return (await conn.execute(select(table).where(*where))).all()


async def test_report_creates_routed_task_with_history_and_outbox(client, clock):
    status, task = await post(client, report(external_id="CAS-000123"))
    assert status == 201
    assert task["reference"] == f"RSP-{1000 + task['id']}"
    assert (task["status"], task["priority"], task["ward"], task["team"], task["assignee"]) == (
        "assigned",
        "high",
        "Northgate",
        "sc-north",
        "bob",
    )
    # high = 24 hours: due at the same clock time the next day.
    assert task["due_at"] == (clock.now + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert task["priority_reasons"] and task["routing_reasons"]
    assert any("Northgate" in r for r in task["routing_reasons"])
    assert task["duplicate_of"] is None

    events = await rows(client, task_events, task_events.c.task_id == task["id"])
    assert [(e.action, e.from_status, e.to_status, e.actor) for e in events] == [
        ("created", None, "assigned", "intake:forms")
    ]
    messages = await rows(client, outbox, outbox.c.task_id == task["id"])
    assert sorted((m.kind, m.status) for m in messages) == [
        ("notify", "pending"),
        ("notify", "pending"),
        ("teams.card", "pending"),
    ]
    card = next(m for m in messages if m.kind == "teams.card")
    assert card.payload == {"task_id": task["id"], "person": "bob"}
    for m in messages:  # no personal data travels in the outbox
        assert "a@example.com" not in str(m.payload) and "07700900123" not in str(m.payload)
        assert "example" not in m.idempotency_key
    [contact] = await rows(client, contacts)
    assert (contact.email, contact.phone, contact.updates) == (
        "a@example.com",
        "07700900123",
        ["email", "sms"],
    )


async def test_same_source_and_external_id_returns_the_same_task(client):
    status1, first = await post(client, report(external_id="CAS-1"))
    status2, again = await post(client, report(external_id="CAS-1"))
    assert (status1, status2) == (201, 200)
    assert again["id"] == first["id"] and again["duplicate_of"] is None
    assert len(await rows(client, tasks)) == 1
    assert len(await rows(client, reports)) == 1
    # Another source with the same external id is another report.
    status3, other = await post(
        client,
        report(
            external_id="CAS-1",
            source="fixmystreet",
            location={"lat": SOUTHMERE[0], "lon": SOUTHMERE[1]},
        ),
    )
    assert status3 == 201 and other["id"] != first["id"]


async def test_concurrent_replays_make_one_task(client):
    import asyncio

    results = await asyncio.gather(*(post(client, report(external_id="SAME")) for _ in range(8)))
    assert sorted(s for s, _ in results) == [200] * 7 + [201]
    assert len({t["id"] for _, t in results}) == 1
    assert len(await rows(client, tasks)) == 1


async def test_nearby_report_of_same_type_is_linked_as_duplicate(client):
    _, first = await post(client, report(external_id="A"))
    # ~10 m away: within duplicates.within_metres (25).
    near = (NORTHGATE[0] + 0.00009, NORTHGATE[1])
    status, dup = await post(client, report(at=near, external_id="B"))
    assert status == 200
    assert dup["id"] == first["id"] and dup["duplicate_of"] == first["id"]
    assert dup["report_count"] == 2
    assert len(await rows(client, tasks)) == 1
    linked = await rows(client, reports, reports.c.duplicate.is_(True))
    assert [r.task_id for r in linked] == [first["id"]]
    # The second reporter is told their report was received, against the same task.
    notify = await rows(client, outbox, outbox.c.kind == "notify")
    assert len(notify) == 4 and {m.task_id for m in notify} == {first["id"]}
    # Its replay answers the same way.
    status, replay = await post(client, report(at=near, external_id="B"))
    assert (status, replay["duplicate_of"]) == (200, first["id"])
    # Another type at the same spot, or the same type further away, is a new task.
    status, graffiti = await post(client, report("graffiti", at=near))
    assert status == 201 and graffiti["id"] != first["id"]
    far = (NORTHGATE[0] + 0.001, NORTHGATE[1])  # ~110 m
    status, other = await post(client, report(at=far))
    assert status == 201 and other["id"] != first["id"]


async def test_repeat_reports_raise_priority(client):
    # graffiti is 'normal'; the example's third rule: 3 reports within 50 m in 7 days -> high.
    ids = []
    for i, offset in enumerate((-1, 1, 0)):
        # ~30 m either side, then between: beyond duplicates (25 m), within the rule's 50 m.
        at = (NORTHGATE[0] + offset * 0.00027, NORTHGATE[1])
        status, task = await post(client, report("graffiti", at=at, description=f"tag {i}"))
        assert status == 201
        ids.append(task)
    assert [t["priority"] for t in ids] == ["normal", "normal", "high"]
    assert any("rule" in r and "3 reports" in r for r in ids[2]["priority_reasons"])


async def test_offensive_graffiti_is_urgent(client):
    status, task = await post(client, report("graffiti", description="Racist slogan on the wall"))
    assert status == 201 and task["priority"] == "urgent"
    assert any("offensive" in r for r in task["priority_reasons"])


async def test_least_loaded_round_robin_and_queue_routing(client):
    # sc-north is least-loaded over bob, carol.
    assigned = [
        (await post(client, report("litter", at=spread(i))))[1]["assignee"] for i in range(4)
    ]
    assert assigned == ["bob", "carol", "bob", "carol"]
    # sc-south is round-robin over dan, erin.
    south = [
        (await post(client, report("litter", at=(51.8810 + i * 0.002, 0.8850))))[1]
        for i in range(3)
    ]
    assert [t["team"] for t in south] == ["sc-south"] * 3
    assert [t["assignee"] for t in south] == ["dan", "erin", "dan"]
    # green is a queue: nobody assigned, offered to the team.
    status, tree = await post(client, report("fallen-tree"))
    assert status == 201
    assert (tree["team"], tree["assignee"], tree["status"], tree["priority"]) == (
        "green",
        None,
        "unassigned",
        "urgent",
    )
    # Offered to every on-duty officer of the team and to the team's channel.
    cards = await rows(
        client, outbox, outbox.c.task_id == tree["id"], outbox.c.kind == "teams.card"
    )
    tid = tree["id"]
    assert {m.idempotency_key: m.payload for m in cards} == {
        f"card:{tid}:grace:1": {"task_id": tid, "person": "grace"},
        f"card:{tid}:henry:1": {"task_id": tid, "person": "henry"},
        f"card:{tid}:team:green:1": {"task_id": tid, "team": "green"},
    }


async def test_off_duty_officers_are_skipped(client):
    async with client.app[db_key].write() as conn:
        await conn.execute(update(people).where(people.c.id == "bob").values(on_duty=False))
    assert [
        (await post(client, report("litter", at=spread(i))))[1]["assignee"] for i in range(2)
    ] == ["carol", "carol"]
    async with client.app[db_key].write() as conn:
        await conn.execute(update(people).where(people.c.id == "carol").values(on_duty=False))
    status, task = await post(client, report("litter", at=spread(5)))
    assert (status, task["assignee"], task["status"]) == (201, None, "unassigned")
    assert any("on duty" in r for r in task["routing_reasons"])


async def test_get_task_by_id_and_reference_with_history(client):
    _, task = await post(client, report())
    for ident in (str(task["id"]), task["reference"], task["reference"].lower()):
        resp = await client.get(f"/api/tasks/{ident}", headers=AUTH)
        assert resp.status == 200
        body = await resp.json()
        assert body["id"] == task["id"]
        assert [h["action"] for h in body["history"]] == ["created"]
        assert "a@example.com" not in str(body) and "A Resident" not in str(body)


@pytest.mark.parametrize("ident", ["999", "RSP-5000", "XYZ-1001", "nonsense", "١٢"])
async def test_unknown_task_is_404(client, ident):
    resp = await client.get(f"/api/tasks/{ident}", headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


@pytest.mark.parametrize(
    "ident", ["9999999999999999999", "RSP-" + "9" * 30, "#" + "9" * 40, "9" * 5000]
)
async def test_huge_task_ids_are_404_not_500(client, ident):
    # Found by bench/fuzz.py: past 64 bits the database overflowed; past 4300 digits int()
    # refused; both were 500s.
    resp = await client.get(f"/api/tasks/{ident.replace('#', '%23')}", headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-secret"},
        {"Authorization": "Basic Zm9ybXM6eA=="},
        {"Authorization": "Bearer "},
        {"Authorization": "test-secret-forms"},
    ],
)
async def test_missing_or_wrong_credentials_are_401_and_change_nothing(client, headers):
    status, body = await post(client, report(), headers=headers)
    assert status == 401 and body["error"] == "unauthorized"
    resp = await client.get("/api/tasks/1", headers=headers)
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert await rows(client, tasks) == []


async def test_second_intake_key_is_recorded_as_source(client):
    headers = {"Authorization": "Bearer test-secret-fms"}
    body = report()
    del body["source"]
    status, task = await post(client, body, headers=headers)
    assert status == 201 and task["source"] == "fixmystreet"
    events = await rows(client, task_events)
    assert events[0].actor == "intake:fixmystreet"


async def test_malformed_json_is_400(client):
    for raw in ["{bad", "", "\xff\xfe", "[1,"]:
        resp = await client.post(
            "/api/tasks",
            data=raw.encode("latin-1"),
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert resp.status == 400, raw
        assert (await resp.json())["error"] == "malformed_json"
    assert await rows(client, tasks) == []


@pytest.mark.parametrize(
    "raw",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000, "9" * 5000],
    ids=["deep-list", "deep-object", "5000-digit-integer"],
)
async def test_json_too_deep_or_with_a_huge_number_is_400(client, raw):
    # Found by bench/fuzz.py: json.loads raised RecursionError / ValueError, answered 500.
    for path in ("/api/tasks", "/api/messages"):
        resp = await client.post(
            path, data=raw.encode(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert resp.status == 400, path
        assert (await resp.json())["error"] == "malformed_json"
    assert await rows(client, tasks) == []


async def test_nul_characters_are_422_naming_the_field(client):
    # Found by bench/fuzz.py on PostgreSQL, which cannot store NUL in text: a 500 there.
    body = report(description="a\x00b", external_id="\x00")
    body["location"]["address"] = "1 High\x00 Street"
    body["reporter"]["name"] = "\x00"
    status, answer = await post(client, body)
    assert status == 422
    assert {p["field"] for p in answer["problems"]} == {
        "description",
        "external_id",
        "location.address",
        "reporter.name",
    }
    assert all("NUL" in p["problem"] for p in answer["problems"])
    assert await rows(client, tasks) == []


async def test_body_over_one_megabyte_is_413(client):
    big = report(description="x" * (1024 * 1024))
    status, body = await post(client, big)
    assert status == 413 and "1 MB" in body["message"]

    # The same without a Content-Length (chunked) is refused too.
    async def chunks():
        yield b'{"description": "'
        for _ in range(70):
            yield b"y" * 16384
        yield b'"}'

    resp = await client.post(
        "/api/tasks", data=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["error"] == "request_entity_too_large"
    assert await rows(client, tasks) == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream", "text/json"],
)
async def test_anything_but_json_is_415_and_changes_nothing(client, content_type):
    raw = json.dumps(report()).encode()  # a valid report, but not sent as JSON
    resp = await client.post("/api/tasks", data=raw, headers={**AUTH, "Content-Type": content_type})
    assert resp.status == 415, await resp.text()
    assert (await resp.json())["error"] == "unsupported_media_type"
    assert await rows(client, tasks) == []


async def test_no_content_type_is_415(client):
    resp = await client.post(
        "/api/tasks",
        data=json.dumps(report()).encode(),
        headers=AUTH,
        skip_auto_headers=("Content-Type",),
    )
    assert resp.status == 415
    assert await rows(client, tasks) == []


async def test_json_with_a_charset_or_a_json_suffix_is_read(client):
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        body = report(external_id=content_type)
        resp = await client.post(
            "/api/tasks",
            data=json.dumps(body).encode(),
            headers={**AUTH, "Content-Type": content_type},
        )
        assert resp.status in (200, 201), await resp.text()  # the second: a duplicate
        assert (await resp.json())["reference"] == "RSP-1001"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda b: b.update(type="space-junk"), "type", "unknown type"),
        (lambda b: b.pop("type"), "type", "is required"),
        (lambda b: b.pop("location"), "location", "is required"),
        (lambda b: b["location"].update(lat=91), "location.lat", "at most 90"),
        (lambda b: b["location"].update(lon=-181), "location.lon", "at least -180"),
        (lambda b: b["location"].update(lat="north"), "location.lat", "must be a number"),
        # Issue 13: JSON true/false and numeric strings are not numbers.
        (lambda b: b["location"].update(lat=True), "location.lat", "must be a number"),
        (lambda b: b["location"].update(lon=False), "location.lon", "must be a number"),
        (lambda b: b["location"].update(lat="51.9"), "location.lat", "must be a number"),
        (
            lambda b: b["location"].update(lat=OUTSIDE[0], lon=OUTSIDE[1]),
            "location",
            "not inside any of the council's wards",
        ),
        (lambda b: b.update(photos=["http://insecure.example/a.jpg"]), "photos[0]", "https"),
        (lambda b: b.update(photos="https://x.example/a.jpg"), "photos", "list"),
        (lambda b: b.update(photos=["https://x.example/a.jpg"] * 21), "photos", "too many"),
        (lambda b: b.update(description="d" * 5001), "description", "too long"),
        (lambda b: b["reporter"].update(email="not-an-email"), "reporter.email", "valid email"),
        (lambda b: b["reporter"].update(phone="12345"), "reporter.phone", "mobile"),
        (lambda b: b["reporter"].update(updates=["pigeon"]), "reporter.updates[0]", "one of"),
        (
            lambda b: b["reporter"].update(email=None, updates=["email"]),
            "reporter",
            "no email was given",
        ),
        (lambda b: b.update(source="bad source!"), "source", "letters"),
        (lambda b: b.update(external_id=""), "external_id", "empty"),
        (lambda b: b.update(location=[51.9, 0.88]), "location", "object"),
        # Found by bench/fuzz.py: non-ASCII digits passed as a UK mobile number.
        (lambda b: b["reporter"].update(phone="0770090012\u0663"), "reporter.phone", "mobile"),
        (lambda b: b.update(description="lone \ud800 surrogate"), "description", "Unicode"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(client, change, field, words):
    body = report()
    change(body)
    status, answer = await post(client, body)
    assert status == 422, answer
    assert answer["error"] == "invalid_report"
    matching = [p for p in answer["problems"] if p["field"] == field]
    assert matching, answer["problems"]
    assert words in matching[0]["problem"], matching
    assert await rows(client, tasks) == []


async def test_every_problem_is_listed_at_once(client):
    body = {
        "type": 7,
        "location": {"lat": 100, "lon": "east"},
        "photos": ["ftp://x"],
        "reporter": {"email": "nope"},
    }
    status, answer = await post(client, body)
    assert status == 422
    assert {p["field"] for p in answer["problems"]} == {
        "type",
        "location.lat",
        "location.lon",
        "photos[0]",
        "reporter.email",
    }
    assert answer["message"] == "The report has 5 problems."


async def test_not_an_object_is_422(client):
    for raw in ("[1, 2]", '"text"', "3", "null"):
        resp = await client.post(
            "/api/tasks", data=raw, headers={**AUTH, "Content-Type": "application/json"}
        )
        answer = await resp.json()
        assert resp.status == 422 and answer["problems"][0]["field"] == "body"


async def test_errors_do_not_echo_personal_data(client):
    body = report()
    body["reporter"]["email"] = "secret-person@@example.com"
    status, answer = await post(client, body)
    assert status == 422 and "secret-person" not in str(answer)


async def test_contact_kept_only_when_updates_are_wanted(client):
    body = report(external_id="none-wanted")
    body["reporter"]["updates"] = []
    status, task = await post(client, body)
    assert status == 201
    assert await rows(client, contacts) == []
    assert await rows(client, outbox, outbox.c.kind == "notify") == []
    # Updates omitted: the channels whose details were given.
    body = report(at=SOUTHMERE, external_id="implied")
    body["reporter"] = {"email": "b@example.com"}
    status, task = await post(client, body)
    [contact] = await rows(client, contacts)
    assert contact.updates == ["email"] and contact.phone is None
    [message] = await rows(client, outbox, outbox.c.kind == "notify")
    assert message.payload["channel"] == "email"


async def test_unknown_route_and_method_answer_json(client):
    resp = await client.get("/api/nothing")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.delete("/api/tasks", headers=AUTH)
    assert resp.status == 405 and "POST" in resp.headers["Allow"]


async def test_healthz(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {
        "status": "ok",
        "database": "ok",
        "council": "Sample Borough Council",
    }


async def test_due_time_uses_council_calendar_days_across_clock_change(client, clock):
    # 72 h litter reported on Friday 24 Oct 2025 10:00 BST is due Monday 27 Oct 10:00 GMT.
    clock.now = datetime(2025, 10, 24, 9, 0, tzinfo=UTC)
    _, task = await post(client, report("litter"))
    assert task["due_at"] == "2025-10-27T10:00:00Z"
