"""Form packages at POST /api/intake/{source} (issue 17), through HTTP, on SQLite and PostgreSQL.

Each shipped preset with its sample payload (tests/data/forms/) makes the right task; every
refused request (auth, signature, window, replay, body, mapping) answers a precise 4xx and
creates nothing: the tests count tasks, reports, contacts, outbox rows and replay rows.

The council file here has four sources beside the example's:

    govservice   form (preset govservice),     auth: hmac    key "gov-secret-key"
    dynamics     form (preset power-automate), auth: bearer  key "dyn-secret-key"
    gravity      form (preset gravity-forms),  auth: bearer  key "grav-secret-key"
    fixmystreet  open311 (not a form source)                 key "test-secret-fms"
    forms        (no source: the JSON API's key)             key INTAKE_SECRET

Who may post where (one test per row, ``test_permission_matrix``):

| # | caller                                          | posts to                   | answer |
|---|-------------------------------------------------|----------------------------|--------|
| 1 | dynamics' key as Bearer                         | /api/intake/dynamics       | 201    |
| 2 | the JSON API key (forms) as Bearer              | /api/intake/dynamics       | 403    |
| 3 | gravity's key as Bearer (another form source)   | /api/intake/dynamics       | 403    |
| 4 | an unknown key as Bearer                        | /api/intake/dynamics       | 401    |
| 5 | no Authorization header                         | /api/intake/dynamics       | 401    |
| 6 | dynamics' key signing (HMAC) a bearer source    | /api/intake/dynamics       | 401    |
| 7 | govservice's key signing (HMAC)                 | /api/intake/govservice     | 201    |
| 8 | govservice's key as Bearer (not signed)         | /api/intake/govservice     | 401    |
| 9 | the JSON API key signing                        | /api/intake/govservice     | 401    |
| 10| dynamics' key signing (another source's key)    | /api/intake/govservice     | 401    |
| 11| fixmystreet's key (an Open311 source)           | /api/intake/fixmystreet    | 404    |
| 12| any key                                         | /api/intake/nowhere        | 404    |
| 13| dynamics' key as Bearer                         | /api/tasks (the JSON API)  | 201    |

Row 13 is the JSON API's own rule, unchanged: every intake key is one of the council's
systems and may use the JSON API under its own name (the report's source is the key's).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from sqlalchemy import func, select
from support import INTAKE_SECRET, ROOT, write_council

from responder.config.form_presets import PRESETS
from responder.config.forms import FormMapping, path_problem, resolve
from responder.config.load import validate_council_file
from responder.intake.form_mapping import Mapped, map_payload
from responder.settings import Settings
from responder.store.schema import contacts, intake_replays, outbox, reports, tasks
from responder.web import db_key

DATA = ROOT / "tests" / "data" / "forms"
KEYS = {
    "forms": INTAKE_SECRET,
    "fixmystreet": "test-secret-fms",
    "govservice": "gov-secret-key",
    "dynamics": "dyn-secret-key",
    "gravity": "grav-secret-key",
}
SOURCES: dict[str, Any] = {
    "govservice": {
        "auth": "hmac",
        "photo_hosts": ["sample-borough.govservice.uk"],
        "form": {
            "preset": "govservice",
            "types": {
                "Fly-tipping": "fly-tipping",
                "Dumped rubbish": "fly-tipping",
                "Graffiti": "graffiti",
            },
            "attributes": {"waste_type": "data.whatWasDumped"},
        },
    },
    "dynamics": {
        "auth": "bearer",
        "form": {
            "preset": "power-automate",
            "types": {"Litter bin full": "overflowing-bin", "Fly tipping": "fly-tipping"},
        },
    },
    "gravity": {
        "photo_hosts": ["www.sample-borough.gov.uk"],
        "form": {"preset": "gravity-forms", "types": {"Dog fouling": "dog-fouling"}},
    },
    "fixmystreet": {"open311": {}},
}
COUNTED = {
    "tasks": tasks,
    "reports": reports,
    "contacts": contacts,
    "outbox": outbox,
    "replays": intake_replays,
}
NOTHING = dict.fromkeys(COUNTED, 0)


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def with_sources(data: dict) -> None:
    data["sources"] = copy.deepcopy(SOURCES)


@pytest.fixture
def council_path(tmp_path: Path) -> Path:
    return write_council(tmp_path, with_sources)


@pytest.fixture
def settings(database_url: str, council_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        config_path=council_path,
        intake_keys=dict(KEYS),
        background=False,
    )


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


def signed(key: str, body: bytes, stamp: int) -> dict[str, str]:
    mac = hmac.new(key.encode(), str(stamp).encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Responder-Timestamp": str(stamp),
        "X-Responder-Signature": f"sha256={mac.hexdigest()}",
    }


def now_stamp(clock) -> int:
    return int(clock.now.timestamp())


async def post_json(client, source: str, payload: Any, headers: dict[str, str]):
    resp = await client.post(f"/api/intake/{source}", json=payload, headers=headers)
    return resp.status, await resp.json()


async def post_signed(client, clock, payload: Any, key: str = KEYS["govservice"], at=None):
    body = json.dumps(payload).encode()
    stamp = now_stamp(clock) if at is None else at
    resp = await client.post("/api/intake/govservice", data=body, headers=signed(key, body, stamp))
    return resp.status, await resp.json()


async def counts(client) -> dict[str, int]:
    async with client.app[db_key].read() as conn:
        return {
            name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for name, table in COUNTED.items()
        }


async def rows(client, table, *where):
    async with client.app[db_key].read() as conn:
        return (await conn.execute(select(table).where(*where))).all()


# --- Each preset with its sample payload ---------------------------------------------


async def test_govservice_sample_signed_makes_the_task(client, clock):
    status, task = await post_signed(client, clock, sample("govservice"))
    assert status == 201, task
    assert (task["type"], task["ward"], task["team"], task["source"]) == (
        "fly-tipping",
        "Eastwood",
        "sc-north",
        "govservice",
    )
    assert task["location"] == {
        "lat": 51.906,
        "lon": 0.905,
        "address": "Post box, 22 Mill Lane, Sample Town",
    }
    assert task["description"].startswith("Three black sacks")
    assert task["photos"] == []  # links are fetched through the outbox, not shown as sent
    [report] = await rows(client, reports)
    assert (report.source, report.external_id) == ("govservice", "GOV-20261123-004417")
    assert report.attributes == {
        "case_reference": "GOV-20261123-004417",
        "form": "Report a street cleansing problem",
        "uprn": "100091234567",
        "waste_type": "Household bags, Furniture",
    }
    # keepMeUpdated: Yes -> the channels whose details were given (the JSON API's rule).
    [contact] = await rows(client, contacts)
    assert (contact.name, contact.email, contact.phone, contact.updates) == (
        "Sam Example",
        "sam.example@example.com",
        "07700900456",
        ["email", "sms"],
    )
    fetches = await rows(client, outbox, outbox.c.kind == "fetch.photo")
    assert sorted(m.payload["url"] for m in fetches) == [
        "https://sample-borough.govservice.uk/files/submissions/004417/IMG_2041.jpg",
        "https://sample-borough.govservice.uk/files/submissions/004417/IMG_2042.jpg",
    ]
    assert {(m.payload["source"], m.payload["task_id"]) for m in fetches} == {
        ("govservice", task["id"])
    }
    # The signature is remembered until its window closes.
    [replay] = await rows(client, intake_replays)
    assert replay.source == "govservice"
    assert replay.expires_at == clock.now + timedelta(minutes=5)


async def test_govservice_grid_reference_alone_is_converted(client, clock):
    payload = sample("govservice")
    del payload["data"]["location"]["lat"], payload["data"]["location"]["lng"]
    status, task = await post_signed(client, clock, payload)
    assert status == 201, task
    assert task["ward"] == "Eastwood"
    assert task["location"]["lat"] == pytest.approx(51.906, abs=1e-4)
    assert task["location"]["lon"] == pytest.approx(0.905, abs=1e-4)


async def test_power_automate_sample_makes_the_task_without_keeping_contact(client):
    status, task = await post_json(client, "dynamics", sample("power-automate"), bearer("dynamics"))
    assert status == 201, task
    assert (task["type"], task["ward"], task["team"], task["source"]) == (
        "overflowing-bin",
        "Southmere",
        "sc-south",
        "dynamics",
    )
    assert task["location"]["address"] == "Library, 3 Market Square, Sample Town"
    # keepinformed: false -> no updates wanted, so no contact details are kept at all.
    assert await rows(client, contacts) == []
    assert await rows(client, outbox, outbox.c.kind == "fetch.photo") == []
    [report] = await rows(client, reports)
    assert report.external_id == "CAS-04417-Q7R2T9"
    assert report.attributes == {
        "dynamics_case": "CAS-04417-Q7R2T9",
        "dynamics_incidentid": "6f1d2c3b-4a59-ef11-bfe2-000d3a86c0de",
    }


def form_fields(payload: dict[str, Any]) -> dict[str, str]:
    """The entry as the Webhooks add-on's FORM request format sends it."""
    return {k: "" if v is None else str(v) for k, v in payload.items()}


