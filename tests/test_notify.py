"""Residents hear back through GOV.UK Notify: sending, through the front door.

Reports go in through ``POST /api/tasks``, work is done through ``tasks.actions.act``,
and a fake Notify on 127.0.0.1 checks every request as Notify does (JWT, body, template,
personalisation) before accepting it. The dispatcher runs as in production.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import jwt
import pytest
from sqlalchemy import select, update
from support import AUTH, EXAMPLES, INTAKE_SECRET

from fakes.notify import CLOCK_SKEW, KEY_NOT_FOUND, FakeNotify, Fault
from responder.app import build_app, notify_key
from responder.commands.act import ActionRequest, act
from responder.commands.create import notify_rows
from responder.config import load_council
from responder.domain.lifecycle import Action
from responder.notify.pacing import NotifyPacer
from responder.notify.personalisation import TaskFacts, personalise, report_date
from responder.notify.sender import NOT_SET
from responder.settings import Settings
from responder.store.outbox import enqueue
from responder.store.schema import contacts, notifications, outbox, task_events
from responder.web import db_key, domain_key

NORTHGATE = (51.9051, 0.8873)
ELSEWHERE = (51.9005, 0.8805)  # far enough from NORTHGATE not to be a duplicate
EMAIL = "resident@example.com"
PHONE = "07700900123"
NEIGHBOUR_EMAIL = "neighbour@example.com"
NEIGHBOUR_PHONE = "07700900456"
TEMPLATES = {  # examples/council.yaml
    ("received", "email"): "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1001",
    ("received", "sms"): "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1002",
    ("completed", "email"): "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1003",
    ("completed", "sms"): "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1004",
}
LONDON = ZoneInfo("Europe/London")


class Service:
    """The app with its dispatcher running, and the fake Notify beside it."""

    def __init__(self, client, notify: FakeNotify) -> None:
        self.client = client
        self.notify = notify

    @property
    def app(self):
        return self.client.app

    @property
    def db(self):
        return self.app[db_key]

    async def report(
        self,
        at=NORTHGATE,
        email: str | None = EMAIL,
        phone: str | None = PHONE,
        updates=("email", "sms"),
        address: str | None = "1 High Street",
    ) -> dict:
        location: dict = {"lat": at[0], "lon": at[1]}
        if address:
            location["address"] = address
        reporter: dict = {"name": "A Resident", "updates": list(updates)}
        if email:
            reporter["email"] = email
        if phone:
            reporter["phone"] = phone
        body = {
            "type": "fly-tipping",
            "description": "Mattress by the bus stop",
            "location": location,
            "reporter": reporter,
        }
        resp = await self.client.post("/api/tasks", json=body, headers=AUTH)
        assert resp.status in (200, 201), await resp.text()  # 200: linked as a duplicate
        return await resp.json()

    async def rows(self, table, *where):
        async with self.db.read() as conn:
            return (await conn.execute(select(table).where(*where))).all()

    async def notify_rows(self, *where):
        return await self.rows(outbox, outbox.c.kind == "notify", *where)

    async def settle(self, within: float = 15.0) -> None:
        """Wait until the outbox has nothing left to deliver (including retries)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not await self.rows(outbox, outbox.c.status == "pending"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"outbox did not settle: {await self.rows(outbox)}")

    async def history(self, task_id: int) -> list[dict]:
        resp = await self.client.get(f"/api/tasks/{task_id}", headers=AUTH)
        assert resp.status == 200
        return (await resp.json())["history"]

    async def complete(self, task: dict, outcome: str = "resolved") -> None:
        domain, officer = self.app[domain_key], task["assignee"]
        now = datetime.now(UTC)
        for action, extra in ((Action.ACCEPT, {}), (Action.COMPLETE, {"outcome": outcome})):
            result = await act(
                self.db, domain, ActionRequest(task["id"], action, officer, None, **extra), now
            )
            assert result.applied, result.notice


@pytest.fixture
async def notify(aiohttp_server) -> FakeNotify:
    fake = FakeNotify()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


