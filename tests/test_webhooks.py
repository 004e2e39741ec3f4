"""Progress out (issue 17): each status change posted to the council file's subscribers as a
signed webhook, through the outbox.

Through the real app on SQLite and PostgreSQL, to fake subscribers that are HTTP servers on
127.0.0.1 (fakes/subscriber.py) checking the signature as docs/webhooks.md tells a receiver
to. The clock is the test's: a retry's wait passes when the test moves the clock on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from support import AUTH, EXAMPLES, INTAKE_SECRET, ROOT, write_council

from fakes.subscriber import Answer, FakeSubscriber
from responder.app import StartupError, build_app, dispatcher_key
from responder.cli import main
from responder.commands.act import ActionRequest, act
from responder.commands.photos import add_photos
from responder.config import load_council
from responder.domain.lifecycle import Action, Status
from responder.domain.photos import NewPhoto
from responder.domain.records import TaskRecord
from responder.jobs.dispatcher import Dispatcher, Done, Retry
from responder.queries.webhooks import SourceRef, WebhookEventFacts, WebhookFacts
from responder.settings import Settings
from responder.store.schema import outbox
from responder.web import clock_key, db_key, domain_key
from responder.webhooks.body import webhook_body
from responder.webhooks.delivery import WebhookSender, retry_after, secrets_problem
from responder.webhooks.signing import headers

CRM_SECRET = "crm-secret-0123456789"
FORMS_SECRET = "forms-secret-9876543210"

# What the reporter and the officer wrote: none of it may leave in a webhook.
PERSONAL = (
    "Jane Resident",
    "jane@example.com",
    "07700900123",
    "14 Acacia Avenue",
    "next to my house",
    "gate code 4321",
)
REPORT = {
    "type": "litter",
    "description": "Bags of rubbish next to my house",
    "location": {"lat": 51.9051, "lon": 0.8873, "address": "14 Acacia Avenue"},
    "reporter": {
        "name": "Jane Resident",
        "email": "jane@example.com",
        "phone": "07700900123",
        "updates": ["email", "sms"],
    },
    "source": "govservice",
    "external_id": "CAS-000123",
}


# -- the service, its subscribers, and moving time on ------------------------------------------


async def subscriber(aiohttp_server, clock, secret: str) -> FakeSubscriber:
    fake = FakeSubscriber(secret, now=clock)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/hooks/responder"))
    return fake


@pytest.fixture
async def crm(aiohttp_server, clock) -> FakeSubscriber:
    return await subscriber(aiohttp_server, clock, CRM_SECRET)


@pytest.fixture
async def forms(aiohttp_server, clock) -> FakeSubscriber:
    return await subscriber(aiohttp_server, clock, FORMS_SECRET)


def council_with(tmp_path, subscribers: list[dict[str, Any]]):
    def change(data: dict) -> None:
        data["subscribers"] = subscribers

    return write_council(tmp_path, change)


async def service(
    aiohttp_client,
    tmp_path,
    database_url: str,
    clock,
    subscribers: list[dict[str, Any]],
    secrets: dict[str, str],
    **settings: Any,
):
    values: dict[str, Any] = {
        "database_url": database_url,
        "config_path": council_with(tmp_path, subscribers),
        "intake_keys": {"forms": INTAKE_SECRET},
        "webhook_secrets": secrets,
        "scheduler": False,
        **settings,
    }
    return await aiohttp_client(build_app(Settings(**values), clock=clock))


async def report(client, **changes: Any) -> dict[str, Any]:
    resp = await client.post("/api/tasks", json=REPORT | changes, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def do(client, task_id: int, action: Action, person: str | None, **inputs: Any):
    """An officer's card click, a second after the last change (each step its own time)."""
    clock = client.app[clock_key]
    clock.now += timedelta(seconds=1)
    request = ActionRequest(task_id, action, person, None, **inputs)
    result = await act(client.app[db_key], client.app[domain_key], request, clock.now)
    assert result.applied, result.notice
    return clock.now