@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_gravity_forms_sample_makes_the_task(client, encoding):
    payload = sample("gravity-forms")
    if encoding == "json":
        resp = await client.post("/api/intake/gravity", json=payload, headers=bearer("gravity"))
    else:
        resp = await client.post(
            "/api/intake/gravity", data=form_fields(payload), headers=bearer("gravity")
        )
    status, task = resp.status, await resp.json()
    assert status == 201, task
    assert (task["type"], task["ward"], task["team"]) == ("dog-fouling", "Northgate", "sc-north")
    assert task["location"] == {
        "lat": 51.9051,
        "lon": 0.8873,
        "address": "School Lane footpath, Sample Town, ST1 4QX",
    }
    [contact] = await rows(client, contacts)
    assert (contact.name, contact.email, contact.phone, contact.updates) == (
        "Alex Resident",
        "alex.resident@example.com",
        "07700900123",
        ["email"],  # only Email was ticked
    )
    [report] = await rows(client, reports)
    assert report.external_id == "gf-3-412"
    assert report.attributes == {
        "gravity_forms_entry": "412",
        "form_page": "https://www.sample-borough.gov.uk/report-it/street-problem/",
    }
    # The visitor's IP address and browser are in the entry but kept nowhere.
    assert "203.0.113.24" not in json.dumps(report.attributes)
    [fetch] = await rows(client, outbox, outbox.c.kind == "fetch.photo")
    assert fetch.payload["url"].endswith("/2026/11/footpath.jpg")
    assert fetch.payload["source"] == "gravity"


