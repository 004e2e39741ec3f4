"""The managers' digest: its numbers against known tasks, sending it, the card and the CLI.

Tasks are made and worked through the real commands (create_task, act, set_duty) at
chosen times, on SQLite and PostgreSQL; every figure is then checked against what was
done, and the officers' loads against a count of the task rows themselves.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bot_harness import Bot, settings_for
from sqlalchemy import select
from support import EXAMPLES, assert_valid_card

from fakes.teams import personal_conversation
from responder.app import build_app
from responder.cards.digest import digest_card, digest_view, in_time_text, late_text
from responder.commands.act import ActionRequest, act, set_duty
from responder.commands.create import create_task
from responder.commands.digest import enqueue_digest, send_digests
from responder.config import load_council
from responder.domain.context import Domain
from responder.domain.digest import Digest, UnknownTeam
from responder.domain.lifecycle import OPEN_STATUSES, Action
from responder.domain.records import NewReport, TaskRecord
from responder.queries.digest import MAX_OVERDUE, build_digest
from responder.store import migrate
from responder.store.db import Database
from responder.store.schema import digests, outbox, tasks
from responder.store.sync import sync_council
from responder.web import db_key, domain_key

# A week of work for sc-north (Street Cleansing North: Northgate and Eastwood).
WEEK_START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # Monday
SINCE = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # Sunday 08:00
UNTIL = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 08:00
NOW = UNTIL + timedelta(minutes=10)
TEAM = "sc-north"


def northgate(i: int) -> tuple[float, float]:
    """Distinct points in Northgate, >100 m apart (never duplicates or repeat reports)."""
    return (51.9005 + (i // 8) * 0.0015, 0.8805 + (i % 8) * 0.0022)


def eastwood(i: int) -> tuple[float, float]:
    return (51.9050 + (i // 8) * 0.0015, 0.9020 + (i % 8) * 0.0022)


def southmere(i: int) -> tuple[float, float]:
    return (51.8850 + (i // 8) * 0.0015, 0.8820 + (i % 8) * 0.0022)


@dataclass
class World:
    db: Database
    domain: Domain
    made: int = 0

    async def task(self, type_: str, at: datetime, where=northgate) -> TaskRecord:
        point = where(self.made)
        self.made += 1
        report = NewReport(
            type=type_,
            description="Seen on the way past",
            lat=point[0],
            lon=point[1],
            address=f"{self.made} High Street",
            photos=(),
            source="web-form",
            external_id=None,
            reporter=None,
        )
        result = await create_task(self.db, self.domain, report, at)
        assert result.created and result.duplicate_of is None
        return result.task

    async def act(self, task: TaskRecord, action: Action, person: str | None, at: datetime, **kw):
        request = ActionRequest(task.id, action, person, None, **kw)
        result = await act(self.db, self.domain, request, at)
        assert result.applied, result.notice
        return result.task

    async def complete(self, task: TaskRecord, at: datetime) -> TaskRecord:
        assert task.assignee
        task = await self.act(task, Action.ACCEPT, task.assignee, at - timedelta(minutes=5))
        return await self.act(task, Action.COMPLETE, task.assignee, at, outcome="resolved")

    async def digest(self, since=SINCE, until=UNTIL, now=NOW, team=TEAM) -> Digest:
        return await self.db.query(
            lambda conn: build_digest(conn, self.domain, team, since, until, now)
        )

    async def all_tasks(self) -> list:
        async with self.db.read() as conn:
            return (await conn.execute(select(tasks))).all()

    async def outbox_rows(self) -> list:
        async with self.db.read() as conn:
            return (await conn.execute(select(outbox).order_by(outbox.c.id))).all()


@pytest.fixture
async def world(database_url):
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        council = load_council(EXAMPLES / "council.yaml")
        await sync_council(db, council, WEEK_START)
        yield World(db, Domain.for_council(council))
    finally:
        await db.dispose()


@dataclass
class Week:
    old_fly: list[TaskRecord]  # 12 high (24 h) tasks from Monday, all long overdue
    needles: TaskRecord  # urgent (4 h), new in the period, overdue by NOW


async def a_week(world: World) -> Week:
    """The known set of tasks the digest figures are checked against (see each comment)."""
    # 12 fly-tipping tasks (high: 24 h) reported on Monday, the later-reported first, so
    # the most overdue is not the lowest id.
    old_fly = [
        await world.task("fly-tipping", WEEK_START + timedelta(hours=11 - i)) for i in range(12)
    ]
    # Done before the period: in no period figure.
    early = await world.task("litter", WEEK_START)
    await world.complete(early, WEEK_START + timedelta(hours=5))
    # In the period: 3 litter (normal: 72 h; the first at exactly SINCE) and 1 needles
    # (urgent: 4 h) in Northgate, 2 graffiti (normal) in Eastwood.
    litter = [await world.task("litter", SINCE + timedelta(hours=h)) for h in (0, 1, 2)]
    needles = await world.task("needles", SINCE + timedelta(hours=1))
    graffiti = [await world.task("graffiti", SINCE + timedelta(hours=h), eastwood) for h in (3, 4)]
    # Completed in the period: 2 of Monday's fly-tipping (late), 2 litter (in time).
    for task in old_fly[:2]:
        await world.complete(task, SINCE + timedelta(hours=6))
    for task in litter[:2]:
        await world.complete(task, SINCE + timedelta(hours=7))
    # Cancelled in the period by the team's manager.
    await world.act(graffiti[0], Action.CANCEL, "alice", SINCE + timedelta(hours=8))
    # At exactly UNTIL: not new in this period, but open now.
    await world.task("litter", UNTIL)
    # Another team's task in the period: not in sc-north's digest.
    await world.task("litter", SINCE + timedelta(hours=2), southmere)
    # Carol goes off duty (after the routing above, which shared the work out).
    await set_duty(world.db, "carol", False, SINCE + timedelta(hours=9))
    return Week(old_fly, needles)


async def test_digest_numbers_match_the_tasks(world):
    week = await a_week(world)
    digest = await world.digest()

    assert (digest.team, digest.team_name) == (TEAM, "Street Cleansing North")
    assert (digest.since, digest.until, digest.now) == (SINCE, UNTIL, NOW)
    assert digest.new == 6  # 3 litter, 1 needles, 2 graffiti
    assert (digest.completed, digest.completed_in_time, digest.cancelled) == (4, 2, 1)
    assert digest.in_time_percent == 50
    # Open: 10 fly-tipping, 1 litter, 1 needles, 1 graffiti, the litter made at UNTIL.
    assert digest.open == 14
    assert digest.overdue == 11  # the 10 fly-tipping and the needles
    lines = [(p.priority, p.new, p.completed, p.open, p.overdue) for p in digest.by_priority]
    assert lines == [
        ("urgent", 1, 0, 1, 1),
        ("high", 0, 2, 10, 10),
        ("normal", 5, 2, 3, 0),
        ("low", 0, 0, 0, 0),
    ]
    assert digest.busiest_types == (("litter", 3), ("graffiti", 2), ("needles", 1))
    assert digest.busiest_wards == (("Northgate", 4), ("Eastwood", 2))

    # Overdue: the ten most overdue, most overdue first; the needles (due Sunday 12:00)
    # is the eleventh and is left out.
    expected = sorted(week.old_fly[2:], key=lambda t: t.due_at)
    assert [t.id for t in digest.overdue_tasks] == [t.id for t in expected]
    assert len(digest.overdue_tasks) == MAX_OVERDUE
    assert week.needles.id not in {t.id for t in digest.overdue_tasks}
    dues = [t.due_at for t in digest.overdue_tasks]
    assert dues == sorted(dues) and all(d < NOW for d in dues)
    assert digest.overdue_tasks[0].reference == f"RSP-{expected[0].id + 1000}"

    # Officers: counted against the task rows themselves.
    rows = [r for r in await world.all_tasks() if r.team == TEAM]
    open_rows = [r for r in rows if r.status in {s.value for s in OPEN_STATUSES}]
    held = Counter(r.assignee for r in open_rows)
    late = Counter(r.assignee for r in open_rows if r.due_at < NOW)
    loads = {o.person_id: (o.open, o.overdue, o.on_duty) for o in digest.officers}
    assert loads == {
        "bob": (held["bob"], late["bob"], True),
        "carol": (held["carol"], late["carol"], False),
    }
    assert held["bob"] and held["carol"]  # routing shared the work out
    assert digest.unassigned == held[None]
    assert sum(o.open for o in digest.officers) + digest.unassigned == digest.open
    assert digest.off_duty == ("carol",)


async def test_the_card_shows_the_figures_and_opens_overdue_tasks(world):
    week = await a_week(world)
    digest = await world.digest()
    card = digest_card(digest_view(digest, world.domain.council))
    assert_valid_card(card)
    words = texts(card)
    assert card["body"][0]["text"] == "Street Cleansing North — digest"
    assert "Sun 22 Nov, 08:00 to Mon 23 Nov, 08:00" in words
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts == {
        "New": "6",
        "Completed": "4",
        "Completed in time": "2 of 4 (50 %)",
        "Cancelled": "1",
        "Open now": "14",
        "Overdue now": "11",
        "Waiting for an officer": str(digest.unassigned),
    }
    assert "Overdue: 11, most overdue first" in words
    assert "…and 1 more overdue." in words
    opened = open_actions(card)
    assert opened == [{"taskId": t.id} for t in digest.overdue_tasks]
    assert week.needles.id not in {d["taskId"] for d in opened}
    assert "Fly-tipping · RSP-" in words and "\U0001f7e0 High priority" in words
    assert not [n for n in _nodes(card) if "color" in n]  # words and signs, not colour
    assert "Carol Warden (off duty)" in words and "Off duty: Carol Warden." in words
    assert "Litter" in words and "Northgate" in words and "Eastwood" in words
    # By priority, in the council's order.
    table = [c for c in card["body"] if c.get("type") == "ColumnSet"][-1]
    first_column = [item["text"] for item in table["columns"][0]["items"]]
    assert first_column == ["Priority", "Urgent", "High", "Normal", "Low"]


def test_card_escapes_outside_text_and_reads_when_empty():
    council = load_council(EXAMPLES / "council.yaml")
    empty = Digest(
        team=TEAM,
        team_name="**Street** [Care](https://evil.example) North",
        since=SINCE,
        until=UNTIL,
        now=NOW,
        new=0,
        completed=0,
        completed_in_time=0,
        cancelled=0,
        open=0,
        overdue=0,
        unassigned=0,
        by_priority=(),
        overdue_tasks=(),
        busiest_types=(),
        busiest_wards=(),
        officers=(),
        off_duty=(),
    )
    card = digest_card(digest_view(empty, council))
    assert_valid_card(card)
    assert card["body"][0]["text"].startswith(r"\*\*Street\*\* \[Care\]")
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Completed in time"] == "none completed"
    assert "Overdue:" not in texts(card)
    assert in_time_text(18, 20) == "18 of 20 (90 %)"
    assert in_time_text(199, 200) == "199 of 200 (99 %)"  # never rounded up to 100 %
    assert late_text(NOW - timedelta(days=2, hours=3), NOW) == "2 days 3 h overdue"
    assert late_text(NOW - timedelta(hours=5, minutes=10), NOW) == "5 h 10 min overdue"
    assert late_text(NOW - timedelta(minutes=25), NOW) == "25 min overdue"


async def test_a_second_digest_covers_only_what_happened_since_the_first(world):
    await a_week(world)
    first = await world.db.run(
        lambda conn: enqueue_digest(conn, world.domain, TEAM, SINCE, UNTIL, UNTIL)
    )
    assert (first.since, first.until, first.repeat) == (SINCE, UNTIL, False)
    # After the first digest: one new task, and one of the period's litter completed.
    later = UNTIL + timedelta(hours=3)
    await world.task("dog-fouling", UNTIL + timedelta(hours=1))
    open_litter = [
        r for r in await world.all_tasks() if r.type == "litter" and r.status == "assigned"
    ]
    litter = open_litter[0]
    await world.act(litter, Action.ACCEPT, litter.assignee, UNTIL + timedelta(hours=2))
    await world.act(
        litter, Action.COMPLETE, litter.assignee, UNTIL + timedelta(hours=2), outcome="resolved"
    )

    second_until = UNTIL + timedelta(days=1)
    second = await world.db.run(
        lambda conn: enqueue_digest(conn, world.domain, TEAM, None, second_until, later)
    )
    assert (second.since, second.until) == (UNTIL, second_until)  # from the first's end
    digest = await world.digest(second.since, second.until, second_until)
    # New: the litter made at exactly UNTIL and the dog fouling; completed: the litter.
    assert (digest.new, digest.completed, digest.cancelled) == (2, 1, 0)
    assert digest.busiest_types == (("dog-fouling", 1), ("litter", 1))


async def test_the_first_digest_covers_a_day_and_a_repeat_sends_nothing_twice(world):
    await a_week(world)
    queued = await send_digests(world.db, world.domain, UNTIL, TEAM)
    assert [(q.team, q.since, q.until, q.repeat) for q in queued] == [
        (TEAM, UNTIL - timedelta(hours=24), UNTIL, False)
    ]
    assert queued[0].managers == ("alice",) and queued[0].channel is None
    first_rows = [r for r in await world.outbox_rows() if r.kind == "teams.digest"]
    key = f"digest:{TEAM}:2026-11-23T08:00:00+00:00"
    assert {r.idempotency_key: r.payload for r in first_rows} == {
        f"{key}:person:alice": {"digest_id": queued[0].digest_id, "team": TEAM, "person": "alice"},
        f"{key}:channel:{TEAM}": {"digest_id": queued[0].digest_id, "team": TEAM},
    }
    assert all(r.task_id is None and r.status == "pending" for r in first_rows)

    # The same slot again (a restart, another instance): the same digest, nothing new.
    again = await send_digests(world.db, world.domain, UNTIL, TEAM)
    assert again[0].digest_id == queued[0].digest_id and again[0].repeat
    assert [r for r in await world.outbox_rows() if r.kind == "teams.digest"] == first_rows
    async with world.db.read() as conn:
        assert len((await conn.execute(select(digests))).all()) == 1

    # Every team at once: the other two teams get their first digest; sc-north's repeats.
    every = await send_digests(world.db, world.domain, UNTIL)
    assert [(q.team, q.repeat) for q in every] == [
        ("sc-north", True),
        ("sc-south", False),
        ("green", False),
    ]
    by_team = Counter(
        r.payload["team"] for r in await world.outbox_rows() if r.kind == "teams.digest"
    )
    assert by_team == {"sc-north": 2, "sc-south": 2, "green": 2}  # a manager + the channel

    with pytest.raises(UnknownTeam):
        await send_digests(world.db, world.domain, UNTIL, "north")


# -- the CLI ----------------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "RESPONDER_CONFIG": str(EXAMPLES / "council.yaml"),
    }
    return subprocess.run(
        _command(*args),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _command(*args: str) -> list[str]:
    code = "import sys; from responder.cli import main; main(sys.argv[1:])"
    return [sys.executable, "-c", code, *args]


def test_cli_digest_now_queues_the_team_digest(tmp_path):
    done = _cli(tmp_path, "digest", "--now", "--team", TEAM)
    assert done.returncode == 0, done.stderr
    assert f"{TEAM}: digest 1 for " in done.stdout
    assert "person:alice" in done.stdout and "channel (none linked)" in done.stdout

    async def rows():
        db = Database(f"sqlite:///{tmp_path / 'cli.db'}")
        try:
            async with db.read() as conn:
                found = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
                made = (await conn.execute(select(digests))).all()
            return found, made
        finally:
            await db.dispose()

    found, made = asyncio.run(rows())
    assert [(r.kind, r.payload) for r in found] == [
        ("teams.digest", {"digest_id": 1, "team": TEAM, "person": "alice"}),
        ("teams.digest", {"digest_id": 1, "team": TEAM}),
    ]
    [digest] = made
    assert digest.team == TEAM
    assert digest.period_end - digest.period_start == timedelta(hours=24)
    assert abs(digest.period_end - datetime.now(UTC)) < timedelta(minutes=2)

    # Every team; the second digest of sc-north starts where the first ended.
    done = _cli(tmp_path, "digest", "--now")
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()[:3]] == [
        "sc-north",
        "sc-south",
        "green",
    ]
    found, made = asyncio.run(rows())
    assert len(found) == 2 + 3 * 2
    second = [d for d in made if d.team == TEAM][-1]
    assert second.period_start == digest.period_end


def test_cli_digest_refuses_an_unknown_team(tmp_path):
    done = _cli(tmp_path, "digest", "--now", "--team", "north")
    assert done.returncode == 2
    assert "no team 'north'" in done.stderr and "sc-north, sc-south, green" in done.stderr
    assert not (tmp_path / "cli.db").exists()  # refused before touching the database


# -- delivery through Teams -------------------------------------------------------------------


@pytest.fixture
async def bot(aiohttp_client, database_url, connector) -> Bot:
    client = await aiohttp_client(build_app(settings_for(database_url)))
    return Bot(client, connector)


async def test_the_digest_reaches_a_managers_chat(bot):
    await bot.install("alice")
    await bot.connector.wait_for(lambda r: r.text and "Hello Alice" in r.text)
    task = await bot.report()  # fly-tipping in Northgate, for sc-north
    db, domain = bot.client.app[db_key], bot.client.app[domain_key]
    [queued] = await send_digests(db, domain, datetime.now(UTC) + timedelta(seconds=1), TEAM)

    conversation = personal_conversation("alice")
    [sent] = await bot.connector.wait_for(
        lambda r: r.conversation_id == conversation and r.card is not None
    )
    card = sent.card
    assert_valid_card(card)
    assert card["body"][0]["text"] == "Street Cleansing North — digest"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert (facts["New"], facts["Open now"], facts["Overdue now"]) == ("1", "1", "0")
    assert "Bob Warden" in texts(card)
    await bot.settle()
    rows = {
        r.idempotency_key.rsplit(":", 2)[-2]: r
        for r in await bot.rows(outbox, outbox.c.kind == "teams.digest")
    }
    assert rows["person"].status == "done"
    # sc-north has no linked channel: recorded, not retried.
    assert (rows["channel"].status, rows["channel"].last_error) == (
        "done",
        f"team {TEAM} has no linked channel",
    )
    assert queued.digest_id == rows["person"].payload["digest_id"]
    assert task["team"] == TEAM


async def test_a_manager_without_teams_is_parked_with_a_reason(bot):
    db, domain = bot.client.app[db_key], bot.client.app[domain_key]
    await send_digests(db, domain, datetime.now(UTC), TEAM)
    await bot.settle()
    rows = await bot.rows(outbox, outbox.c.kind == "teams.digest")
    [row] = [r for r in rows if "person" in r.payload]
    assert row.status == "parked"
    assert row.last_error == "Alice Manager has not installed Responder in Teams"
    assert bot.connector.received == []


# -- helpers ----------------------------------------------------------------------------------


def texts(card: dict) -> str:
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("text", "title", "value"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return "\n".join(found)


def open_actions(card: dict) -> list[dict]:
    """The data of every tappable "open" in the card, in order."""
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            action = node.get("selectAction")
            if isinstance(action, dict) and action.get("verb") == "open":
                assert action["type"] == "Action.Execute"
                found.append(action["data"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def _nodes(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)