async def settle(
    client,
    until: Callable[[], Any],
    step: timedelta = timedelta(seconds=10),
    within: float = 20.0,
) -> None:
    """Let the dispatcher work, moving the clock on by ``step`` whenever no webhook is in
    flight (so retries come due; never a lease's length, so nothing in flight is claimed
    twice), until ``until()`` (a value or an awaitable) holds."""
    dispatcher: Dispatcher = client.app[dispatcher_key]
    clock = client.app[clock_key]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await _holds(until):
        assert loop.time() < deadline, "timed out"
        if dispatcher.in_flight()["webhook"] == 0:
            clock.now += step
        dispatcher.wake()
        await asyncio.sleep(0.02)


async def _holds(condition: Callable[[], Any]) -> bool:
    value = condition()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)


async def webhook_rows(client) -> list[Any]:
    async with client.app[db_key].read() as conn:
        query = select(outbox).where(outbox.c.kind == "webhook.event").order_by(outbox.c.id)
        return list((await conn.execute(query)).all())


async def settle_rows(client, within: float = 20.0) -> list[Any]:
    """Until no webhook row is pending (each done or parked); the rows."""

    async def settled() -> bool:
        return all(r.status != "pending" for r in await webhook_rows(client))

    await settle(client, settled, within=within)
    return await webhook_rows(client)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


# -- a task's progress, delivered --------------------------------------------------------------


async def test_each_change_reaches_the_subscriber_once_in_order_signed_and_impersonal(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
    )
    task = await report(client)
    assert task["assignee"] == "bob"
    await do(client, task["id"], Action.ACCEPT, "bob")
    await do(client, task["id"], Action.START, "bob")
    await do(client, task["id"], Action.UPDATE, "bob", note="Spoke to Jane, gate code 4321")
    completed_at = await do(client, task["id"], Action.COMPLETE, "bob", outcome="resolved")

    await settle(client, lambda: len(crm.events) == 5)
    await settle_rows(client)
    assert types(crm.of_task(task["id"])) == [
        "task.created",
        "task.accepted",
        "task.started",
        "task.updated",
        "task.completed",
    ]
    assert crm.problems() == [] and crm.repeats == 0 and len(crm.requests) == 5
    assert len(set(crm.ids())) == 5
    for request in crm.requests:
        assert request.path == "/hooks/responder"
        assert request.headers["User-Agent"].startswith("Responder/")
        assert int(request.headers["Responder-Timestamp"]) <= int(clock.now.timestamp())
        text = request.raw.decode()
        leaked = [word for word in PERSONAL if word in text]
        assert not leaked, f"personal data in a webhook: {leaked}"
        assert "description" not in request.body["task"]
        assert json.dumps(request.body, separators=(",", ":")).encode() == request.raw

    created, *_, completed = crm.events
    assert created["change"] == {
        "action": "created",
        "from_status": None,
        "to_status": "assigned",
        "actor": "intake:forms",
    }
    assert created["task"]["external_id"] == "CAS-000123"
    assert created["task"]["reports"] == [{"source": "govservice", "external_id": "CAS-000123"}]
    assert completed["occurred_at"] == completed_at.isoformat().replace("+00:00", "Z")
    assert completed["change"] == {
        "action": "complete",
        "from_status": "in_progress",
        "to_status": "completed",
        "actor": "bob",
        "outcome": "resolved",
    }
    assert completed["task"] | {"due_at": None, "created_at": None} == {
        "id": task["id"],
        "reference": task["reference"],
        "type": "litter",
        "status": "completed",
        "priority": "normal",
        "ward": "Northgate",
        "team": "sc-north",
        "assignee": "bob",
        "due_at": None,
        "created_at": None,
        "closed_at": completed["occurred_at"],
        "outcome": "resolved",
        "source": "govservice",
        "external_id": "CAS-000123",
        "reports": [{"source": "govservice", "external_id": "CAS-000123"}],
        "report_count": 1,
        "version": 5,
    }
    assert all(r.status == "done" for r in await webhook_rows(client))


# -- when the subscriber is down, busy or refusing ---------------------------------------------


async def test_a_failing_subscriber_gets_it_again_and_keeps_it_once(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
    )
    crm.answer(Answer(500, body="database is down"), Answer(503))
    task = await report(client)
    [row] = await settle_rows(client)
    assert row.status == "done" and row.attempts == 3
    assert [r.answered for r in crm.requests] == [500, 503, 200]
    assert types(crm.events) == ["task.created"] and crm.repeats == 0
    # The same event each time: the same id, whatever the retry.
    assert {r.event_id for r in crm.requests} == {crm.events[0]["id"]}
    assert crm.events[0]["task"]["id"] == task["id"]


