"""One channel never waits for another (issue 14, item 6): the dispatcher's lanes.

Each channel (Teams, Notify, anything else) is claimed and paced on its own; within a lane
the most urgent row goes first (its task's due time); a task's later steps wait for its
earlier ones in the same lane. Shown on a real SQLite file and the machine's PostgreSQL,
against the fake Bot Connector and fake GOV.UK Notify as HTTP servers on 127.0.0.1, by the
order and counts of what they received (never by how long anything took).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import _reset_postgres
from sqlalchemy import select
from support import AUTH, EXAMPLES, INTAKE_SECRET, PG_URL

from fakes.connector import Received
from fakes.durability import _task_ids
from fakes.notify import FakeNotify
from fakes.teams import install
from responder.app import build_app, dispatcher_key
from responder.commands.act import ActionRequest, act
from responder.domain.lifecycle import Action
from responder.jobs.dispatcher import Dispatcher, Done, Message, Park, Retry
from responder.settings import Settings
from responder.store.db import Database
from responder.store.outbox import enqueue, lane_of, outbox_row
from responder.store.schema import outbox
from responder.web import db_key, domain_key

# Everyone in the example council installs the bot, so no card is parked as unreachable.
PEOPLE = ("alice", "frank", "bob", "carol", "dan", "erin", "grace", "henry")
URGENT, NORMAL = "needles", "litter"  # street cleansing, priorities urgent and normal
RECEIVED_EMAIL = "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1001"  # examples/council.yaml
COMPLETED_EMAIL = "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1003"


@pytest.fixture
async def notify(aiohttp_server) -> FakeNotify:
    fake = FakeNotify()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


def _settings(database_url: str, notify: FakeNotify, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "config_path": EXAMPLES / "council.yaml",
        "intake_keys": {"forms": INTAKE_SECRET},
        "notify_api_key": notify.api_key(),
        "notify_base_url": notify.url,
        "scheduler": False,
        **kw,
    }
    return Settings(**values)


def _location(i: int) -> dict[str, Any]:
    """Places in Northgate and around, 2.5e-3 degrees apart: never duplicates."""
    row, col = divmod(i % 225, 15)
    return {
        "lat": round(51.8815 + row * 0.0025, 6),
        "lon": round(0.8815 + col * 0.0025, 6),
        "address": f"{i} High Street",
    }


def _report(type_: str, i: int, updates: tuple[str, ...] = ("email",)) -> dict[str, Any]:
    reporter: dict[str, Any] = {"name": "A Resident", "updates": list(updates)}
    if "email" in updates:
        reporter["email"] = f"resident-{i}@example.com"
    if "sms" in updates:
        reporter["phone"] = "07700900123"
    return {
        "type": type_,
        "description": "Reported on the street",
        "location": _location(i),
        "external_id": f"lanes-{type_}-{i}",
        "reporter": reporter,
    }


async def _post(client, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/api/tasks", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def _card_of(task_id: int):
    def matches(r: Received) -> bool:
        return r.method == "POST" and r.card is not None and task_id in _task_ids(r.card)

    return matches


async def _slow_notify_service(aiohttp_client, database_url, connector, notify):
    """The app with Notify paced at 6 a second: a backlog of hundreds lasts most of a minute."""
    client = await aiohttp_client(build_app(_settings(database_url, notify, notify_per_minute=360)))
    for person in PEOPLE:
        resp = await client.post("/api/messages", json=install(person, connector.url))
        assert resp.status == 200, await resp.text()
    return client


async def _post_all(client, bodies: list[dict[str, Any]], at_once: int = 8) -> None:
    pending = iter(bodies)

    async def worker() -> None:
        for body in pending:
            await _post(client, body)

    await asyncio.gather(*(worker() for _ in range(at_once)))


# -- across lanes ------------------------------------------------------------------------------


async def test_an_urgent_card_does_not_wait_for_the_notify_backlog(
    notify, connector, database_url, aiohttp_client
):
    client = await _slow_notify_service(aiohttp_client, database_url, connector, notify)
    # A surge: 150 reports whose reporters want an email and a text, 300 Notify messages.
    await _post_all(client, [_report(NORMAL, i, ("email", "sms")) for i in range(150)])
    async with client.app[db_key].read() as conn:
        owed = len((await conn.execute(select(outbox.c.id).where(outbox.c.lane == "notify"))).all())
    assert owed == 300
    backlog = owed - len(notify.accepted)
    assert backlog > 200, f"the backlog drained already ({backlog} left): Notify is not paced"
    sent_before = len(notify.accepted)

    task = await _post(client, _report(URGENT, 1000, ()))
    [card] = await connector.wait_for(_card_of(task["id"]), within=30)

    # What Notify had accepted by the time the card reached Teams: hardly any more.
    sent_meanwhile = sum(1 for a in notify.accepted if a.at < card.at) - sent_before
    assert sent_meanwhile < backlog // 2, (sent_meanwhile, backlog)
    assert len(notify.accepted) < owed, "the Notify backlog drained before the card went"
    assert notify.duplicates() == []


# -- within a lane -----------------------------------------------------------------------------


async def test_within_a_lane_the_more_urgent_goes_first(
    notify, connector, database_url, aiohttp_client
):
    client = await _slow_notify_service(aiohttp_client, database_url, connector, notify)
    # Normal-priority reports first: 100 emails in the Notify lane.
    await _post_all(client, [_report(NORMAL, i) for i in range(100)])
    waiting = 100 - len(notify.accepted)
    assert waiting > 20, f"only {waiting} left waiting: Notify is not paced"
    sent_before = len(notify.accepted)
    urgent = await _post(client, _report(URGENT, 1000))
    urgent_address = "resident-1000@example.com"

    [first] = await notify.wait_for(lambda a: a.to == urgent_address, within=30)
    # Queued after every one of them, sent while most of those still waiting still wait.
    sent_meanwhile = sum(1 for a in notify.accepted if a.at < first.at) - sent_before
    assert sent_meanwhile < waiting // 2, (sent_meanwhile, waiting)
    assert first.template_id == RECEIVED_EMAIL
    assert first.personalisation["reference"] == urgent["reference"]


async def test_claims_take_the_most_urgent_first(notify, database_url, aiohttp_client):
    """Claimed one at a time: the urgent task's card, the digest (a day), the normal card."""
    client = await aiohttp_client(build_app(_settings(database_url, notify, background=False)))
    db = client.app[db_key]
    normal = await _post(client, _report(NORMAL, 1, ()))
    now = datetime.now(UTC)
    digest = outbox_row("teams.digest", "digest:test", {"digest_id": 1, "team": "sc-north"}, now)
    await db.run(lambda conn: enqueue(conn, [digest]))
    urgent = await _post(client, _report(URGENT, 2, ()))

    dispatcher = Dispatcher(db, {}, lambda: datetime.now(UTC) + timedelta(seconds=1))
    order = []
    for _ in range(3):
        [message] = await dispatcher.claim({"teams": 1})
        order.append((message.kind, message.task_id))
    assert order == [
        ("teams.card", urgent["id"]),
        ("teams.digest", None),
        ("teams.card", normal["id"]),
    ]
    assert await dispatcher.claim({"teams": 1}) == []  # the rest are in flight (leased)


