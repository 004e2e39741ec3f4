"""Erasing reporters' contact details after the retention period: ``responder purge`` and
the function behind it, on SQLite and PostgreSQL.

Tasks come in through ``POST /api/tasks`` and are closed by the officers' commands; the
example council keeps contact details for 90 days (notify.retention_days).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from support import AUTH, EXAMPLES

from responder.commands.act import ActionRequest, act
from responder.commands.erase import PARKED_NOTE, cutoff_for, purge, truncate_wal
from responder.config import load_council
from responder.domain.lifecycle import Action
from responder.store.schema import contacts, outbox, reports, task_events
from responder.web import db_key, domain_key

RESPONDER = Path(sys.executable).with_name("responder")
AS_OF = date(2027, 3, 1)  # 90 days before: 2026-12-01 (GMT, so midnight UTC)
CUTOFF = datetime(2026, 12, 1, tzinfo=UTC)
NOTE = "Reporter contact details erased after the 90-day retention period"

# Who reported what (unique addresses, so the database file can be searched for them).
OLD = ("old.reporter@example.com", "07700900001")  # completed well before the cutoff
DUP_A = ("first.of.two@example.com", "07700900002")  # cancelled before the cutoff...
DUP_B = ("second.of.two@example.com", "07700900003")  # ...with a duplicate report
EDGE = ("edge.reporter@example.com", "07700900004")  # completed at the cutoff: kept
OPEN = ("open.reporter@example.com", "07700900005")  # still open: kept
LEGACY = "legacy.payload@example.com"  # an outbox payload that (wrongly) carried an address
ERASED = [*OLD, *DUP_A, *DUP_B, LEGACY]
KEPT = [*EDGE, *OPEN]


def spread(i: int) -> tuple[float, float]:
    """Distinct points in Northgate, far enough apart (>100 m) not to be duplicates."""
    return (51.9005 + (i // 10) * 0.0015, 0.8805 + (i % 10) * 0.0018)


async def report(client, at: tuple[float, float], who: tuple[str, str]) -> dict:
    body = {
        "type": "fly-tipping",
        "description": "Bags dumped by the bus stop",
        "location": {"lat": at[0], "lon": at[1], "address": "1 High Street"},
        "reporter": {
            "name": "A Resident",
            "email": who[0],
            "phone": who[1],
            "updates": ["email", "sms"],
        },
        "source": "web-form",
    }
    resp = await client.post("/api/tasks", json=body, headers=AUTH)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def complete(client, task: dict, when: datetime) -> None:
    db, domain = client.app[db_key], client.app[domain_key]
    for action, extra in ((Action.ACCEPT, {}), (Action.COMPLETE, {"outcome": "resolved"})):
        result = await act(
            db, domain, ActionRequest(task["id"], action, task["assignee"], None, **extra), when
        )
        assert result.applied, result.notice


async def cancel(client, task: dict, when: datetime) -> None:
    request = ActionRequest(task["id"], Action.CANCEL, "alice", None)  # sc-north's manager
    result = await act(client.app[db_key], client.app[domain_key], request, when)
    assert result.applied, result.notice


async def scenario(client, clock) -> dict[str, int]:
    """Four tasks (one with a duplicate report), closed around the cutoff; their ids."""
    old = await report(client, spread(0), OLD)
    dup = await report(client, spread(10), DUP_A)
    linked = await report(client, spread(10), DUP_B)
    assert linked["id"] == dup["id"]  # linked to the first as a duplicate
    edge = await report(client, spread(20), EDGE)
    still_open = await report(client, spread(30), OPEN)
    await complete(client, old, CUTOFF - timedelta(seconds=1))
    await cancel(client, dup, clock.now + timedelta(days=1))
    await complete(client, edge, CUTOFF)
    db = client.app[db_key]

    def legacy(conn):
        # One of OLD's messages already sent (stays as it is) and one whose payload, from
        # some older version, carries an address (is cleaned).
        rows = conn.execute(
            select(outbox.c.id, outbox.c.payload)
            .where(outbox.c.task_id == old["id"], outbox.c.kind == "notify")
            .order_by(outbox.c.id)
        ).all()
        conn.execute(update(outbox).where(outbox.c.id == rows[0].id).values(status="done"))
        conn.execute(
            update(outbox)
            .where(outbox.c.id == rows[1].id)
            .values(payload={**rows[1].payload, "email_address": LEGACY})
        )

    await db.run(legacy)
    return {"old": old["id"], "dup": dup["id"], "edge": edge["id"], "open": still_open["id"]}


async def select_all(client, table, *where):
    async with client.app[db_key].read() as conn:
        return (
            await conn.execute(select(table).where(*where).order_by(*table.primary_key.columns))
        ).all()


async def erased_events(client, task_id: int) -> list[dict]:
    resp = await client.get(f"/api/tasks/{task_id}", headers=AUTH)
    assert resp.status == 200
    return [e for e in (await resp.json())["history"] if e["action"] == "contact_erased"]


async def check_erased(client, ids: dict[str, int]) -> None:
    """Only the two tasks closed before the cutoff lost their reporters' details."""
    remaining = await select_all(client, contacts)
    assert sorted(c.email for c in remaining) == sorted([EDGE[0], OPEN[0]])
    for name in ("old", "dup"):
        [event] = await erased_events(client, ids[name])
        assert (event["actor"], event["note"]) == ("system", NOTE)
    for name in ("edge", "open"):
        assert await erased_events(client, ids[name]) == []
    # The reports themselves stay (the task's history needs them); only contacts go.
    assert len(await select_all(client, reports)) == 5

    messages = await select_all(client, outbox, outbox.c.kind == "notify")
    for m in messages:
        assert not ({"email_address"} & set(m.payload)), m.payload
        if m.task_id in (ids["old"], ids["dup"]):
            assert m.status in ("parked", "done")
            if m.status == "parked":
                assert m.last_error == PARKED_NOTE
        else:
            assert m.status == "pending"
    assert sum(m.status == "done" for m in messages) == 1