async def test_429_is_retried_after_its_retry_after_without_using_up_a_try(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
    )
    crm.answer(Answer(429, retry_after="120"))
    await report(client)
    answered_at = clock.now

    async def waiting():
        rows = await webhook_rows(client)
        return rows and rows[0].last_error is not None

    await settle(client, waiting, step=timedelta(0))
    [row] = await webhook_rows(client)
    assert row.status == "pending" and row.attempts == 0  # pacing, not a failure
    assert row.next_attempt_at == answered_at + timedelta(seconds=120)
    assert row.last_error == "crm answered 429 Too Many Requests"

    clock.now = answered_at + timedelta(seconds=119)
    client.app[dispatcher_key].wake()
    await asyncio.sleep(0.3)
    assert len(crm.requests) == 1, "sent again before its Retry-After"
    clock.now = answered_at + timedelta(seconds=120)
    await settle(client, lambda: len(crm.events) == 1, step=timedelta(0))
    assert len(crm.requests) == 2


def test_retry_after_in_seconds_or_as_a_date_from_a_second_to_an_hour(clock):
    assert retry_after("30", clock.now) == 30
    assert retry_after("Mon, 23 Nov 2026 09:02:00 GMT", clock.now) == 120
    assert retry_after("86400", clock.now) == 3600
    assert retry_after("0", clock.now) == 1  # never a tight loop
    # Not delta-seconds (RFC 9110): unreadable, so the dispatcher's own backoff applies.
    assert retry_after("-5", clock.now) is None
    assert retry_after("soon", clock.now) is None and retry_after(None, clock.now) is None


async def test_a_subscriber_that_keeps_refusing_is_parked_and_the_others_still_get_theirs(
    aiohttp_client, tmp_path, database_url, clock, crm, forms
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}, {"name": "forms", "url": forms.url}],
        {"crm": CRM_SECRET, "forms": FORMS_SECRET},
    )
    crm.default = Answer(410, body="no such hook\n<html>" + "x" * 1000)
    task = await report(client)
    await do(client, task["id"], Action.ACCEPT, "bob")
    rows = await settle_rows(client)

    assert types(forms.events) == ["task.created", "task.accepted"] and forms.repeats == 0
    parked = [r for r in rows if r.payload["subscriber"] == "crm"]
    assert [r.status for r in parked] == ["parked", "parked"]
    for row in parked:
        assert row.attempts == 5
        assert row.last_error.startswith("refused 5 times: crm answered 410 Gone: 'no such hook")
        assert len(row.last_error) < 200  # a short excerpt, never the whole answer
    assert len(crm.requests) == 10 and crm.events == []


async def test_a_subscriber_that_is_down_does_not_hold_back_the_others(
    aiohttp_client, tmp_path, database_url, clock, crm, forms
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}, {"name": "forms", "url": forms.url}],
        {"crm": CRM_SECRET, "forms": FORMS_SECRET},
    )
    crm.default = Answer(503)  # down for the day
    task = await report(client)
    await do(client, task["id"], Action.ACCEPT, "bob")
    await settle(client, lambda: len(forms.events) == 2, within=3.0)


async def test_a_redirect_is_not_followed(aiohttp_client, tmp_path, database_url, clock, crm):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
    )
    crm.default = Answer(308, location="http://127.0.0.1:9/elsewhere")
    await report(client)
    [row] = await settle_rows(client)
    assert row.status == "parked"
    assert "answered 308 Permanent Redirect to 'http://127.0.0.1:9/elsewhere'" in row.last_error
    assert "redirects are not followed" in row.last_error
    assert {r.path for r in crm.requests} == {"/hooks/responder"}


async def test_an_unreachable_subscriber_is_retried(
    aiohttp_client, tmp_path, database_url, clock, unused_tcp_port
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": f"http://127.0.0.1:{unused_tcp_port}/hook"}],
        {"crm": CRM_SECRET},
    )
    await report(client)

    async def tried_twice():
        rows = await webhook_rows(client)
        return rows[0].attempts >= 2 and rows[0].last_error is not None

    await settle(client, tried_twice)
    [row] = await webhook_rows(client)
    assert row.status == "pending"
    assert row.last_error.startswith("crm: cannot connect")