def _settings(database_url: str, notify: FakeNotify, **kw) -> Settings:
    values = {
        "database_url": database_url,
        "config_path": EXAMPLES / "council.yaml",
        "intake_keys": {"forms": INTAKE_SECRET},
        "notify_api_key": notify.api_key(),
        "notify_base_url": notify.url,
        **kw,
    }
    return Settings(**values)


@pytest.fixture
def start(notify, database_url, aiohttp_client):  # the app stops before the fake Notify
    async def start(**kw) -> Service:
        client = await aiohttp_client(build_app(_settings(database_url, notify, **kw)))
        return Service(client, notify)

    return start


def _today() -> str:
    now = datetime.now(LONDON)
    return f"{now.day} {now:%B %Y}"


def _notes(history: list[dict]) -> list[str]:
    return [e["note"] for e in history if e["action"] == "notify"]


# -- sending ---------------------------------------------------------------------------------------


async def test_report_received_by_email_and_text(start):
    service = await start()
    task = await service.report()
    sent = await service.notify.wait_for(lambda a: True, count=2)
    [email] = [a for a in sent if a.type == "email"]
    [sms] = [a for a in sent if a.type == "sms"]
    await service.settle()

    assert (email.to, sms.to) == (EMAIL, PHONE)
    assert email.template_id == TEMPLATES["received", "email"]
    assert sms.template_id == TEMPLATES["received", "sms"]
    assert email.key_type == sms.key_type == "normal"
    expected = {
        "reference": task["reference"],
        "type": "Fly-tipping",
        "address": "1 High Street",
        "report_date": _today(),
        "status": "with an officer",
    }
    assert email.personalisation == sms.personalisation == expected
    # Notify's reference is the outbox row's key: no personal data, one per message.
    rows = await service.notify_rows()
    assert {r.idempotency_key for r in rows} == {email.reference, sms.reference}
    report_id = rows[0].payload["report_id"]
    assert email.reference == f"notify:{report_id}:received:email"
    assert all(r.status == "done" for r in rows)
    stored = {n.reference: n for n in await service.rows(notifications)}
    assert stored[email.reference].notify_id == email.id
    assert stored[sms.reference].notify_id == sms.id
    assert {n.status for n in stored.values()} == {"sending"}
    assert sorted(_notes(await service.history(task["id"]))) == [
        "Email 'received' sent to the reporter",
        "Text message 'received' sent to the reporter",
    ]
    assert service.notify.duplicates() == []


async def test_only_the_channels_asked_for(start):
    service = await start()
    await service.report(updates=("sms",))
    await service.notify.wait_for(lambda a: True)
    await service.settle()
    assert [a.type for a in service.notify.accepted] == ["sms"]


async def test_no_address_given_says_the_location(start):
    service = await start()
    await service.report(address=None, updates=("email",))
    [sent] = await service.notify.wait_for(lambda a: True)
    assert sent.personalisation["address"] == "the location you gave"


async def test_completion_tells_the_reporter_and_linked_duplicates(start):
    service = await start()
    task = await service.report()
    linked = await service.report(email=NEIGHBOUR_EMAIL, phone=NEIGHBOUR_PHONE)
    assert linked["id"] == task["id"]  # the second report joined the first as a duplicate
    await service.notify.wait_for(lambda a: a.template_id.endswith(("1001", "1002")), count=4)
    await service.settle()

    await service.complete(task, "resolved")
    done = await service.notify.wait_for(
        lambda a: a.template_id.endswith(("1003", "1004")), count=4
    )
    await service.settle()
    assert sorted((a.type, a.to) for a in done) == sorted(
        [("email", EMAIL), ("email", NEIGHBOUR_EMAIL), ("sms", NEIGHBOUR_PHONE), ("sms", PHONE)]
    )
    links = {}
    for sent in done:
        assert sent.template_id == TEMPLATES["completed", sent.type]
        # Each report's own signed link to rate the work (tests/test_feedback.py follows one).
        links[sent.to] = sent.personalisation.pop("feedback_link")
        assert links[sent.to].startswith("https://responder.sample-borough.gov.uk/feedback/")
        assert sent.personalisation == {
            "reference": task["reference"],
            "type": "Fly-tipping",
            "address": "1 High Street",
            "report_date": _today(),
            "status": "completed",
            "outcome": "dealt with",
        }
    assert links[EMAIL] != links[NEIGHBOUR_EMAIL]  # one per report
    assert len(service.notify.accepted) == 8
    assert service.notify.duplicates() == []
    notes = _notes(await service.history(task["id"]))
    assert "Email 'completed' sent to the reporter" in notes
    assert "Email 'completed' sent to the reporter of a linked report" in notes
    assert "Text message 'completed' sent to the reporter of a linked report" in notes