# -- order per task ----------------------------------------------------------------------------


async def _rows(db: Database, *where) -> list:
    async with db.read() as conn:
        return list(await conn.execute(select(outbox).where(*where)))


async def test_a_task_s_later_steps_wait_for_its_earlier_ones(notify, database_url, aiohttp_client):
    client = await aiohttp_client(build_app(_settings(database_url, notify, background=False)))
    db = client.app[db_key]
    first = await _post(client, _report(NORMAL, 1, ()))
    second = await _post(client, _report(NORMAL, 2, ()))
    later = datetime.now(UTC) + timedelta(seconds=1)

    def refresh(task: dict, at: datetime) -> dict:
        key = f"refresh:{task['id']}:2"
        return outbox_row(
            "teams.refresh", key, {"task_id": task["id"], "version": 2}, at, task["id"]
        )

    def received_and_completed(conn) -> None:
        # One reporter's two emails, from two transactions (received, then completed).
        for event, at in (("received", later - timedelta(milliseconds=500)), ("completed", later)):
            payload = {"task_id": first["id"], "report_id": 1, "event": event}
            key = f"notify:test:{event}"
            enqueue(conn, [outbox_row("notify", key, payload, at, first["id"])])

    await db.run(lambda conn: enqueue(conn, [refresh(first, later), refresh(second, later)]))
    await db.run(received_and_completed)
    dispatcher = Dispatcher(db, {}, lambda: datetime.now(UTC) + timedelta(seconds=2))

    def kinds(messages: list[Message]) -> set[tuple[str, int | None, str]]:
        return {(m.kind, m.task_id, m.key) for m in messages}

    # Only each task's first step: its card, and the 'received' email.
    claimed = await dispatcher.claim({"teams": 10, "notify": 10})
    cards = {m.task_id: m for m in claimed if m.kind == "teams.card"}
    assert set(cards) == {first["id"], second["id"]}
    assert [m.key for m in claimed if m.kind == "notify"] == ["notify:test:received"]
    assert len(claimed) == 3, kinds(claimed)

    # A card being retried still holds its refresh back; a card delivered frees it; a card
    # parked (its officer unreachable) frees it too.
    await dispatcher.record(cards[first["id"]], Retry("Teams answered 503", after=0))
    await dispatcher.record(cards[second["id"]], Park("bob has not installed Responder"))
    claimed = await dispatcher.claim({"teams": 10})
    assert kinds(claimed) == {
        ("teams.card", first["id"], cards[first["id"]].key),
        ("teams.refresh", second["id"], f"refresh:{second['id']}:2"),
    }
    [card] = [m for m in claimed if m.kind == "teams.card"]
    await dispatcher.record(card, Done())
    [message] = await dispatcher.claim({"teams": 10})
    assert (message.kind, message.task_id) == ("teams.refresh", first["id"])

    # The 'completed' email waits for the 'received' one.
    [received] = [r for r in await _rows(db, outbox.c.idempotency_key == "notify:test:received")]
    assert await dispatcher.claim({"notify": 10}) == []
    await dispatcher.record(_message(received), Done())
    [message] = await dispatcher.claim({"notify": 10})
    assert message.key == "notify:test:completed"