async def test_repeated_form_keys_become_a_list(client):
    payload = form_fields(sample("gravity-forms"))
    del payload["1.3"]
    body = urlencode([*payload.items(), ("1.3", "Alex"), ("1.3", "Jo")])
    resp = await client.post(
        "/api/intake/gravity",
        data=body.encode(),
        headers={**bearer("gravity"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 201, await resp.json()
    [contact] = await rows(client, contacts)
    assert contact.name == "Alex Jo Resident"


# --- Resends and replays ---------------------------------------------------------------


async def test_resend_with_the_same_case_reference_is_the_same_task(client, clock):
    first = await post_json(client, "dynamics", sample("power-automate"), bearer("dynamics"))
    again = await post_json(client, "dynamics", sample("power-automate"), bearer("dynamics"))
    assert (first[0], again[0]) == (201, 200)
    assert again[1]["id"] == first[1]["id"]
    # A signed source resends with a fresh signature: the same task too.
    gov1 = await post_signed(client, clock, sample("govservice"))
    clock.now += timedelta(seconds=30)
    gov2 = await post_signed(client, clock, sample("govservice"))
    assert (gov1[0], gov2[0]) == (201, 200)
    assert gov2[1]["id"] == gov1[1]["id"]
    assert (await counts(client))["tasks"] == 2


async def test_a_replayed_signed_request_is_refused_and_creates_nothing(client, clock):
    payload = sample("govservice")
    del payload["caseRef"]  # no case reference: a replay would otherwise make a second report
    body = json.dumps(payload).encode()
    headers = signed(KEYS["govservice"], body, now_stamp(clock))
    first = await client.post("/api/intake/govservice", data=body, headers=headers)
    assert first.status == 201
    before = await counts(client)
    clock.now += timedelta(seconds=60)
    again = await client.post("/api/intake/govservice", data=body, headers=headers)
    answer = await again.json()
    assert again.status == 409
    assert answer["error"] == "replayed"
    assert "accepted before" in answer["message"]
    assert await counts(client) == before


async def test_the_same_signed_request_at_once_is_accepted_once(client, clock):
    payload = sample("govservice")
    del payload["caseRef"]
    body = json.dumps(payload).encode()
    headers = signed(KEYS["govservice"], body, now_stamp(clock))

    async def send():
        resp = await client.post("/api/intake/govservice", data=body, headers=headers)
        return resp.status

    statuses = await asyncio.gather(*(send() for _ in range(4)))
    assert sorted(statuses) == [201, 409, 409, 409]
    assert (await counts(client))["tasks"] == 1


async def test_a_replay_at_the_last_second_of_its_window_is_still_refused(client, clock):
    payload = sample("govservice")
    del payload["caseRef"]
    body = json.dumps(payload).encode()
    headers = signed(KEYS["govservice"], body, now_stamp(clock))
    first = await client.post("/api/intake/govservice", data=body, headers=headers)
    assert first.status == 201
    clock.now += timedelta(minutes=5)  # the timestamp is exactly 300 seconds old: still good
    again = await client.post("/api/intake/govservice", data=body, headers=headers)
    assert again.status == 409
    clock.now += timedelta(seconds=1)
    late = await client.post("/api/intake/govservice", data=body, headers=headers)
    assert late.status == 401
    assert (await counts(client))["tasks"] == 1


async def test_replay_rows_are_deleted_once_their_window_has_closed(client, clock):
    status, _ = await post_signed(client, clock, sample("govservice"))
    assert status == 201
    clock.now += timedelta(minutes=6)
    payload = sample("govservice")
    payload["caseRef"] = "GOV-20261123-004418"
    payload["data"]["location"]["lat"] = "51.9100"
    status, _ = await post_signed(client, clock, payload)
    assert status == 201
    [replay] = await rows(client, intake_replays)
    assert replay.expires_at == clock.now + timedelta(minutes=5)


async def test_a_signed_post_that_fails_leaves_no_claim(client, clock):
    payload = sample("govservice")
    payload["data"]["location"].update(lat="51.5000", lng="-0.1200")  # London: outside
    body = json.dumps(payload).encode()
    headers = signed(KEYS["govservice"], body, now_stamp(clock))
    for _ in range(2):  # the same request again gets the same answer, not 'replayed'
        resp = await client.post("/api/intake/govservice", data=body, headers=headers)
        answer = await resp.json()
        assert resp.status == 422
        assert answer["problems"][0]["field"] == "data.location.lat"
        assert "not inside any of the council's wards" in answer["problems"][0]["problem"]
    assert await counts(client) == NOTHING


# --- Signatures refused ----------------------------------------------------------------


REFUSED_SIGNATURES = {
    "bad signature": (0, lambda h: {**h, "X-Responder-Signature": "sha256=" + "ab" * 32}),
    "old timestamp": (-301, None),
    "future timestamp": (301, None),
    "missing signature": (0, lambda h: {k: v for k, v in h.items() if "Signature" not in k}),
    "missing timestamp": (0, lambda h: {k: v for k, v in h.items() if "Timestamp" not in k}),
    "signature not hex": (0, lambda h: {**h, "X-Responder-Signature": "sha256=xyz"}),
    "signature without scheme": (0, lambda h: {**h, "X-Responder-Signature": "ab" * 32}),
    "timestamp not a number": (0, lambda h: {**h, "X-Responder-Timestamp": "yesterday"}),
    # Signed with the right key, but in the year 30,000: past what a date can hold.
    "timestamp past year 9999": (900_000_000_000, None),
}


@pytest.mark.parametrize("case", list(REFUSED_SIGNATURES))
async def test_refused_signatures_create_nothing(client, clock, case):
    shift, change = REFUSED_SIGNATURES[case]
    body = json.dumps(sample("govservice")).encode()
    headers = signed(KEYS["govservice"], body, now_stamp(clock) + shift)
    if change is not None:
        headers = change(headers)
    resp = await client.post("/api/intake/govservice", data=body, headers=headers)
    answer = await resp.json()
    assert resp.status == 401, answer
    assert answer["error"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("HMAC-SHA256")
    expected = {
        "bad signature": "signature does not match",
        "old timestamp": "301 seconds old",
        "future timestamp": "301 seconds in the future",
        "missing signature": "send X-Responder-Signature",
        "missing timestamp": "send X-Responder-Timestamp",
        "signature not hex": "64 hex digits",
        "signature without scheme": "64 hex digits",
        "timestamp not a number": "whole seconds",
        "timestamp past year 9999": "whole seconds",
    }[case]
    assert expected in answer["message"]
    assert await counts(client) == NOTHING


async def test_a_body_changed_after_signing_is_refused(client, clock):
    body = json.dumps(sample("govservice")).encode()
    headers = signed(KEYS["govservice"], body, now_stamp(clock))
    changed = body.replace(b"Dumped rubbish", b"Graffiti")
    resp = await client.post("/api/intake/govservice", data=changed, headers=headers)
    assert resp.status == 401
    assert await counts(client) == NOTHING


async def test_the_window_edges_are_accepted(client, clock):
    for shift, ref in ((-300, "A"), (300, "B")):
        payload = sample("govservice")
        payload["caseRef"] = ref
        payload["data"]["location"]["lat"] = "51.9100" if ref == "A" else "51.9150"
        status, answer = await post_signed(client, clock, payload, at=now_stamp(clock) + shift)
        assert status == 201, answer


# --- Bodies refused --------------------------------------------------------------------


async def test_unknown_source_is_404(client):
    resp = await client.post("/api/intake/nowhere", json={}, headers=bearer("dynamics"))
    answer = await resp.json()
    assert resp.status == 404
    assert answer["message"] == "No form source 'nowhere'."


async def test_oversized_body_is_413(client):
    big = b'{"description": "' + b"x" * (1024 * 1024) + b'"}'
    resp = await client.post(
        "/api/intake/dynamics",
        data=big,
        headers={**bearer("dynamics"), "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert (await resp.json())["error"] == "request_entity_too_large"
    assert await counts(client) == NOTHING


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"category=Litter bin full"),
        ("multipart/form-data; boundary=x", b"--x--"),
        ("application/xml", b"<case/>"),
    ],
)
async def test_wrong_content_type_is_415(client, content_type, body):
    resp = await client.post(
        "/api/intake/dynamics",
        data=body,
        headers={**bearer("dynamics"), "Content-Type": content_type},
    )
    answer = await resp.json()
    assert resp.status == 415
    assert "application/json or application/x-www-form-urlencoded" in answer["message"]
    assert await counts(client) == NOTHING


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"category": "Litter bin full",', "not valid JSON (line 1"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
async def test_malformed_json_is_400(client, body, says):
    resp = await client.post(
        "/api/intake/dynamics",
        data=body,
        headers={**bearer("dynamics"), "Content-Type": "application/json"},
    )
    answer = await resp.json()
    assert resp.status == 400
    assert says in answer["message"]
    assert await counts(client) == NOTHING


async def test_a_json_body_that_is_not_an_object_is_422(client):
    status, answer = await post_json(client, "dynamics", [1, 2], bearer("dynamics"))
    assert status == 422
    assert answer["problems"] == [{"field": "body", "problem": "must be a JSON object"}]


def _edit(path: list[str], value: Any):
    def change(payload: dict) -> None:
        target = payload
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


UNMAPPABLE = {
    "category not mapped": (
        "dynamics",
        _edit(["category"], "Abandoned car"),
        "category",
        "'Abandoned car' is not mapped to a task type; mapped: Litter bin full, Fly tipping",
    ),
    "category missing": ("dynamics", _edit(["category"], KeyError), "category", "is missing"),
    "category a list": (
        "dynamics",
        _edit(["category"], ["Litter bin full", "Fly tipping"]),
        "category",
        "must be one answer, not several",
    ),
    "latitude not a number": (
        "dynamics",
        _edit(["latitude"], "north-ish"),
        "latitude",
        "must be a number",
    ),
    "longitude missing": ("dynamics", _edit(["longitude"], None), "longitude", "is missing"),
    "latitude out of range": (
        "dynamics",
        _edit(["latitude"], 95),
        "latitude",
        "must be at most 90",
    ),
    "email not an email": (
        "dynamics",
        _edit(["contact", "emailaddress1"], "jo at example"),
        "contact.emailaddress1",
        "is not a valid email address",
    ),
    "updates unreadable": (
        "dynamics",
        _edit(["keepinformed"], "carrier pigeon"),
        "keepinformed",
        "must say yes or no",
    ),
    "updates without the detail": (
        "dynamics",
        _edit(["keepinformed"], "text"),
        "keepinformed",
        None,
    ),
    "photo not https": (
        "dynamics",
        _edit(["photos"], ["http://files.example/a.jpg"]),
        "photos",
        "must be an https:// URL",
    ),
    "description too long": (
        "dynamics",
        _edit(["description"], "x" * 5001),
        "description",
        "is too long (at most 5000 characters)",
    ),
    "NUL in the description": (
        "dynamics",
        _edit(["description"], "bin\x00full"),
        "description",
        "must not contain NUL characters",
    ),
    "gravity phone not a mobile": ("gravity", _edit(["3"], "01206 282222"), "3", "UK mobile"),
    "gravity point off the grid": ("gravity", _edit(["7"], "fifty-one"), "7", "must be a number"),
}


@pytest.mark.parametrize("case", list(UNMAPPABLE))
async def test_a_payload_that_does_not_map_is_422_naming_the_field(client, case):
    source, change, field, says = UNMAPPABLE[case]
    payload = sample("power-automate" if source == "dynamics" else "gravity-forms")
    change(payload)
    if case == "updates without the detail":
        payload["contact"]["mobilephone"] = None
    status, answer = await post_json(client, source, payload, bearer(source))
    assert status == 422, answer
    assert answer["error"] == "invalid_report"
    [problem] = answer["problems"]
    assert problem["field"] == field
    if says is not None:
        assert says in problem["problem"]
    assert "jo at example" not in json.dumps(answer)  # values are not echoed back
    assert await counts(client) == NOTHING


async def test_grid_reference_off_the_grid_is_422(client, clock):
    payload = sample("govservice")
    payload["data"]["location"].update(lat="", lng="", easting="9000000")
    status, answer = await post_signed(client, clock, payload)
    assert status == 422
    [problem] = answer["problems"]
    assert problem["field"] == "data.location.easting"
    assert "not on the British National Grid" in problem["problem"]
    assert await counts(client) == NOTHING


async def test_no_place_at_all_is_422_naming_the_lat_path(client, clock):
    payload = sample("govservice")
    for key in ("lat", "lng", "easting", "northing"):
        del payload["data"]["location"][key]
    status, answer = await post_signed(client, clock, payload)
    assert status == 422
    assert answer["problems"][0]["field"] == "data.location.lat"
    assert "is missing" in answer["problems"][0]["problem"]
    assert await counts(client) == NOTHING


# --- Who may post where ----------------------------------------------------------------


def _gov_signed_by(key: str):
    async def send(client, clock):
        return await post_signed(client, clock, sample("govservice"), key=key)

    return send


def _dyn_with(headers: dict[str, str]):
    async def send(client, clock):
        return await post_json(client, "dynamics", sample("power-automate"), headers)

    return send


def _dyn_signed_by(key: str):
    async def send(client, clock):
        body = json.dumps(sample("power-automate")).encode()
        resp = await client.post(
            "/api/intake/dynamics", data=body, headers=signed(key, body, now_stamp(clock))
        )
        return resp.status, await resp.json()

    return send


def _to(path: str, name: str):
    async def send(client, clock):
        resp = await client.post(path, json=sample("power-automate"), headers=bearer(name))
        return resp.status, await resp.json()

    return send


async def _json_api(client, clock):
    body = {
        "type": "litter",
        "location": {"lat": 51.9051, "lon": 0.8873},
        "description": "Crisp packets",
    }
    resp = await client.post("/api/tasks", json=body, headers=bearer("dynamics"))
    return resp.status, await resp.json()


MATRIX = {
    1: (_dyn_with(bearer("dynamics")), 201),
    2: (_dyn_with(bearer("forms")), 403),
    3: (_dyn_with(bearer("gravity")), 403),
    4: (_dyn_with({"Authorization": "Bearer not-a-key-at-all"}), 401),
    5: (_dyn_with({}), 401),
    6: (_dyn_signed_by(KEYS["dynamics"]), 401),
    7: (_gov_signed_by(KEYS["govservice"]), 201),
    8: (_to("/api/intake/govservice", "govservice"), 401),
    9: (_gov_signed_by(INTAKE_SECRET), 401),
    10: (_gov_signed_by(KEYS["dynamics"]), 401),
    11: (_to("/api/intake/fixmystreet", "fixmystreet"), 404),
    12: (_to("/api/intake/nowhere", "dynamics"), 404),
    13: (_json_api, 201),
}


@pytest.mark.parametrize("row", list(MATRIX))
async def test_permission_matrix(client, clock, row):
    send, expected = MATRIX[row]
    status, answer = await send(client, clock)
    assert status == expected, answer
    after = await counts(client)
    if expected == 201:
        assert after["tasks"] == 1
        [report] = await rows(client, reports)
        who = {1: "dynamics", 7: "govservice", 13: "dynamics"}[row]
        assert report.source == who
    else:
        assert after == NOTHING
    if expected == 403:
        assert "may not post to form source 'dynamics'" in answer["message"]


# --- The mapping itself (pure) -------------------------------------------------------------


def test_every_preset_reads_its_sample():
    types = {"Dumped rubbish": "fly-tipping", "Litter bin full": "overflowing-bin"}
    types["Dog fouling"] = "dog-fouling"
    codes = ["fly-tipping", "overflowing-bin", "dog-fouling"]
    for preset, name in (
        ("govservice", "govservice"),
        ("power-automate", "power-automate"),
        ("gravity-forms", "gravity-forms"),
    ):
        mapping = resolve(FormMapping.model_validate({"preset": preset, "types": types}))
        mapped = map_payload(sample(name), mapping, codes)
        assert isinstance(mapped, Mapped), mapped
        assert set(mapped.body) >= {"type", "description", "location", "external_id"}


def test_every_preset_path_is_a_valid_expression():
    for name, preset in PRESETS.items():
        paths = [p for p in preset.fields.model_dump().values() if p is not None]
        paths += [p for p in preset.attributes.values() if p is not None]
        assert paths, name
        assert [path_problem(p) for p in paths] == [None] * len(paths), name


def test_council_fields_override_the_preset_one_by_one():
    form = FormMapping.model_validate(
        {
            "preset": "gravity-forms",
            "fields": {"description": "12", "phone": None},
            "fixed": {"type": "litter", "updates": []},
            "attributes": {"form_page": None, "when_seen": "11"},
        }
    )
    mapping = resolve(form)
    assert mapping.paths["description"] == "12"
    assert "phone" not in mapping.paths and "type" not in mapping.paths
    assert mapping.paths["email"] == "2"  # untouched preset paths stay
    assert mapping.attributes == {"gravity_forms_entry": "to_string(id)", "when_seen": "11"}
    payload = sample("gravity-forms")
    payload["12"] = "Bags of litter"
    mapped = map_payload(payload, mapping, ["litter"])
    assert isinstance(mapped, Mapped)
    assert mapped.body["type"] == "litter"
    assert mapped.body["description"] == "Bags of litter"
    assert mapped.body["reporter"] == {
        "name": "Alex Resident",
        "email": "alex.resident@example.com",
        "updates": [],
    }
    assert mapped.where["type"] == "fixed.type"
    assert ("when_seen", "Weekday mornings") in mapped.attributes


@pytest.mark.parametrize(
    ("answer", "updates"),
    [
        ("Yes", None),
        (True, None),
        ("no", []),
        (False, []),
        ("", []),
        ("Email", ["email"]),
        ("Text message", ["sms"]),
        ("email, text", ["email", "sms"]),
        (["Email", "", "Text message"], ["email", "sms"]),
        (["", ""], []),
    ],
)
def test_update_answers(answer, updates):
    mapping = resolve(
        FormMapping.model_validate(
            {"fields": {"type": "t", "lat": "lat", "lon": "lon", "updates": "u"}}
        )
    )
    mapped = map_payload(
        {"t": "litter", "lat": 51.9, "lon": 0.88, "u": answer}, mapping, ["litter"]
    )
    assert isinstance(mapped, Mapped)
    assert mapped.body.get("reporter", {}).get("updates") == updates


def test_a_category_answer_that_is_a_task_type_code_needs_no_types_entry():
    mapping = resolve(FormMapping.model_validate({"fields": {"type": "t", "lat": "a", "lon": "b"}}))
    mapped = map_payload({"t": "Graffiti ", "a": "51.9", "b": "0.88"}, mapping, ["graffiti"])
    assert isinstance(mapped, Mapped) and mapped.body["type"] == "graffiti"
    problems = map_payload({"t": "Rats", "a": "51.9", "b": "0.88"}, mapping, ["graffiti"])
    assert problems == [
        {
            "field": "t",
            "problem": "'Rats' is not a task type; known: graffiti",
            "report_field": "type",
        }
    ]


# --- The council file's checks --------------------------------------------------------------


def problems_with(tmp_path: Path, sources: dict[str, Any]) -> list[str]:
    def change(data: dict) -> None:
        data["sources"] = sources

    council, problems = validate_council_file(write_council(tmp_path, change))
    assert council is None
    return problems


def test_the_sources_here_pass(tmp_path):
    council, problems = validate_council_file(write_council(tmp_path, with_sources))
    assert problems == [] and council is not None


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {"preset": "govservise"},
            "sources.web.form.preset: should be 'govservice', 'power-automate' or"
            " 'gravity-forms', got 'govservise' (did you mean 'govservice'?)",
        ),
        (
            {"preset": "govservice", "fields": {"description": "data.[details"}},
            "sources.web.form.fields.description: not a valid path (",
        ),
        (
            {"preset": "gravity-forms", "fields": {"name": "1.3 || 1.6"}},
            "a key that starts with a digit needs double quotes, e.g. '\"3.3\"'",
        ),
        (
            {"preset": "govservice", "types": {"Abandoned car": "abandoned-cars"}},
            "sources.web.form.types.Abandoned car: unknown task type 'abandoned-cars'"
            " (known: fly-tipping, needles, graffiti",
        ),
        (
            {"preset": "govservice", "types": {"Dumped rubbish": "fly-tiping"}},
            "sources.web.form.types.Dumped rubbish: unknown task type 'fly-tiping'"
            " (did you mean 'fly-tipping'?)",
        ),
        (
            {"preset": "govservice", "fixed": {"type": "dog-fowling"}},
            "sources.web.form.fixed.type: unknown task type 'dog-fowling'"
            " (did you mean 'dog-fouling'?)",
        ),
        (
            {"preset": "govservice", "attributes": {"email": "data.email"}},
            "sources.web.form.attributes.email: attributes are kept with the report for good,"
            " so never contact details",
        ),
        (
            {"fields": {"type": "category", "lat": "lat"}},
            "sources.web.form.fields: lat is mapped but lon is not; map both",
        ),
        (
            {"fields": {"type": "category"}},
            "sources.web.form.fields: say where the place is: lat and lon, or easting and northing",
        ),
        (
            {"fields": {"lat": "a", "lon": "b"}},
            "sources.web.form: say where the task type comes from: fields.type (with types:"
            " for the form's answers) or fixed.type",
        ),
        (
            {"preset": "govservice", "fields": {"type": "data.kind"}, "fixed": {"type": "litter"}},
            "sources.web.form.fixed.type: also given in fields.type; keep one of the two",
        ),
        (
            {"preset": "govservice", "fields": {"postcode": "data.postcode"}},
            "sources.web.form.fields.postcode: unknown key",
        ),
    ],
)
def test_config_checker_names_a_bad_mapping(tmp_path, form, expected):
    problems = problems_with(tmp_path, {"web": {"form": form}})
    assert any(expected in line for line in problems), problems