async def test_a_notify_test_key_works_like_a_live_one(start, notify):
    service = await start(notify_api_key=notify.api_key("test"))
    await service.report()
    sent = await service.notify.wait_for(lambda a: True, count=2)
    await service.settle()
    assert {a.key_type for a in sent} == {"test"}
    assert {n.status for n in await service.rows(notifications)} == {"sending"}


# -- nothing fails silently ------------------------------------------------------------------------


async def test_without_an_api_key_messages_are_recorded_as_not_sent(start):
    service = await start(notify_api_key="")
    task = await service.report()
    await service.settle()
    assert service.notify.arrivals == []
    rows = await service.notify_rows()
    assert len(rows) == 2
    assert {(r.status, r.last_error) for r in rows} == {("parked", NOT_SET)}
    stored = await service.rows(notifications)
    assert {(n.status, n.detail, n.notify_id) for n in stored} == {("not-sent", NOT_SET, None)}
    assert sorted(_notes(await service.history(task["id"]))) == [
        "Email 'received' to the reporter not sent: NOTIFY_API_KEY is not set",
        "Text message 'received' to the reporter not sent: NOTIFY_API_KEY is not set",
    ]


async def test_notify_refusal_400_is_parked_with_its_message(start, notify):
    template = notify.templates[TEMPLATES["received", "email"]]
    template.body += " Your officer is ((officer_name))."
    service = await start()
    task = await service.report()
    await service.settle()
    [email_row] = await service.notify_rows(outbox.c.idempotency_key.like("%:email"))
    [sms_row] = await service.notify_rows(outbox.c.idempotency_key.like("%:sms"))
    assert email_row.status == "parked"
    assert email_row.last_error == (
        "GOV.UK Notify answered 400: Missing personalisation: officer_name"
    )
    assert sms_row.status == "done"  # the text message's template was fine
    [stored] = await service.rows(notifications, notifications.c.status == "not-sent")
    assert stored.reference == email_row.idempotency_key
    assert "Missing personalisation: officer_name" in stored.detail
    assert (
        "Email 'received' to the reporter not sent: "
        "GOV.UK Notify answered 400: Missing personalisation: officer_name"
    ) in _notes(await service.history(task["id"]))


async def test_unknown_template_is_parked(start, notify):
    del notify.templates[TEMPLATES["received", "sms"]]
    service = await start()
    await service.report()
    await service.settle()
    [sms_row] = await service.notify_rows(outbox.c.idempotency_key.like("%:sms"))
    assert sms_row.status == "parked"
    assert sms_row.last_error == "GOV.UK Notify answered 400: Template not found"


@pytest.mark.parametrize("whose", ["wrong secret", "other service"])
async def test_a_bad_key_is_refused_403_and_parked(start, notify, whose):
    service_id = notify.service_id if whose == "wrong secret" else str(uuid.uuid4())
    service = await start(notify_api_key=f"responder-live-{service_id}-{uuid.uuid4()}")
    await service.report()
    await service.settle()
    rows = await service.notify_rows()
    message = KEY_NOT_FOUND if whose == "wrong secret" else "Invalid token: service not found"
    assert {(r.status, r.last_error) for r in rows} == {
        ("parked", f"GOV.UK Notify answered 403: {message}")
    }
    assert notify.accepted == []
    assert {n.status for n in await service.rows(notifications)} == {"not-sent"}


