"""Proof of durability: a SIGKILL mid-burst, and both fakes misbehaving for a while.

The fake Bot Connector and the fake GOV.UK Notify run as real HTTP servers on 127.0.0.1 in
the test's event loop. The first test runs the real service (``python app.py``) as a
process and kills it with SIGKILL part-way through a burst of reports; the second runs the
app in-process (so the dispatcher can be reached) against fakes answering 30 % 5xx and
10 % 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import aiohttp
import pytest
from sqlalchemy import select

from fakes.durability import (
    AUTH,
    EXAMPLES,
    FAULT_SECONDS,
    INTAKE_SECRET,
    PEOPLE,
    REPORTS_PER_SECOND,
    Process,
    _email,
    _end_leases,
    _posted_cards,
    _report,
    _settle_db,
)
from fakes.notify import FakeNotify
from fakes.teams import install, personal_conversation
from responder.app import build_app, dispatcher_key
from responder.bot.pacing import TeamsPacer
from responder.settings import Settings
from responder.store.schema import outbox
from responder.web import db_key

RECEIVED_EMAIL = "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a1001"  # examples/council.yaml


# -- helpers ---------------------------------------------------------------------------------


def _check_delivered(rows: list, emails: dict[int, str], connector, notify) -> set[int]:
    """Every outbox row done, and each message at the fake it was meant for.

    ``emails``: task id -> the reporter's address, for the tasks the test knows about.
    Returns the ids of the tasks the outbox holds.
    """
    not_done = [(r.id, r.kind, r.status, r.last_error) for r in rows if r.status != "done"]
    assert not not_done, f"outbox rows not delivered: {not_done[:10]}"
    task_ids = {r.task_id for r in rows if r.task_id is not None}
    assert set(emails) <= task_ids, f"tasks with no outbox rows: {set(emails) - task_ids}"

    posted = _posted_cards(connector)
    cards_owed = [r for r in rows if r.kind == "teams.card" and r.payload.get("person")]
    assert {r.task_id for r in cards_owed} == task_ids, "a task was owed no card at all"
    missing = [
        (r.task_id, r.payload["person"])
        for r in cards_owed
        if posted[r.task_id, personal_conversation(r.payload["person"])] < 1
    ]
    assert not missing, f"cards owed but never POSTed to the connector: {missing[:10]}"

    by_reference = Counter(a.reference for a in notify.accepted)
    owed = [r.idempotency_key for r in rows if r.kind == "notify"]
    assert len(owed) == len(task_ids), "not one Notify message owed per report"
    unsent = [key for key in owed if by_reference[key] != 1]
    assert not unsent, f"Notify messages not accepted exactly once: {unsent[:10]}"
    assert notify.duplicates() == [], "a Notify reference was accepted twice"
    received = Counter(a.to for a in notify.accepted if a.template_id == RECEIVED_EMAIL)
    wrong = [t for t, address in emails.items() if received[address] != 1]
    assert not wrong, f"reporters without exactly one 'received' email: {wrong[:10]}"
    return task_ids


@pytest.fixture
async def notify(aiohttp_server) -> FakeNotify:
    fake = FakeNotify()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/")).rstrip("/")
    return fake


# -- 1. SIGKILL in the middle of a burst ------------------------------------------------------


async def test_sigkill_mid_burst_loses_nothing(tmp_path, connector, notify):
    database_url = f"sqlite:///{tmp_path / 'durable.db'}"
    service = Process(tmp_path, database_url, notify)
    total, kill_after = 150, 60
    # Deliveries take a little while at both fakes, so some are in flight at the kill.
    connector.latency = notify.latency = 0.05
    acknowledged: dict[int, int] = {}  # task id -> the report's number
    references: dict[int, str] = {}
    killed = asyncio.Event()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            await service.start(session)
            for person in PEOPLE:
                async with session.post(
                    f"{service.url}/api/messages", json=install(person, connector.url)
                ) as resp:
                    assert resp.status == 200, await resp.text()

            async def report(i: int) -> None:
                try:
                    async with session.post(
                        f"{service.url}/api/tasks", json=_report("burst", i), headers=AUTH
                    ) as resp:
                        if resp.status != 201:
                            return
                        body = await resp.json()
                except (aiohttp.ClientError, TimeoutError):
                    return  # the service died under this one: not acknowledged
                if killed.is_set():
                    return  # a late answer from a dead process cannot be (and never is)
                acknowledged[body["id"]] = i
                references[body["id"]] = body["reference"]
                if len(acknowledged) >= kill_after:
                    service.kill()
                    killed.set()

            await asyncio.gather(*(report(i) for i in range(total)))
            assert killed.is_set(), f"only {len(acknowledged)} reports were acknowledged"
            assert service.proc is not None
            assert await asyncio.to_thread(service.proc.wait, 10) == -signal.SIGKILL
            in_flight = await asyncio.to_thread(_end_leases, database_url)

            connector.latency = notify.latency = 0.0
            await service.start(session)
            rows = await _settle_db(database_url, within=30)

            for task_id, reference in references.items():
                async with session.get(f"{service.url}/api/tasks/{task_id}", headers=AUTH) as resp:
                    assert resp.status == 200, f"acknowledged task {task_id} is gone"
                    assert (await resp.json())["reference"] == reference
    finally:
        service.stop()

    # Every task the database holds (acknowledged or not) owes its messages.
    task_ids = _check_delivered(
        rows, {t: _email("burst", i) for t, i in acknowledged.items()}, connector, notify
    )
    # A card POSTed just before the kill but not yet recorded is sent again: at most one
    # duplicate per crash for any one card.
    posted = _posted_cards(connector)
    assert max(posted.values()) <= 2, [k for k, n in posted.items() if n > 2]
    duplicates = sum(n - 1 for n in posted.values())
    print(
        f"acknowledged {len(acknowledged)}, tasks {len(task_ids)}, "
        f"rows pending at the kill {in_flight}, "
        f"duplicate cards {duplicates}"
    )


# -- 2. Both fakes failing for a while -------------------------------------------------------


async def test_faults_at_both_fakes_everything_is_delivered(
    tmp_path, aiohttp_client, connector, notify
):
    # A test-time knob: after a minute of 40 % failures full-jitter backoff can leave a row
    # waiting minutes (up to 300 s); capped at 4 s here so the test ends in time.
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'faults.db'}",
        config_path=EXAMPLES / "council.yaml",
        intake_keys={"forms": INTAKE_SECRET},
        notify_api_key=notify.api_key(),
        notify_base_url=notify.url,
        scheduler=False,
    )
    client = await aiohttp_client(build_app(settings))
    client.app[dispatcher_key].max_backoff = 4.0
    for person in PEOPLE:
        resp = await client.post("/api/messages", json=install(person, connector.url))
        assert resp.status == 200, await resp.text()

    connector.fault_rates = notify.fault_rates = (0.3, 0.1, 1.0)
    emails: dict[int, str] = {}
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < FAULT_SECONDS:
        resp = await client.post("/api/tasks", json=_report("faults", i), headers=AUTH)
        assert resp.status == 201, await resp.text()
        emails[(await resp.json())["id"]] = _email("faults", i)
        i += 1
        await asyncio.sleep(1 / REPORTS_PER_SECOND)
    connector.fault_rates = notify.fault_rates = (0.0, 0.0, 1.0)

    db = client.app[db_key]
    # Backoff is capped at 4 s, so this settles in seconds; the margin is for a loaded CI.
    deadline = time.monotonic() + 90
    while True:
        async with db.read() as conn:
            rows = list(await conn.execute(select(outbox)))
        pending = [r for r in rows if r.status == "pending"]
        if not pending:
            break
        if time.monotonic() > deadline:
            stuck = [(r.id, r.kind, r.attempts, r.last_error) for r in pending[:10]]
            raise AssertionError(f"{len(pending)} outbox rows still pending 90 s on: {stuck}")
        await asyncio.sleep(0.25)

    _check_delivered(rows, emails, connector, notify)
    assert notify.retry_after_violations == 0, "a message went out inside a Retry-After"
    failures = Counter(a.status for a in notify.arrivals if a.status >= 400)
    print(
        f"reports {len(emails)}, rows {len(rows)}, most attempts "
        f"{max(r.attempts for r in rows)}, Notify failures {dict(failures)}, "
        f"settled {time.monotonic() - started - FAULT_SECONDS:.1f} s after the faults"
    )
    assert connector.retry_after_violations == 0, "a card went out inside a Retry-After"


async def test_teams_pause_stops_sends_already_waiting_for_their_slot():
    pacer = TeamsPacer()
    returned: list[float] = []

    async def send() -> None:
        await pacer.acquire("a:conv")
        returned.append(time.monotonic())

    sends = [asyncio.create_task(send()) for _ in range(3)]  # slots 1/48 s apart
    await asyncio.sleep(0)  # all three have reserved their slots; the first has gone
    paused_at = time.monotonic()
    pacer.pause("a:conv", 1.0)  # a 429 with Retry-After: 1 comes back for the first
    await asyncio.wait_for(asyncio.gather(*sends), 5)
    late = sorted(returned)[1:]
    assert all(t >= paused_at + 1.0 for t in late), [round(t - paused_at, 3) for t in late]