# -- several subscribers, and what each asked for ----------------------------------------------


async def test_two_subscribers_each_get_each_event_once_signed_with_their_own_secret(
    aiohttp_client, tmp_path, database_url, clock, crm, forms
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}, {"name": "forms", "url": forms.url}],
        {"crm": CRM_SECRET, "forms": FORMS_SECRET},
    )
    task = await report(client)
    await do(client, task["id"], Action.ACCEPT, "bob")
    await do(client, task["id"], Action.CANCEL, None, reason="Cleared by the landowner")
    rows = await settle_rows(client)
    assert len(rows) == 6 and {r.status for r in rows} == {"done"}
    expected = ["task.created", "task.accepted", "task.cancelled"]
    assert types(crm.events) == types(forms.events) == expected
    assert crm.ids() == forms.ids()  # one event, one id, whoever hears of it
    assert crm.problems() == forms.problems() == [] and crm.repeats == forms.repeats == 0
    signatures = {r.headers["Responder-Signature"] for r in crm.requests + forms.requests}
    assert len(signatures) == 6
    assert "Cleared by the landowner" not in json.dumps(crm.events)


async def test_a_hand_back_and_its_reassignment_arrive_in_the_order_they_happened(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
    )
    crm.default = Answer(200, delay=0.05)  # one at a time would hide a race; these overlap
    task = await report(client)
    await do(client, task["id"], Action.ACCEPT, "bob")
    await do(client, task["id"], Action.HANDBACK, "bob", reason="Needs the van, at number 14")
    await do(client, task["id"], Action.PRIORITY, "alice", priority="urgent")
    await settle_rows(client)
    assert types(crm.events) == [
        "task.created",
        "task.accepted",
        "task.handed_back",
        "task.assigned",
        "task.priority_changed",
    ]
    handback, assign, priority = (e["change"] for e in crm.events[2:])
    assert handback == {
        "action": "handback",
        "from_status": "accepted",
        "to_status": "unassigned",
        "actor": "bob",
        "assignee": {"from": "bob", "to": None},
    }
    assert assign == {
        "action": "assign",
        "from_status": "unassigned",
        "to_status": "assigned",
        "actor": "system",
        "assignee": {"from": None, "to": "carol"},
    }
    assert priority["priority"] == {"from": "normal", "to": "urgent"}
    assert priority["actor"] == "alice"
    assert "number 14" not in json.dumps(crm.events)
    ids = [int(i) for i in crm.ids()]
    assert ids == sorted(ids)  # a task's event ids grow in the order things happened


async def test_a_subscriber_gets_only_the_events_it_asks_for(
    aiohttp_client, tmp_path, database_url, clock, crm, forms
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [
            {"name": "crm", "url": crm.url},
            {"name": "forms", "url": forms.url, "events": ["complete", "cancel"]},
        ],
        {"crm": CRM_SECRET, "forms": FORMS_SECRET},
    )
    task = await report(client)
    await do(client, task["id"], Action.ACCEPT, "bob")
    await do(client, task["id"], Action.START, "bob")
    await do(client, task["id"], Action.COMPLETE, "bob", outcome="resolved")
    rows = await settle_rows(client)
    assert types(forms.events) == ["task.completed"]
    assert len(crm.events) == 4
    owed_forms = [r for r in rows if r.payload["subscriber"] == "forms"]
    assert len(owed_forms) == 1  # nothing else was even owed to it


async def test_an_officers_photo_reaches_only_the_subscribers_that_ask_for_photos(
    aiohttp_client, tmp_path, database_url, clock, crm, forms
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [
            {"name": "crm", "url": crm.url},
            {"name": "forms", "url": forms.url, "events": ["complete", "photo"]},
        ],
        {"crm": CRM_SECRET, "forms": FORMS_SECRET},
    )
    task = await report(client)
    clock.now += timedelta(seconds=1)
    jpeg = NewPhoto("image/jpeg", b"\xff\xd8\xff\xe0" + b"\0" * 64)
    app = client.app
    added = await add_photos(
        app[db_key], app[domain_key], "bob", task["id"], [jpeg], "https://r.example", clock.now
    )
    assert added.added == 1
    await settle_rows(client)
    assert types(forms.events) == ["task.photo_added"]
    assert forms.events[0]["change"] == {
        "action": "photo",
        "from_status": "assigned",
        "to_status": "assigned",
        "actor": "bob",
    }
    assert "/api/photos/" not in json.dumps(forms.events)  # the photo's own link stays here
    assert types(crm.events) == ["task.created"]  # not a default event