async def test_one_step_s_rows_go_out_side_by_side(notify, database_url, aiohttp_client):
    """A queue team's task is offered to each on-duty officer and the channel at once."""
    client = await aiohttp_client(build_app(_settings(database_url, notify, background=False)))
    db = client.app[db_key]
    task = await _post(client, _report(NORMAL, 1, ("email", "sms")))
    now = datetime.now(UTC)
    offers = [
        outbox_row(
            "teams.card",
            f"card:{task['id']}:{p}:9",
            {"task_id": task["id"], "person": p},
            now,
            task["id"],
        )
        for p in ("grace", "henry")
    ]
    await db.run(lambda conn: enqueue(conn, offers))
    dispatcher = Dispatcher(db, {}, lambda: datetime.now(UTC) + timedelta(seconds=1))
    claimed = await dispatcher.claim({"teams": 10, "notify": 10})
    # The card of the report's own step, then (a later step) the two offers; the email and
    # the text of one event together.
    assert sorted(m.kind for m in claimed) == ["notify", "notify", "teams.card"]
    for m in claimed:
        if m.kind == "teams.card":
            await dispatcher.record(m, Done())
    claimed = await dispatcher.claim({"teams": 10})
    assert sorted(m.key for m in claimed) == sorted(o["idempotency_key"] for o in offers)


def _message(row) -> Message:
    return Message(
        row.id,
        row.kind,
        row.idempotency_key,
        row.task_id,
        row.payload,
        row.attempts,
        row.created_at,
    )


async def test_received_email_goes_before_completed_even_when_retried(
    notify, database_url, aiohttp_client
):
    client = await aiohttp_client(build_app(_settings(database_url, notify)))
    client.app[dispatcher_key].max_backoff = 0.3
    notify.fail(503, 503, 503)  # the first three sends fail: the 'received' email is retried
    task = await _post(client, _report(NORMAL, 1))
    domain, db, officer = client.app[domain_key], client.app[db_key], task["assignee"]
    for action, extra in ((Action.ACCEPT, {}), (Action.COMPLETE, {"outcome": "resolved"})):
        request = ActionRequest(task["id"], action, officer, None, **extra)
        result = await act(db, domain, request, datetime.now(UTC))
        assert result.applied, result.notice

    sent = await notify.wait_for(lambda a: a.to == "resident-1@example.com", count=2, within=30)
    assert [a.template_id for a in sent] == [RECEIVED_EMAIL, COMPLETED_EMAIL]
    assert notify.duplicates() == []