async def test_missing_personalisation_is_parked_not_sent_half_filled(start):
    service = await start()
    task = await service.report(updates=("email",))
    await service.notify.wait_for(lambda a: True)
    await service.settle()
    [row] = await service.notify_rows()
    report_id = row.payload["report_id"]
    council = service.app[domain_key].council

    # A 'completed' message for a task with no outcome (it was never completed).
    def owe(conn):
        enqueue(
            conn,
            notify_rows(
                council, task["id"], report_id, ["email"], True, False, "completed", row.created_at
            ),
        )

    await service.db.run(owe)
    await service.settle()
    [parked] = await service.notify_rows(outbox.c.status == "parked")
    assert parked.last_error == "missing personalisation: outcome"
    assert len(service.notify.accepted) == 1  # only 'received'
    assert "Email 'completed' to the reporter not sent: missing personalisation: outcome" in (
        _notes(await service.history(task["id"]))
    )


async def test_erased_contact_is_parked(start):
    service = await start()
    task = await service.report(updates=("email",))
    await service.notify.wait_for(lambda a: True)
    await service.settle()
    [row] = await service.notify_rows()
    report_id = row.payload["report_id"]
    council = service.app[domain_key].council
    await service.db.run(
        lambda conn: conn.execute(
            update(contacts)
            .where(contacts.c.report_id == report_id)
            .values(email=None, phone=None, erased_at=datetime.now(UTC))
        )
    )
    await service.complete(task)  # owes nothing now: the contact is erased
    await service.settle()
    assert len(await service.notify_rows()) == 1

    # A message owed before the erasure finds the details gone.
    def owe(conn):
        owed = notify_rows(
            council, task["id"], report_id, ["email"], True, False, "completed", row.created_at
        )
        enqueue(conn, owed)

    await service.db.run(owe)
    await service.settle()
    [parked] = await service.notify_rows(outbox.c.status == "parked")
    assert parked.last_error == "contact details erased"
    assert len(service.notify.accepted) == 1


# -- Notify's limits and outages -------------------------------------------------------------------


async def test_429_retry_after_is_honoured(start, notify):
    notify.fail(429, retry_after=2)
    service = await start()
    await service.report()
    [limited] = await notify.wait_for(lambda a: True)  # the other message got through
    # Reports arriving during the pause wait for it to end.
    await service.report(at=ELSEWHERE, updates=("email",))
    sent = await notify.wait_for(lambda a: True, count=3)
    await service.settle()
    answered_at, until = notify._blocked
    assert until - answered_at == pytest.approx(2)
    assert [a.status for a in notify.arrivals].count(429) == 1
    assert notify.retry_after_violations == 0
    later = [a for a in sent if a is not limited]
    assert all(a.at >= until for a in later)
    assert notify.duplicates() == []
    assert {r.status for r in await service.notify_rows()} == {"done"}
    assert service.app[notify_key].stats["rate_limited"] == 1


async def test_server_errors_are_retried_then_delivered(start, notify):
    notify.fail(500, 503)
    service = await start()
    await service.report(updates=("email",))
    [sent] = await notify.wait_for(lambda a: True, within=15)
    await service.settle()
    [row] = await service.notify_rows()
    assert (row.status, row.attempts) == ("done", 3)
    assert [a.status for a in notify.arrivals if a.method == "POST"] == [500, 503, 201]
    [stored] = await service.rows(notifications)
    assert (stored.status, stored.notify_id) == ("sending", sent.id)


async def test_a_lost_answer_is_not_sent_twice(start, notify):
    """Notify accepted the message but its answer never came back: the retry finds it by
    reference and adopts it instead of sending it again."""
    notify.failures.append(Fault(502, lost=True))
    service = await start()
    task = await service.report(updates=("email",))
    [sent] = await notify.wait_for(lambda a: True)
    await service.settle()
    await asyncio.sleep(0.2)
    assert len(notify.accepted) == 1 and notify.duplicates() == []
    [row] = await service.notify_rows()
    assert (row.status, row.attempts) == ("done", 2)
    assert [(a.method, a.status) for a in notify.arrivals] == [("POST", 502), ("GET", 200)]
    [stored] = await service.rows(notifications)
    assert stored.notify_id == sent.id
    assert _notes(await service.history(task["id"])) == ["Email 'received' sent to the reporter"]


