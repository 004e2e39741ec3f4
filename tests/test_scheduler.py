"""The scheduler: cron slots across UK clock changes, and one run per slot across instances."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from responder.app import build_app, scheduler_key
from responder.jobs.scheduler import Cron, Every, Job, Scheduler, local_to_utc
from responder.store import migrate
from responder.store.db import Database
from responder.store.schema import job_leases

LONDON = ZoneInfo("Europe/London")
# 2026: the clocks go forward on Sunday 29 March (01:00 GMT -> 02:00 BST) and back on
# Sunday 25 October (02:00 BST -> 01:00 GMT).


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def slots_after(schedule, start: datetime, count: int) -> list[datetime]:
    out, t = [], start
    for _ in range(count):
        t = schedule.following(t)
        out.append(t)
    return out


# --- slots, no database ---------------------------------------------------------------


def test_weekday_0800_is_0800_local_either_side_of_the_spring_change():
    weekdays = Cron("0 8 * * 1-5", LONDON)
    assert slots_after(weekdays, utc(2026, 3, 25, 12), 4) == [
        utc(2026, 3, 26, 8),  # Thu 08:00 GMT
        utc(2026, 3, 27, 8),  # Fri 08:00 GMT
        utc(2026, 3, 30, 7),  # Mon 08:00 BST
        utc(2026, 3, 31, 7),
    ]
    assert weekdays.latest(utc(2026, 3, 30, 6, 59)) == utc(2026, 3, 27, 8)
    assert weekdays.latest(utc(2026, 3, 30, 7)) == utc(2026, 3, 30, 7)
    assert weekdays.previous(utc(2026, 3, 30, 7)) == utc(2026, 3, 27, 8)


def test_weekday_0800_is_0800_local_either_side_of_the_autumn_change():
    weekdays = Cron("0 8 * * 1-5", "Europe/London")
    assert slots_after(weekdays, utc(2026, 10, 22, 7), 3) == [
        utc(2026, 10, 23, 7),  # Fri 08:00 BST
        utc(2026, 10, 26, 8),  # Mon 08:00 GMT
        utc(2026, 10, 27, 8),
    ]
    assert weekdays.latest(utc(2026, 10, 26, 7, 30)) == utc(2026, 10, 23, 7)
    assert weekdays.previous(utc(2026, 10, 26, 8)) == utc(2026, 10, 23, 7)


def test_a_time_in_the_spring_gap_runs_once_at_the_first_instant_after_it():
    nightly = Cron("30 1 * * *", LONDON)  # 01:30 does not exist on 29 March
    assert slots_after(nightly, utc(2026, 3, 27, 12), 3) == [
        utc(2026, 3, 28, 1, 30),  # 01:30 GMT
        utc(2026, 3, 29, 1, 0),  # 02:00 BST, the first instant after the gap
        utc(2026, 3, 30, 0, 30),  # 01:30 BST
    ]
    assert nightly.latest(utc(2026, 3, 29, 0, 59)) == utc(2026, 3, 28, 1, 30)
    assert nightly.latest(utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 1, 0)
    assert local_to_utc(datetime(2026, 3, 29, 1, 30), LONDON) == utc(2026, 3, 29, 1)
    assert local_to_utc(datetime(2026, 3, 29, 2, 0), LONDON) == utc(2026, 3, 29, 1)


def test_an_ambiguous_autumn_time_runs_once_at_its_first_occurrence():
    nightly = Cron("30 1 * * *", LONDON)  # 01:30 happens twice on 25 October
    assert slots_after(nightly, utc(2026, 10, 23, 12), 3) == [
        utc(2026, 10, 24, 0, 30),  # 01:30 BST
        utc(2026, 10, 25, 0, 30),  # the first 01:30 (BST), not again at 01:30 GMT
        utc(2026, 10, 26, 1, 30),  # 01:30 GMT
    ]
    # During the second 01:30 the latest slot is still the first one: nothing new is due.
    assert nightly.latest(utc(2026, 10, 25, 1, 45)) == utc(2026, 10, 25, 0, 30)


def test_frequent_cron_slots_never_repeat_or_go_backwards_across_changes():
    quarterly = Cron("*/15 * * * *", LONDON)
    for day in (utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)):
        slots = slots_after(quarterly, day, 30)
        assert slots == sorted(set(slots))
        for slot in slots:
            assert quarterly.latest(slot) == slot
            assert quarterly.latest(slot - timedelta(seconds=1)) < slot
    spring = slots_after(quarterly, utc(2026, 3, 29, 0, 30), 4)
    # 01:00-01:45 GMT-side wall times fall in the gap: one run at 02:00 BST (01:00 UTC).
    assert spring == [utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 15)] + [
        utc(2026, 3, 29, 1, 30)
    ]


def test_interval_slots_sit_on_a_grid_every_instance_agrees_on():
    minute = Every(60)
    assert minute.latest(utc(2026, 11, 23, 9, 0, 59)) == utc(2026, 11, 23, 9, 0)
    assert minute.latest(utc(2026, 11, 23, 9, 1)) == utc(2026, 11, 23, 9, 1)
    assert minute.previous(utc(2026, 11, 23, 9, 1)) == utc(2026, 11, 23, 9, 0)
    assert minute.following(utc(2026, 11, 23, 9, 0, 1)) == utc(2026, 11, 23, 9, 1)
    with pytest.raises(ValueError):
        Every(0)
    with pytest.raises(ValueError):
        Cron("not cron", LONDON)


# --- scheduling against the real databases ----------------------------------------------


class Recorder:
    """A job that records (slot, since) and can be told to fail first."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[datetime, datetime | None]] = []
        self.fail = fail

    async def __call__(self, now: datetime, slot: datetime, since: datetime | None) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("could not email alice@example.com")  # must never be logged
        self.calls.append((slot, since))


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