# -- several instances ---------------------------------------------------------------------------


def test_lanes_follow_the_kind():
    assert [lane_of(k) for k in ("teams.card", "teams.refresh", "teams.digest")] == ["teams"] * 3
    assert [lane_of(k) for k in ("notify", "notify.email")] == ["notify", "notify"]
    assert [lane_of(k) for k in ("fetch.photo", "webhook.event")] == ["fetch", "webhook"]
    assert [lane_of(k) for k in ("fetching", "teamsish", "")] == ["default"] * 3


needs_pg = pytest.mark.skipif(PG_URL == "off", reason="needs the machine's PostgreSQL")


@needs_pg
async def test_two_dispatchers_on_postgresql_claim_each_row_once_in_order(notify, aiohttp_client):
    """Two dispatchers (two engines) race to claim the same outbox, lane by lane."""
    await _reset_postgres(PG_URL)
    client = await aiohttp_client(build_app(_settings(PG_URL, notify, background=False)))
    db = client.app[db_key]
    tasks = [await _post(client, _report(NORMAL, i)) for i in range(40)]
    later = datetime.now(UTC) + timedelta(seconds=1)
    refreshes = [
        outbox_row("teams.refresh", f"refresh:{t['id']}:2", {"task_id": t["id"]}, later, t["id"])
        for t in tasks
    ]
    await db.run(lambda conn: enqueue(conn, refreshes))
    total = len(await _rows(db))  # 40 cards, 40 emails, 40 refreshes

    events: list[tuple[str, int, str]] = []  # (what, outbox id, by whom), in order

    async def work(name: str) -> None:
        other = Database(PG_URL)
        dispatcher = Dispatcher(other, {}, lambda: datetime.now(UTC) + timedelta(seconds=2))
        try:
            idle = 0
            while idle < 3:
                claimed = await dispatcher.claim({"teams": 3, "notify": 2, "default": 1})
                events.extend(("claimed", m.id, name) for m in claimed)
                idle = 0 if claimed else idle + 1
                for m in claimed:
                    await asyncio.sleep(0)
                    await dispatcher.record(m, Done())
                    events.append(("done", m.id, name))
        finally:
            await other.dispose()

    await asyncio.gather(work("a"), work("b"))
    claims = [row_id for what, row_id, _ in events if what == "claimed"]
    assert len(claims) == len(set(claims)) == total, "a row was claimed twice, or never"
    assert {r.status for r in await _rows(db)} == {"done"}
    by_key = {r.idempotency_key: r.id for r in await _rows(db)}
    position = {(what, row_id): i for i, (what, row_id, _) in enumerate(events)}
    for t in tasks:
        card = next(v for k, v in by_key.items() if k.startswith(f"card:{t['id']}:"))
        refresh = by_key[f"refresh:{t['id']}:2"]
        assert position["done", card] < position["claimed", refresh], t["id"]
    assert {who for _, _, who in events} == {"a", "b"}, "one dispatcher did all the work"


@needs_pg
async def test_two_instances_with_lanes_deliver_everything_once(aiohttp_client, connector, notify):
    await _reset_postgres(PG_URL)
    instances = [await aiohttp_client(build_app(_settings(PG_URL, notify))) for _ in range(2)]
    for person in PEOPLE:
        resp = await instances[0].post("/api/messages", json=install(person, connector.url))
        assert resp.status == 200
    tasks = await asyncio.gather(
        *(_post(instances[i % 2], _report(NORMAL, i, ("email", "sms"))) for i in range(40))
    )
    await notify.wait_for(lambda a: True, count=80, within=30)
    for t in tasks:
        await connector.wait_for(_card_of(t["id"]), within=30)
    await asyncio.sleep(1.0)  # time for any double to arrive
    assert notify.duplicates() == []
    posted = [
        (task_id, r.conversation_id)
        for r in connector.received
        if r.method == "POST" and r.card is not None
        for task_id in _task_ids(r.card)
    ]
    assert len(posted) == len(set(posted)) == 40