async def test_pacing_holds_the_configured_rate(start):
    service = await start(notify_per_minute=60)  # one a second
    await service.report()
    await service.report(at=ELSEWHERE)
    sent = await service.notify.wait_for(lambda a: True, count=4, within=15)
    times = sorted(a.at for a in sent)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.95, gaps


# -- personal data and the event loop --------------------------------------------------------------


async def test_contact_details_never_logged_nor_in_the_outbox(start, notify, caplog):
    caplog.set_level(logging.DEBUG)
    notify.templates[TEMPLATES["completed", "sms"]].body += " ((officer_name))"  # a 400
    notify.fail(503)  # and a retry
    service = await start()
    task = await service.report()
    await service.report(email=NEIGHBOUR_EMAIL, phone=NEIGHBOUR_PHONE)
    await notify.wait_for(lambda a: True, count=4, within=15)
    await service.settle()
    await service.complete(task)
    await service.settle()
    assert len(notify.accepted) == 6  # the two 'completed' texts were refused

    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    for secret in (EMAIL, PHONE, NEIGHBOUR_EMAIL, NEIGHBOUR_PHONE):
        assert secret not in logged
    for row in await service.rows(outbox):
        payload = json.dumps(row.payload)
        assert "@" not in payload and "07700" not in payload
        assert all(s not in (row.last_error or "") for s in (EMAIL, PHONE))
    for event in await service.rows(task_events):
        text = f"{event.note} {json.dumps(event.data)}"
        assert all(s not in text for s in (EMAIL, PHONE, NEIGHBOUR_EMAIL, NEIGHBOUR_PHONE))

    # The client ran in the sender's worker threads, never on the event loop's.
    client_threads = {
        r.threadName for r in caplog.records if r.name.startswith("notifications_python_client")
    }
    assert client_threads and all(name.startswith("notify") for name in client_threads)
    assert service.notify.duplicates() == []


async def test_the_event_loop_stays_responsive_while_sending(start, notify):
    notify.latency = 0.2  # each call holds a worker thread for 200 ms, never the loop
    service = await start()
    lag = service.app[notify_key].loop_lag
    # The test process's heap grows over the suite, and a full garbage collection of it
    # stalls the loop for 100+ ms whatever the loop is doing: not what is measured here.
    gc.collect()
    gc.freeze()
    try:
        lag.reset()
        for i in range(5):
            await service.report(at=(ELSEWHERE[0] + i * 0.002, ELSEWHERE[1]))
        await notify.wait_for(lambda a: True, count=10, within=15)
    finally:
        gc.unfreeze()
    assert lag.count > 3
    assert lag.max_lag < 0.1, lag.max_lag