async def lease_row(db: Database, name: str):
    return await db.query(
        lambda conn: conn.execute(select(job_leases).where(job_leases.c.name == name)).first()
    )


async def test_first_sight_runs_the_latest_slot_once_since_the_one_before(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0)  # a Monday, after the 08:00 digest slot
    digest = Recorder()
    scheduler = Scheduler(db, [Job("digest", Cron("0 8 * * 1-5", LONDON), digest)], clock, "a")
    assert await scheduler.tick() == ["digest"]
    assert digest.calls == [(utc(2026, 11, 23, 8), utc(2026, 11, 20, 8))]  # since Friday's
    assert await scheduler.tick() == []
    row = await lease_row(db, "digest")
    assert (row.holder, row.expires_at) == (None, None)
    assert row.last_slot == utc(2026, 11, 23, 8)
    assert row.last_run_at == clock.now


async def test_slots_missed_while_down_run_once_at_start_up(db, clock):
    daily = Cron("0 8 * * *", LONDON)
    clock.now = utc(2026, 11, 23, 8, 0, 5)
    digest = Recorder()
    assert await Scheduler(db, [Job("digest", daily, digest)], clock, "a").tick() == ["digest"]
    # Down for three days of slots (24th, 25th, 26th); a new process starts on the 26th.
    clock.now = utc(2026, 11, 26, 10)
    restarted = Scheduler(db, [Job("digest", daily, digest)], clock, "b")
    assert await restarted.tick() == ["digest"]
    assert await restarted.tick() == []
    assert digest.calls == [
        (utc(2026, 11, 23, 8), utc(2026, 11, 22, 8)),
        (utc(2026, 11, 26, 8), utc(2026, 11, 23, 8)),  # one run, since the last one that ran
    ]


async def test_an_interval_job_runs_once_per_slot(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0, 10)
    escalate = Recorder()
    scheduler = Scheduler(db, [Job("escalations", Every(60), escalate)], clock, "a")
    assert await scheduler.tick() == ["escalations"]
    clock.now += timedelta(seconds=30)
    assert await scheduler.tick() == []
    clock.now += timedelta(seconds=30)
    assert await scheduler.tick() == ["escalations"]
    clock.now += timedelta(minutes=10)
    assert await scheduler.tick() == ["escalations"]
    assert [slot for slot, _ in escalate.calls] == [
        utc(2026, 11, 23, 9, 0),
        utc(2026, 11, 23, 9, 1),
        utc(2026, 11, 23, 9, 11),
    ]
    assert escalate.calls[-1][1] == utc(2026, 11, 23, 9, 1)