# --- docs/intake-forms.md says what is true ---------------------------------------------

DOC = ROOT / "docs" / "intake-forms.md"


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_the_documented_council_file_entries_load(tmp_path):
    blocks = [b for b in doc_blocks("yaml") if b.startswith("sources:")]
    assert len(blocks) == 4  # the overview and one per preset
    for i, block in enumerate(blocks):
        sources = yaml.safe_load(block)["sources"]
        folder = tmp_path / str(i)
        folder.mkdir()
        path = write_council(folder, lambda data, s=sources: data.__setitem__("sources", s))
        council, problems = validate_council_file(path)
        assert problems == [], block


async def test_the_documented_signature_example_is_accepted(client, clock):
    [block] = doc_blocks("sh")
    found = re.search(r"printf '%s' '(.*)' > body.json", block)
    stamp = re.search(r"ts=(\d+)", block)
    expected = re.search(r"# ([0-9a-f]{64})", block)
    assert found and stamp and expected
    body = found.group(1).encode()
    assert int(stamp.group(1)) == now_stamp(clock)  # the tests' clock: 2026-11-23 09:00 UTC
    headers = signed(KEYS["govservice"], body, now_stamp(clock))
    assert headers["X-Responder-Signature"] == f"sha256={expected.group(1)}"
    resp = await client.post("/api/intake/govservice", data=body, headers=headers)
    task = await resp.json()
    assert resp.status == 201, task
    assert (task["type"], task["ward"]) == ("fly-tipping", "Eastwood")