# -- the fake Notify checks what Notify checks -----------------------------------------------------


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the HS512 case
async def test_fake_notify_checks_the_jwt_as_notify_does(aiohttp_client, notify):
    client = await aiohttp_client(notify.app())
    key = next(k for k in notify.keys if k.key_type == "normal")
    body = {
        "email_address": EMAIL,
        "template_id": TEMPLATES["received", "email"],
        "personalisation": {
            "reference": "RSP-1001",
            "type": "Fly-tipping",
            "address": "1 High Street",
            "report_date": "23 November 2026",
        },
        "reference": "notify:1:received:email",
    }

    def token(secret=key.secret, iss=notify.service_id, iat=None, alg="HS256") -> dict:
        claims = {"iss": iss, "iat": int(time.time()) if iat is None else iat}
        return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm=alg)}"}

    async def post(headers: dict, payload: dict = body) -> tuple[int, str | None]:
        resp = await client.post("/v2/notifications/email", json=payload, headers=headers)
        answer = await resp.json()
        return resp.status, (answer.get("errors") or [{}])[0].get("message")

    assert await post({}) == (401, "Unauthorized: authentication token must be provided")
    assert (await post(token(secret=str(uuid.uuid4()))))[0:2] == (403, KEY_NOT_FOUND)
    assert await post(token(iat=int(time.time()) - 60)) == (403, CLOCK_SKEW)
    assert await post(token(iat=int(time.time()) + 60)) == (403, CLOCK_SKEW)
    assert await post(token(iss=str(uuid.uuid4()))) == (403, "Invalid token: service not found")
    assert await post(token(alg="HS512")) == (
        403,
        "Invalid token: algorithm used is not HS256",
    )
    short = {**body, "personalisation": {"reference": "RSP-1001"}}
    assert await post(token(), short) == (
        400,
        "Missing personalisation: type, address, report_date",
    )
    assert await post(token(), {**body, "template_id": str(uuid.uuid4())}) == (
        400,
        "Template not found",
    )
    assert await post(token(), {**body, "email_address": "not an address"}) == (
        400,
        "email_address Not a valid email address",
    )
    assert await post(token(), {**body, "reference": 7}) == (
        400,
        "reference 7 is not of type string, null",
    )
    assert notify.accepted == []
    assert await post(token()) == (201, None)
    [accepted] = notify.accepted
    assert accepted.reference == "notify:1:received:email" and accepted.key_type == "normal"


async def test_fake_notify_rate_limit_is_a_token_bucket(aiohttp_client):
    notify = FakeNotify(rate_per_minute=60)  # bucket of 21, refilling at 1 a second
    client = await aiohttp_client(notify.app())
    key = notify.keys[0]
    statuses = []
    for _ in range(22):
        claims = {"iss": notify.service_id, "iat": int(time.time())}
        headers = {"Authorization": f"Bearer {jwt.encode(claims, key.secret)}"}
        body = {
            "phone_number": PHONE,
            "template_id": TEMPLATES["received", "sms"],
            "personalisation": {
                "reference": "x",
                "type": "y",
                "address": "z",
                "report_date": "d",
            },
        }
        resp = await client.post("/v2/notifications/sms", json=body, headers=headers)
        statuses.append(resp.status)
    assert statuses.count(201) == 21 and statuses[-1] == 429


# -- pieces ----------------------------------------------------------------------------------------


def test_report_date_is_in_the_councils_timezone():
    council = load_council(EXAMPLES / "council.yaml")
    winter = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    summer = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)  # already 1 July in London
    assert report_date(winter, council) == "23 November 2026"
    assert report_date(summer, council) == "1 July 2026"


def test_personalisation_registry():
    council = load_council(EXAMPLES / "council.yaml")
    facts = TaskFacts(41, "fly-tipping", None, "completed", None, datetime.now(UTC))
    received = personalise(council, "received", facts)
    assert received.missing == ()
    assert received.values["reference"] == "RSP-1041"
    assert received.values["address"] == "the location you gave"
    completed = personalise(council, "completed", facts)
    assert completed.problem == "missing personalisation: outcome"
    no_date = TaskFacts(41, "fly-tipping", "1 High St", "completed", "referred", None)
    assert personalise(council, "completed", no_date).missing == ("report_date",)


async def test_pacer_spreads_sends_and_pauses():
    now = [0.0]
    pacer = NotifyPacer(120, clock=lambda: now[0])  # 2 a second, bursts of 2
    assert await pacer.acquire() == 0.0
    assert await pacer.acquire() == 0.0
    assert pacer.wait_needed(now[0]) == pytest.approx(0.5)
    now[0] = 0.5
    assert await pacer.acquire() == 0.0
    pacer.pause(10)
    assert await pacer.acquire(max_wait=5) == pytest.approx(10)
    now[0] = 10.6
    assert await pacer.acquire(max_wait=5) == 0.0
    # The hard cap: never more than per_minute in a minute (widened by the margin).
    capped = NotifyPacer(3, clock=lambda: now[0])
    for _ in range(3):
        capped._next = 0.0  # defeat the spreading, to reach the window
        assert await capped.acquire() == 0.0
    capped._next = 0.0
    assert capped.wait_needed(now[0]) == pytest.approx(60.05)