async def test_a_duplicate_report_names_every_source_and_its_id(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
    )
    task = await report(client)
    clock.now += timedelta(seconds=1)
    again = REPORT | {"source": "fixmystreet", "external_id": "4242"}
    resp = await client.post("/api/tasks", json=again, headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["duplicate_of"] == task["id"]
    await settle_rows(client)
    created, linked = crm.events
    assert linked["type"] == "task.duplicate_linked"
    assert linked["task"]["external_id"] == "CAS-000123"
    assert linked["task"]["reports"] == [
        {"source": "govservice", "external_id": "CAS-000123"},
        {"source": "fixmystreet", "external_id": "4242"},
    ]
    assert linked["change"]["from_status"] == linked["change"]["to_status"] == "assigned"


# -- at least once -----------------------------------------------------------------------------


async def test_a_crash_mid_send_sends_it_again_with_the_same_event_id(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
        background=False,  # this test is the dispatcher
    )
    await report(client)
    app = client.app
    settings = Settings(
        database_url=database_url, config_path=tmp_path, webhook_secrets={"crm": CRM_SECRET}
    )
    sender = WebhookSender(app[db_key], app[domain_key], settings, clock)
    try:
        first = Dispatcher(app[db_key], sender.handlers(), clock)
        [message] = await first.claim({"webhook": 10})
        await sender.deliver(message)  # the subscriber has it ...
        # ... and the process dies before the row is marked done.

        clock.now += timedelta(seconds=first.lease_seconds + 1)  # the lease runs out
        second = Dispatcher(app[db_key], sender.handlers(), clock)
        [again] = await second.claim({"webhook": 10})
        assert again.id == message.id and again.attempts == 2
        await second.record(again, await sender.deliver(again))
    finally:
        await sender.close()

    [row] = await webhook_rows(client)
    assert row.status == "done"
    first_sent, second_sent = crm.requests
    assert first_sent.event_id == second_sent.event_id == crm.events[0]["id"]
    assert first_sent.body["id"] == second_sent.body["id"]
    assert len(crm.events) == 1 and crm.repeats == 1  # the receiver kept it once


async def test_no_answer_in_time_is_retried_and_the_receiver_dedupes(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    client = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        {"crm": CRM_SECRET},
        background=False,
    )
    await report(client)
    crm.answer(Answer(200, delay=2.0))  # takes it, then answers too late
    app = client.app
    sender = WebhookSender(
        app[db_key],
        app[domain_key],
        Settings(webhook_secrets={"crm": CRM_SECRET}),
        clock,
        timeout=0.3,
    )
    try:
        dispatcher = Dispatcher(app[db_key], sender.handlers(), clock)
        [message] = await dispatcher.claim({"webhook": 10})
        outcome = await sender.deliver(message)
        assert outcome == Retry("crm: no answer within 0.3 s")
        await dispatcher.record(message, outcome)
        clock.now += timedelta(seconds=5)
        [again] = await dispatcher.claim({"webhook": 10})
        assert await sender.deliver(again) == Done()
    finally:
        await sender.close()
    assert len(crm.requests) == 2 and len(crm.events) == 1 and crm.repeats == 1


# -- secrets, and subscribers that went away ---------------------------------------------------


async def test_without_a_secret_nothing_is_sent_unsigned(
    aiohttp_client, tmp_path, database_url, clock, crm, forms, caplog
):
    subscribers = [{"name": "crm", "url": crm.url}, {"name": "forms", "url": forms.url}]
    council = load_council(council_with(tmp_path, subscribers))
    production = Settings(webhook_secrets={"forms": FORMS_SECRET}, environment="production")
    assert secrets_problem(council, production) == (
        "RESPONDER_WEBHOOK_SECRETS has no secret for subscriber 'crm' of the council file "
        "(name:secret, at least 8 characters): their webhooks could not be signed"
    )
    development = Settings(webhook_secrets={"forms": FORMS_SECRET, "crn": CRM_SECRET})
    with caplog.at_level(logging.WARNING, "responder.webhooks"):
        assert secrets_problem(council, development) is None
    assert "RESPONDER_WEBHOOK_SECRETS names 'crn', not a subscriber" in caplog.text
    assert "no secret for subscriber 'crm'" in caplog.text
    assert CRM_SECRET not in caplog.text
    # ...and the service itself will not start like that in production.
    with pytest.raises(StartupError, match="no secret for subscriber 'crm'"):
        build_app(
            Settings(
                database_url=database_url,
                config_path=council_with(tmp_path, subscribers),
                app_id="00000000-0000-4000-8000-00000000b07",
                app_password="a-client-secret",
                environment="production",
                webhook_secrets={"forms": FORMS_SECRET},
            )
        )

    client = await service(
        aiohttp_client, tmp_path, database_url, clock, subscribers, {"forms": FORMS_SECRET}
    )
    await report(client)
    rows = {r.payload["subscriber"]: r for r in await settle_rows(client)}
    assert rows["crm"].status == "parked"
    assert rows["crm"].last_error == (
        "no signing secret for subscriber 'crm' in RESPONDER_WEBHOOK_SECRETS"
    )
    assert crm.requests == []
    assert rows["forms"].status == "done" and len(forms.events) == 1


async def test_a_subscriber_removed_from_the_council_file_is_parked_with_that_reason(
    aiohttp_client, tmp_path, database_url, clock, crm, forms
):
    both = [{"name": "crm", "url": crm.url}, {"name": "forms", "url": forms.url}]
    secrets = {"crm": CRM_SECRET, "forms": FORMS_SECRET}
    before = await service(
        aiohttp_client, tmp_path, database_url, clock, both, secrets, background=False
    )
    await report(before)
    # The council takes crm out of the file and restarts before the rows went out.
    later = tmp_path / "after"
    later.mkdir()
    after = await service(aiohttp_client, later, database_url, clock, both[1:], secrets)
    rows = {r.payload["subscriber"]: r for r in await settle_rows(after)}
    assert rows["crm"].status == "parked"
    assert rows["crm"].last_error == "subscriber 'crm' is no longer in the council file"
    assert rows["forms"].status == "done" and crm.requests == []


async def test_webhooks_a_subscriber_stopped_asking_for_are_marked_done_not_sent(
    aiohttp_client, tmp_path, database_url, clock, crm
):
    secrets = {"crm": CRM_SECRET}
    before = await service(
        aiohttp_client,
        tmp_path,
        database_url,
        clock,
        [{"name": "crm", "url": crm.url}],
        secrets,
        background=False,
    )
    task = await report(before)
    await do(before, task["id"], Action.ACCEPT, "bob")
    later = tmp_path / "after"
    later.mkdir()
    only_completions = [{"name": "crm", "url": crm.url, "events": ["complete"]}]
    after = await service(aiohttp_client, later, database_url, clock, only_completions, secrets)
    rows = await settle_rows(after)
    assert [r.status for r in rows] == ["done", "done"] and crm.requests == []
    assert [r.last_error for r in rows] == [
        "not sent: 'crm' no longer asks for 'created' events",
        "not sent: 'crm' no longer asks for 'accept' events",
    ]


# -- the council file --------------------------------------------------------------------------


def check_config(path, capsys) -> list[str]:
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(path)])
    assert exited.value.code != 0
    return [line.strip() for line in capsys.readouterr().out.splitlines()[1:]]