def raw_bytes(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# -- the function --------------------------------------------------------------------------


async def test_purge_erases_contacts_of_tasks_closed_before_the_retention_period(
    client, clock, database_url
):
    ids = await scenario(client, clock)
    db, council = client.app[db_key], client.app[domain_key].council
    notify_rows = await select_all(
        client, outbox, outbox.c.kind == "notify", outbox.c.task_id.in_([ids["old"], ids["dup"]])
    )
    pending = sum(m.status == "pending" for m in notify_rows)
    assert pending == 7  # OLD: 2 received + 2 completed, 1 of them done; DUP: 2 x 2 received

    later = clock.now + timedelta(days=100)
    result = await purge(db, council, as_of=AS_OF, now=later)
    assert (result.tasks, result.contacts, result.parked, result.payloads) == (2, 3, pending, 1)
    assert result.cutoff == CUTOFF
    assert result.wal_truncated is (True if database_url.startswith("sqlite") else None)
    await check_erased(client, ids)
    [event] = await select_all(
        client,
        task_events,
        task_events.c.action == "contact_erased",
        task_events.c.task_id == ids["dup"],
    )
    assert event.at == later and event.data == {"reports": 2}

    # Again: nothing left to erase, nothing changes.
    again = await purge(db, council, as_of=AS_OF, now=later + timedelta(days=1))
    assert (again.tasks, again.contacts, again.parked, again.payloads) == (0, 0, 0, 0)
    assert len(await select_all(client, task_events, task_events.c.action == "contact_erased")) == 2


async def test_purge_in_small_batches_erases_the_same(client, clock):
    ids = await scenario(client, clock)
    db, council = client.app[db_key], client.app[domain_key].council
    result = await purge(db, council, as_of=AS_OF, batch=1)
    assert (result.tasks, result.contacts) == (2, 3)
    await check_erased(client, ids)


async def test_purge_defaults_to_today_in_the_councils_time_zone(client, clock):
    ids = await scenario(client, clock)
    db, council = client.app[db_key], client.app[domain_key].council
    # On 28 Feb the cancelled task (24 Nov) is past 90 days, the completed one (30 Nov) not.
    result = await purge(db, council, now=datetime(2027, 2, 28, 23, 30, tzinfo=UTC))
    assert (result.as_of, result.tasks, result.contacts) == (date(2027, 2, 28), 1, 2)
    result = await purge(db, council, now=datetime(2027, 3, 1, 0, 30, tzinfo=UTC))
    assert (result.as_of, result.tasks, result.contacts) == (AS_OF, 1, 1)
    await check_erased(client, ids)


def test_cutoff_is_midnight_in_the_councils_time_zone():
    council = load_council(EXAMPLES / "council.yaml")
    assert cutoff_for(council, AS_OF) == CUTOFF  # GMT
    # 90 days before 29 Sep 2026 is 1 Jul, in British Summer Time: 23:00 UTC the day before.
    assert cutoff_for(council, date(2026, 9, 29)) == datetime(2026, 6, 30, 23, tzinfo=UTC)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # reads the file's bytes
async def test_sqlite_file_and_wal_no_longer_hold_the_erased_details(client, clock, database_url):
    await scenario(client, clock)
    db, council = client.app[db_key], client.app[domain_key].council
    # Checkpointed first, so the details are in the database file itself, not only the log.
    assert await truncate_wal(db) is True
    before = raw_bytes(database_url)  # the -wal file is empty now
    for value in ERASED + KEPT:  # the check can see them at all
        assert value.encode() in before, value
    result = await purge(db, council, as_of=AS_OF)
    assert result.wal_truncated is True
    after = raw_bytes(database_url)
    for value in ERASED:
        assert value.encode() not in after, value
    for value in KEPT:
        assert value.encode() in after, value


# -- the command ---------------------------------------------------------------------------


def run_purge(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "RESPONDER_CONFIG")}
    env.update(DATABASE_URL=database_url, RESPONDER_CONFIG=str(EXAMPLES / "council.yaml"))
    return subprocess.run(
        [str(RESPONDER), "purge", *args],
        cwd=cwd,  # away from any .env in the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_responder_purge_command(client, clock, database_url, tmp_path):
    ids = await scenario(client, clock)
    run = await asyncio.to_thread(run_purge, database_url, tmp_path, "--as-of", "2027-03-01")
    assert run.returncode == 0, run.stderr
    assert "purge as of 2027-03-01 (retention 90 days" in run.stdout
    assert "  tasks: 2\n" in run.stdout
    assert "  contact details erased: 3\n" in run.stdout
    assert "  pending messages parked: 7\n" in run.stdout
    assert "  outbox payloads cleaned: 1\n" in run.stdout
    for value in ERASED + KEPT:  # counts only, never a name or an address
        assert value not in run.stdout + run.stderr
    await check_erased(client, ids)
    if database_url.startswith("sqlite"):
        assert "write-ahead log emptied: yes" in run.stdout
        after = raw_bytes(database_url)
        for value in ERASED:
            assert value.encode() not in after, value

    again = await asyncio.to_thread(run_purge, database_url, tmp_path, "--as-of", "2027-03-01")
    assert again.returncode == 0, again.stderr
    assert "  tasks: 0\n" in again.stdout and "  contact details erased: 0\n" in again.stdout
    await check_erased(client, ids)


async def test_responder_purge_refuses_a_bad_date(database_url, tmp_path):
    run = await asyncio.to_thread(run_purge, database_url, tmp_path, "--as-of", "01/03/2027")
    assert run.returncode == 2
    assert "not a date (YYYY-MM-DD)" in run.stderr