async def test_two_instances_on_one_database_run_each_slot_exactly_once(database_url, clock):
    await migrate.upgrade(setup := Database(database_url))
    await setup.dispose()
    first, second = Database(database_url), Database(database_url)
    runs: dict[str, list[tuple[datetime, datetime | None, str]]] = {"minute": [], "five": []}

    def job(name: str, holder: str):
        async def run(now: datetime, slot: datetime, since: datetime | None) -> None:
            runs[name].append((slot, since, holder))
            for _ in range(3):
                await asyncio.sleep(0)  # let the other instance try meanwhile

        return run

    def instance(db: Database, holder: str) -> Scheduler:
        return Scheduler(
            db,
            [
                Job("minute", Every(60), job("minute", holder)),
                Job("five", Cron("*/5 * * * *", LONDON), job("five", holder)),
            ],
            clock,
            holder,
        )

    a, b = instance(first, "host-a:1:aa"), instance(second, "host-b:2:bb")
    clock.now = utc(2026, 10, 25, 0, 0, 30)  # across the autumn change, for good measure
    seen: list[datetime] = []
    try:
        for step in range(90):
            clock.now += timedelta(seconds=30 if step % 3 else 60)
            seen.append(clock.now)
            await asyncio.gather(a.tick(), b.tick(), b.tick(), a.tick())
    finally:
        await first.dispose()
        await second.dispose()

    for name, schedule in (("minute", Every(60)), ("five", Cron("*/5 * * * *", LONDON))):
        slots = [slot for slot, _, _ in runs[name]]
        assert len(slots) == len(set(slots)), f"{name}: a slot ran twice"
        # Every slot some tick saw as due ran, in order, each with `since` the one before.
        assert slots == sorted({schedule.latest(now) for now in seen})
        for (_, since, _), before in zip(runs[name][1:], slots, strict=False):
            assert since == before
    # An hour of minutes; five-minute slots 00:00-00:55 UTC, the repeated 01:xx not twice.
    assert len(runs["minute"]) == 60 and len(runs["five"]) == 12


async def test_a_dead_holders_lease_is_taken_over(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0)
    slot, previous = utc(2026, 11, 23, 8), utc(2026, 11, 20, 8)
    await db.run(
        lambda conn: conn.execute(
            insert(job_leases).values(
                name="digest",
                holder="gone:99:dead",
                expires_at=clock.now - timedelta(seconds=1),
                last_slot=previous,
            )
        )
    )
    digest = Recorder()
    scheduler = Scheduler(db, [Job("digest", Cron("0 8 * * 1-5", LONDON), digest)], clock, "me")
    assert await scheduler.tick() == ["digest"]
    assert digest.calls == [(slot, previous)]
    row = await lease_row(db, "digest")
    assert (row.holder, row.last_slot) == (None, slot)


async def test_a_live_lease_is_left_alone_until_it_expires(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0)
    await db.run(
        lambda conn: conn.execute(
            insert(job_leases).values(
                name="digest",
                holder="busy:7:live",
                expires_at=clock.now + timedelta(seconds=30),
                last_slot=utc(2026, 11, 20, 8),
            )
        )
    )
    digest = Recorder()
    scheduler = Scheduler(db, [Job("digest", Cron("0 8 * * 1-5", LONDON), digest)], clock, "me")
    assert await scheduler.tick() == []
    # Even bypassing the read-side check, the UPDATE refuses a live lease.
    taken = await db.run(
        lambda conn: scheduler._take(conn, "digest", clock.now, utc(2026, 11, 23, 8), None)
    )
    assert taken == (False, None)
    clock.now += timedelta(seconds=31)
    assert await scheduler.tick() == ["digest"]
    assert digest.calls == [(utc(2026, 11, 23, 8), utc(2026, 11, 20, 8))]


async def test_a_holder_that_dies_mid_run_is_taken_over_when_its_lease_expires(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0, 10)
    started = asyncio.Event()

    async def hangs(now, slot, since):
        started.set()
        await asyncio.Event().wait()

    dying = Scheduler(db, [Job("escalations", Every(60), hangs)], clock, "dying", lease_seconds=60)
    doomed = asyncio.create_task(dying.tick())
    await started.wait()
    doomed.cancel()  # the process dies: no release, no more renewals
    with pytest.raises(asyncio.CancelledError):
        await doomed
    survivor_job = Recorder()
    survivor = Scheduler(db, [Job("escalations", Every(60), survivor_job)], clock, "survivor")
    clock.now += timedelta(seconds=30)
    assert await survivor.tick() == []  # still leased
    clock.now += timedelta(seconds=31)  # lease over (and a new minute slot)
    assert await survivor.tick() == ["escalations"]
    assert survivor_job.calls == [(utc(2026, 11, 23, 9, 1), utc(2026, 11, 23, 8, 59))]