def test_subscriber_mistakes_are_refused_one_line_each(tmp_path, capsys):
    path = council_with(
        tmp_path,
        [
            {"name": "crm", "url": "http://crm.example.gov.uk/hook"},
            {"name": "crm", "url": "https://crm.example.gov.uk/other"},
            {"name": "forms", "url": "https://user:hunter22@forms.example/hook"},
            {"name": "local", "url": "http://127.0.0.1:8080/hook"},
            {"name": "typos", "url": "https://x.example/h", "events": ["completed", "acept"]},
            {"name": "twice", "url": "https://x.example/h", "events": ["cancel", "cancel"]},
            {"name": "none", "url": "https://x.example/h", "events": []},
            {"name": "ty", "url": "https://x.example/t", "events": ["task.handed_back", "notify"]},
        ],
    )
    problems = check_config(path, capsys)
    assert problems[:3] == [
        "subscribers[1].name: duplicate subscriber name 'crm' (also subscribers[0].name)",
        "subscribers[0].url: should start with https:// (http:// only for localhost or "
        "127.0.0.1), got 'http://crm.example.gov.uk/hook'",
        "subscribers[2].url: no user name or password in the URL (each delivery is signed instead)",
    ]
    assert "hunter22" not in "\n".join(problems)
    assert problems[3:6] == [
        "subscribers[4].events[0]: unknown event 'completed' (did you mean 'complete'?)",
        "subscribers[4].events[1]: unknown event 'acept' (did you mean 'accept'?)",
        "subscribers[5].events[1]: duplicate event 'cancel' (also subscribers[5].events[0])",
    ]
    assert problems[6].startswith(
        "subscribers[6].events: an empty list sends nothing; leave events out for every "
        "change, or list some of: accept, assign, cancel, citizen_update, complete,"
    )
    assert problems[7:] == [
        "subscribers[7].events[0]: unknown event 'task.handed_back' (did you mean 'handback'?)",
        "subscribers[7].events[1]: unknown event 'notify' (known: accept, assign, cancel, "
        "citizen_update, complete, created, duplicate_linked, handback, photo, photo_failed, "
        "priority, reassign, start, update)",
    ]


