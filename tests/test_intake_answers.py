"""Issue 16, intake answers: unknown fields are 422 with a suggestion; an external_id
re-used with other content is 409. Through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import delete, func, select, update
from support import AUTH
from test_intake import NORTHGATE, SOUTHMERE, post, report, rows

from responder.store.schema import contacts, outbox, reports, task_events, tasks
from responder.web import db_key


async def counts(client) -> dict[str, int]:
    """How many rows each table a report writes to holds."""
    async with client.app[db_key].read() as conn:
        return {
            t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            for t in (tasks, reports, contacts, task_events, outbox)
        }


NOTHING = {"tasks": 0, "reports": 0, "contacts": 0, "task_events": 0, "outbox": 0}


async def post_raw(client, raw: bytes):
    resp = await client.post(
        "/api/tasks", data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    return resp.status, await resp.read()


# --- unknown fields -------------------------------------------------------------------


def _misspell(old: str, new: str):
    def change(body: dict) -> None:
        body[new] = body.pop(old)

    return change


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (
            _misspell("description", "descripton"),
            "descripton",
            "unknown field 'descripton': did you mean 'description'?",
        ),
        (
            lambda b: b.update(location={"lat": NORTHGATE[0], "lng": NORTHGATE[1]}),
            "location.lng",
            "unknown field 'lng': did you mean 'lon'?",
        ),
        (
            lambda b: b["location"].update(adress=b["location"].pop("address")),
            "location.adress",
            "unknown field 'adress': did you mean 'address'?",
        ),
        (
            lambda b: b["reporter"].update(emial=b["reporter"].pop("email")),
            "reporter.emial",
            "unknown field 'emial': did you mean 'email'?",
        ),
        (
            lambda b: b["reporter"].update(mobile=b["reporter"].pop("phone")),
            "reporter.mobile",
            "unknown field 'mobile': did you mean 'phone'?",
        ),
        (
            _misspell("external_id", "externalId"),
            "externalId",
            "unknown field 'externalId': did you mean 'external_id'?",
        ),
        (
            _misspell("photos", "photo"),
            "photo",
            "unknown field 'photo': did you mean 'photos'?",
        ),
        (
            _misspell("description", "Description"),
            "Description",
            "unknown field 'Description': did you mean 'description'?",
        ),
        (
            lambda b: b.update(address="1 High Street"),
            "address",
            "unknown field 'address': did you mean 'location.address'?",
        ),
        (
            lambda b: b["location"].update(email="a@example.com"),
            "location.email",
            "unknown field 'email': did you mean 'reporter.email'?",
        ),
        (lambda b: b.update(priority="urgent"), "priority", "unknown field 'priority'"),
        (
            lambda b: b.update(descripción="Colchón"),
            "descripción",
            "unknown field 'descripción': did you mean 'description'?",
        ),
        (lambda b: b.update({"📍": 1}), "📍", "unknown field '📍'"),
    ],
)
async def test_unknown_field_is_422_naming_it_and_the_likely_one(client, change, field, problem):
    body = report(external_id="CAS-77")
    change(body)
    status, answer = await post(client, body)
    assert status == 422, answer
    assert answer["error"] == "invalid_report"
    assert answer["message"].startswith("The report has ")
    assert {"field": field, "problem": problem} in answer["problems"], answer["problems"]
    assert await counts(client) == NOTHING


async def test_lng_for_lon_lists_both_the_missing_and_the_unknown_field(client):
    body = report()
    body["location"] = {"lat": NORTHGATE[0], "lng": NORTHGATE[1]}
    status, answer = await post(client, body)
    assert status == 422
    assert answer["problems"] == [
        {"field": "location.lon", "problem": "is required"},
        {"field": "location.lng", "problem": "unknown field 'lng': did you mean 'lon'?"},
    ]
    assert answer["message"] == "The report has 2 problems."
    assert await counts(client) == NOTHING


async def test_unknown_fields_are_listed_with_the_other_problems(client):
    body = report(descripton="x", colour="red")
    body["location"]["lat"] = 100
    status, answer = await post(client, body)
    assert status == 422
    assert {p["field"] for p in answer["problems"]} == {"descripton", "colour", "location.lat"}
    assert answer["message"] == "The report has 3 problems."


@pytest.mark.parametrize("minimal", [True, False], ids=["required-only", "every-field"])
async def test_every_known_field_is_still_accepted(client, minimal):
    if minimal:
        body = {"type": "litter", "location": {"lat": SOUTHMERE[0], "lon": SOUTHMERE[1]}}
    else:
        body = report(external_id="ALL-1")
        body["reporter"]["updates"] = ["email"]
    status, task = await post(client, body)
    assert status == 201, task
    if not minimal:
        assert task["description"] == body["description"]
        assert task["location"]["address"] == "1 High Street"
        assert task["photos"] == body["photos"]
        [contact] = await rows(client, contacts)
        assert (contact.name, contact.updates) == ("A Resident", ["email"])


async def test_huge_unknown_field_name_is_cut_short_in_the_answer(client):
    name = "x" * 500_000
    status, raw = await post_raw(client, json.dumps(report(**{name: 1})).encode())
    assert status == 422
    assert len(raw) < 1000  # the name is not echoed back whole
    [problem] = json.loads(raw)["problems"]
    assert problem["field"] == "x" * 64 + "…"
    assert problem["problem"] == f"unknown field '{'x' * 64}…'"
    assert await counts(client) == NOTHING


async def test_many_unknown_fields_are_counted_not_all_listed(client):
    body = report(**{f"extra{i}": i for i in range(50_000)})
    status, raw = await post_raw(client, json.dumps(body).encode())
    assert status == 422
    assert len(raw) < 3000
    answer = json.loads(raw)
    assert len(answer["problems"]) == 11
    assert [p["field"] for p in answer["problems"][:10]] == [f"extra{i}" for i in range(10)]
    assert answer["problems"][10] == {"field": "body", "problem": "has 49990 more unknown fields"}
    assert await counts(client) == NOTHING


@pytest.mark.parametrize(
    "key",
    ['"\\ud800"', '"\\u0000"', '"a\\nb\\"c"', '"function-after[x]"', "\"literal['a']\"", '""'],
    ids=["lone-surrogate", "nul", "newline-and-quote", "pydantic-loc-name", "literal", "empty"],
)
async def test_hostile_unknown_field_names_are_422_not_500(client, key):
    for where in ("top", "location", "reporter"):
        body = json.dumps(report())
        if where == "top":
            raw = body.replace("{", "{" + key + ": 1, ", 1)
        else:
            raw = body.replace(f'"{where}": {{', f'"{where}": {{{key}: 1, ', 1)
        status, answer = await post_raw(client, raw.encode())
        assert status == 422, (where, answer)
        problems = json.loads(answer)["problems"]
        assert problems and all(p["field"] and p["problem"] for p in problems)
    assert await counts(client) == NOTHING


# --- an external_id re-used ------------------------------------------------------------


def _moved(b: dict) -> None:
    b["location"]["lat"] = SOUTHMERE[0]
    b["location"]["lon"] = SOUTHMERE[1]


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.update(description="Fridge on the verge"),
        lambda b: b.update(type="graffiti"),
        _moved,
        lambda b: b["location"].update(address="2 High Street"),
        lambda b: b.update(photos=[]),
        lambda b: b["reporter"].update(email="other@example.com"),
        lambda b: b["reporter"].update(updates=["sms"]),
        lambda b: b.pop("reporter"),
    ],
    ids=["description", "type", "location", "address", "photos", "email", "updates", "reporter"],
)
async def test_external_id_reused_with_other_content_is_409_and_changes_nothing(client, change):
    status, first = await post(client, report(external_id="CAS-9"))
    assert status == 201
    before = await counts(client)
    [task_before] = await rows(client, tasks)
    body = report(external_id="CAS-9")
    change(body)
    status, answer = await post(client, body)
    assert status == 409, answer
    assert answer["error"] == "conflict"
    assert (
        "external_id 'CAS-9' from source 'web-form' was already used for "
        f"{first['reference']} with different content"
    ) in answer["message"]
    assert "other@example.com" not in str(answer) and "Fridge" not in str(answer)
    assert await counts(client) == before
    assert await rows(client, tasks) == [task_before]
    # The original content again is still the same task.
    status, again = await post(client, report(external_id="CAS-9"))
    assert (status, again["id"]) == (200, first["id"])


async def test_same_content_written_differently_is_a_resend(client):
    status, first = await post(client, report(external_id="CAS-10"))
    assert status == 201
    before = await counts(client)
    body = report(
        "  Fly-Tipping ",
        external_id="CAS-10",
        description="  Mattress and bags dumped by the bus stop\n",
    )
    body["reporter"] = {  # other key order, phone spaced, channels implied
        "phone": "07700 900 123",
        "email": "a@example.com",
        "name": "A Resident",
    }
    body["location"] = {"address": "1 High Street ", "lon": NORTHGATE[1], "lat": NORTHGATE[0]}
    raw = json.dumps(dict(reversed(list(body.items()))), indent=3).encode()
    status, answer = await post_raw(client, raw)
    again = json.loads(answer)
    assert status == 200, again
    assert again["id"] == first["id"] and again["duplicate_of"] is None
    assert await counts(client) == before


async def test_resend_of_a_linked_duplicate_with_other_content_is_409(client):
    _, first = await post(client, report(external_id="A"))
    near = (NORTHGATE[0] + 0.00009, NORTHGATE[1])
    status, dup = await post(client, report(at=near, external_id="B"))
    assert (status, dup["duplicate_of"]) == (200, first["id"])
    before = await counts(client)
    status, answer = await post(client, report(at=near, external_id="B", description="other"))
    assert status == 409 and first["reference"] in answer["message"]
    assert await counts(client) == before
    [task] = await rows(client, tasks)
    assert task.report_count == 2
    status, replay = await post(client, report(at=near, external_id="B"))
    assert (status, replay["duplicate_of"]) == (200, first["id"])


async def test_race_of_two_bodies_with_one_external_id_is_one_201_and_one_409(client):
    one = report(external_id="RACE")
    other = report(external_id="RACE", description="A sofa, not a mattress")
    results = await asyncio.gather(post(client, one), post(client, other))
    assert sorted(s for s, _ in results) == [201, 409]
    assert len(await rows(client, tasks)) == 1
    assert len(await rows(client, reports)) == 1
    assert len(await rows(client, task_events)) == 1


async def test_race_of_resends_and_conflicts_agrees_with_the_winner(client):
    a = report(external_id="RACE-2")
    b = report(external_id="RACE-2", type_="graffiti")
    bodies = [a, b] * 4
    results = await asyncio.gather(*(post(client, body) for body in bodies))
    [(winner, task)] = [(i, t) for i, (s, t) in enumerate(results) if s == 201]
    for i, (status, answer) in enumerate(results):
        if i == winner:
            continue
        if bodies[i] is bodies[winner]:
            assert (status, answer["id"]) == (200, task["id"])
        else:
            assert (status, answer["error"]) == (409, "conflict")
    assert len(await rows(client, tasks)) == 1
    assert len(await rows(client, reports)) == 1


async def test_report_stored_before_content_hashes_is_compared_by_type_and_place(client):
    status, first = await post(client, report(external_id="OLD-1"))
    assert status == 201
    async with client.app[db_key].write() as conn:  # as migration 0009 leaves older rows
        await conn.execute(update(reports).values(content_hash=None))
    status, again = await post(client, report(external_id="OLD-1"))
    assert (status, again["id"]) == (200, first["id"])
    body = report(external_id="OLD-1")
    _moved(body)
    status, answer = await post(client, body)
    assert (status, answer["error"]) == (409, "conflict")


async def test_erased_contact_details_are_not_compared(client):
    status, first = await post(client, report(external_id="ERASED-1"))
    assert status == 201
    async with client.app[db_key].write() as conn:  # as the retention purge leaves it
        await conn.execute(delete(contacts))
    body = report(external_id="ERASED-1")
    body["reporter"]["email"] = "someone-else@example.com"
    status, again = await post(client, body)
    assert (status, again["id"]) == (200, first["id"])
    # What the report said is still compared.
    status, answer = await post(client, report(external_id="ERASED-1", description="other"))
    assert status == 409


async def test_conflict_for_the_source_taken_from_the_key(client):
    headers = {"Authorization": "Bearer test-secret-fms"}
    body = report(external_id="FMS-1")
    del body["source"]
    status, first = await post(client, body, headers=headers)
    assert status == 201 and first["source"] == "fixmystreet"
    status, answer = await post(client, {**body, "description": "other"}, headers=headers)
    assert status == 409
    assert "from source 'fixmystreet'" in answer["message"]
    # The same external_id from another source is another report.
    status, other = await post(client, {**body, "description": "other"})
    assert status == 200 and other["duplicate_of"] == first["id"]  # same place: linked