async def test_a_running_job_renews_its_lease(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0, 10)
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow(now, slot, since):
        started.set()
        await finish.wait()

    a = Scheduler(db, [Job("purge", Every(60), slow)], clock, "a", lease_seconds=0.3)
    running = asyncio.create_task(a.tick())
    await started.wait()
    clock.now += timedelta(hours=1)  # far past the first expiry...
    await asyncio.sleep(0.25)  # ...but the holder renewed it meanwhile
    b = Scheduler(db, [Job("purge", Every(60), Recorder())], clock, "b")
    assert await b.tick() == []
    finish.set()
    assert await running == ["purge"]
    assert (await lease_row(db, "purge")).holder is None


async def test_a_failing_job_is_retried_at_the_next_tick_and_logs_only_its_type(db, clock, caplog):
    clock.now = utc(2026, 11, 23, 9, 0)
    flaky = Recorder(fail=1)
    scheduler = Scheduler(
        db, [Job("digest", Cron("0 8 * * 1-5", LONDON), flaky)], clock, "a", tick_seconds=15
    )
    with caplog.at_level(logging.WARNING, logger="responder.scheduler"):
        assert await scheduler.tick() == ["digest"]
    assert "RuntimeError" in caplog.text
    assert "alice" not in caplog.text and "example.com" not in caplog.text
    row = await lease_row(db, "digest")
    assert row.holder is None  # released
    assert row.last_slot == utc(2026, 11, 20, 8)  # not advanced
    assert await scheduler.tick() == []  # no hot loop: not again at once
    clock.now += timedelta(seconds=15)
    assert await scheduler.tick() == ["digest"]
    assert flaky.calls == [(utc(2026, 11, 23, 8), utc(2026, 11, 20, 8))]
    assert (await lease_row(db, "digest")).last_slot == utc(2026, 11, 23, 8)


async def test_a_job_that_keeps_failing_waits_longer_each_time(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0)
    flaky = Recorder(fail=2)
    job = Job("digest", Cron("0 8 * * 1-5", LONDON), flaky)
    scheduler = Scheduler(db, [job], clock, "a", tick_seconds=10)
    other = Scheduler(db, [job], clock, "b", tick_seconds=10)
    assert await scheduler.tick() == ["digest"]  # fails: retry after 10 s
    clock.now += timedelta(seconds=10)
    assert await scheduler.tick() == ["digest"]  # fails again: retry after 20 s
    clock.now += timedelta(seconds=10)
    assert await scheduler.tick() == []
    assert await other.tick() == []  # the cool-down holds for every instance
    clock.now += timedelta(seconds=10)
    assert await scheduler.tick() == ["digest"]
    assert flaky.calls == [(utc(2026, 11, 23, 8), utc(2026, 11, 20, 8))]


async def test_run_ticks_in_the_background_until_stopped(db, clock):
    clock.now = utc(2026, 11, 23, 9, 0)
    ran = asyncio.Event()

    async def job(now, slot, since):
        ran.set()

    scheduler = Scheduler(db, [], clock, "a", tick_seconds=0.01)
    scheduler.add(Job("escalations", Every(60), job))
    with pytest.raises(ValueError):
        scheduler.add(Job("escalations", Every(60), job))
    runner = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(ran.wait(), 5)
    scheduler.stop()
    await asyncio.wait_for(runner, 5)


async def test_the_app_schedules_purge_digest_and_escalations(aiohttp_client, settings, clock):
    app = build_app(settings, clock=clock)
    scheduler = app[scheduler_key]
    names = ["purge", "statistics", "digest", "escalations"]
    assert [job.name for job in scheduler.jobs] == names
    await aiohttp_client(app)  # start-up: migrations
    # First sight: each job's latest slot runs once (Monday 23 November, 09:00 UTC).
    assert sorted(await scheduler.tick()) == sorted(names)
    row = await lease_row(app[scheduler_key].db, "purge")
    assert row.last_slot == utc(2026, 11, 23, 3, 30)  # 03:30 GMT
    row = await lease_row(app[scheduler_key].db, "digest")
    assert row.last_slot == utc(2026, 11, 23, 8, 0)  # "0 8 * * 1-5", 08:00 GMT
    assert await scheduler.tick() == []