def test_a_well_formed_subscribers_section_passes(tmp_path):
    path = council_with(
        tmp_path,
        [
            {"name": "council-crm", "url": "https://crm.example.gov.uk/hooks/responder"},
            {"name": "fms", "url": "http://localhost:8080/hook", "events": ["complete"]},
        ],
    )
    council = load_council(path)
    crm, fms = council.file.subscribers
    assert crm.wants("accept") and not crm.wants("citizen_update") and not crm.wants("notify")
    assert fms.wants("complete") and not fms.wants("accept")


# -- docs/webhooks.md --------------------------------------------------------------------------


def test_the_documented_example_is_what_responder_sends_and_signs():
    doc = (ROOT / "docs" / "webhooks.md").read_text()
    [documented] = re.findall(r'^\{"id":"88213".*\}$', doc, re.M)
    header = re.search(r"^Responder-Signature: (.+)$", doc, re.M)
    assert header is not None
    at = datetime(2026, 11, 23, 12, 12, tzinfo=UTC)
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    task = TaskRecord(
        id=1042,
        reference="RSP-2042",
        type="fly-tipping",
        description="Mattress and bags dumped by the bus stop",
        lat=51.9051,
        lon=0.8873,
        address="1 High Street",
        ward="Northgate",
        team="sc-north",
        assignee="bob",
        status=Status.COMPLETED,
        priority="high",
        due_at=start + timedelta(days=1),
        created_at=start,
        updated_at=at,
        closed_at=at,
        source="govservice",
        raised_by="resident",
        raised_by_person=None,
        photos=(),
        priority_reasons=(),
        routing_reasons=(),
        report_count=1,
        outcome="resolved",
        version=5,
    )
    event = WebhookEventFacts(
        88213, at, "bob", "complete", "in_progress", "completed", {"outcome": "resolved"}
    )
    facts = WebhookFacts(task, event, (SourceRef("govservice", "CAS-000123", False),))
    body = webhook_body(facts, load_council(EXAMPLES / "council.yaml"))
    assert body.decode() == documented
    sent = headers("whsec-example-secret", "88213", int(at.timestamp()), body)
    assert sent["Responder-Signature"] == header.group(1)
    assert sent["Responder-Timestamp"] == "1795435920"
    receiver = FakeSubscriber("whsec-example-secret", now=lambda: at)
    assert receiver.check(sent, body) is None
    assert receiver.check(sent, body.replace(b"resolved", b"no-access")) == "bad signature"
    late = FakeSubscriber("whsec-example-secret", now=lambda: at + timedelta(minutes=6))
    assert late.check(sent, body) == "too old (or from the future)"
