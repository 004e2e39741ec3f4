"""The scheduler: periodic work (digests, escalations, retention), once across instances.

A job has a name (its row in ``job_leases``: keep it stable), a schedule and an async
callable ``run(now, slot, since)``:

- ``slot`` is the scheduled instant being run (UTC), the latest one due;
- ``since`` is the slot that last ran successfully, so a digest can cover "since the last
  one". Slots missed while the service was down coalesce: one run, for the latest slot,
  with ``since`` the last slot that ran.

Schedules are either ``Cron(expr, tz)``, evaluated in local wall time (the council's
time zone), or ``Every(seconds)``, a fixed interval on a grid from the Unix epoch (so all
instances agree on the slots). Cron slots are computed as naive local times and then
placed on the UTC line, so "0 8 * * 1-5" is 08:00 on either side of a clock change:

- a local time skipped when the clocks go forward (01:30 on the last Sunday of March in
  the UK) runs once, at the first instant after the gap (02:00 BST, 01:00 UTC);
- a local time that happens twice when they go back runs once, at its first occurrence.
  A cron expression firing several times an hour therefore skips the repeated hour's
  second pass; work that must run every N minutes whatever the clocks say is an
  ``Every`` job.

Leadership, per job, is the ``job_leases`` row. Each instance reads the rows every tick;
for a job whose latest slot is newer than ``last_slot`` it takes the lease in one short
transaction: insert the row if missing, then

    UPDATE job_leases SET holder = me, expires_at = now + lease
    WHERE name = :job AND (expires_at IS NULL OR expires_at <= now OR holder = me)
      AND (last_slot IS NULL OR last_slot < :slot)

which on PostgreSQL is atomic across instances (a concurrent update makes it re-check its
WHERE against the committed row) and on SQLite is serialised by the single writer. The
``last_slot`` condition means an instance that read the row before another finished the
slot does not run it again. While the job runs its holder renews the lease every third
of ``lease_seconds``; a holder that dies stops renewing, the lease expires and another
instance takes the job over (``last_slot`` was never advanced, so the slot still runs).
On success ``last_slot``/``last_run_at`` are recorded and the lease released.

First sight of a job (no row): its previous slot is recorded as done, so its latest slot
(at or before now) runs once at start-up. A new install, or a job added in an upgrade,
neither skips the current period (the first digest goes out, covering one schedule
period) nor replays history.

A job that raises is logged by exception type and place only (messages may carry
personal data), ``last_slot`` stays, and the row is left with no holder but an
``expires_at`` cool-down that blocks every instance: the first retry is one tick later,
then the wait doubles up to ``max_retry_seconds``, so a broken job never hot-loops.
Jobs run at least once per slot, not exactly once, if a holder dies after the work but
before recording it: make them idempotent (the purge is; a digest records its period).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from responder.store.db import Database
from responder.store.schema import job_leases

log = logging.getLogger("responder.scheduler")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_TINY = timedelta(microseconds=1)


class Schedule(Protocol):
    def latest(self, now: datetime) -> datetime | None:
        """The latest slot at or before ``now`` (UTC), or None if there is none."""

    def previous(self, slot: datetime) -> datetime | None:
        """The latest slot strictly before ``slot``."""

    def following(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``."""


@dataclass(frozen=True)
class Every:
    """Every ``seconds``, on a grid from the Unix epoch (the same slots on every instance)."""

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("Every: the interval must be positive")

    @property
    def _period(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def latest(self, now: datetime) -> datetime:
        return EPOCH + ((now - EPOCH) // self._period) * self._period

    def previous(self, slot: datetime) -> datetime:
        return self.latest(slot - _TINY)

    def following(self, after: datetime) -> datetime:
        return self.latest(after) + self._period


@dataclass(frozen=True)
class Cron:
    """A cron expression evaluated in local wall time of ``tz`` (a name or a tzinfo)."""

    expr: str
    tz: tzinfo | str = "Europe/London"

    def __post_init__(self) -> None:
        if isinstance(self.tz, str):
            object.__setattr__(self, "tz", ZoneInfo(self.tz))
        if not croniter.is_valid(self.expr):
            raise ValueError(f"not a valid cron expression: {self.expr!r}")

    @property
    def _zone(self) -> tzinfo:
        assert not isinstance(self.tz, str)
        return self.tz

    def latest(self, now: datetime) -> datetime | None:
        return self._back(now, inclusive=True)

    def previous(self, slot: datetime) -> datetime | None:
        return self._back(slot, inclusive=False)

    def following(self, after: datetime) -> datetime | None:
        start = self._wall(after) - self._margin(after)
        it = croniter(self.expr, start)
        try:
            while True:
                slot = local_to_utc(it.get_next(datetime), self._zone)
                if slot > after:
                    return slot
        except CroniterBadDateError:
            return None

    def _back(self, t: datetime, *, inclusive: bool) -> datetime | None:
        # Wall times map onto UTC without ever going backwards, so walking back from a
        # little past t's wall time, the first slot at (or before) t is the latest one.
        start = self._wall(t) + self._margin(t) + timedelta(minutes=1)
        it = croniter(self.expr, start)
        try:
            while True:
                slot = local_to_utc(it.get_prev(datetime), self._zone)
                if slot < t or (inclusive and slot == t):
                    return slot
        except CroniterBadDateError:
            return None

    def _wall(self, t: datetime) -> datetime:
        return t.astimezone(self._zone).replace(tzinfo=None)

    def _margin(self, t: datetime) -> timedelta:
        """How far wall time can sit from UTC-plus-today's-offset near ``t`` (clock changes)."""
        here = t.astimezone(self._zone).utcoffset() or timedelta(0)
        spread = timedelta(0)
        for days in (-2, 2):
            there = (t + timedelta(days=days)).astimezone(self._zone).utcoffset() or timedelta(0)
            spread = max(spread, abs(there - here))
        return spread


def local_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """A naive local wall time as a UTC instant.

    An ambiguous time (clocks going back) is its first occurrence; a time that does not
    exist (clocks going forward) is the first instant after the gap.
    """
    first = wall.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc
    # In the gap: fold=0 and fold=1 read it with the offsets either side of the change,
    # giving two instants that straddle the change; find the change, to the second.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(utc, other), max(utc, other)
    after = hi.astimezone(tz).utcoffset()
    while hi - lo > _SECOND:
        mid = lo + ((hi - lo) // 2 // _SECOND) * _SECOND
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi


JobRun = Callable[[datetime, datetime, datetime | None], Awaitable[Any]]


@dataclass(frozen=True)
class Job:
    """``run(now, slot, since)``: ``since`` is the last slot that ran (see the module doc)."""

    name: str
    schedule: Schedule
    run: JobRun

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= 64:
            raise ValueError("a job's name is 1 to 64 characters (it keys job_leases)")


def default_holder_id() -> str:
    """This process, as a lease holder: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class _Row:
    holder: str | None
    expires_at: datetime | None
    last_slot: datetime | None


_INSERT = {
    name: dialect.insert(job_leases).on_conflict_do_nothing(index_elements=["name"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def _where_place(exc: BaseException) -> str:
    """Where an exception was raised, as module:line (never its message)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).stem}:{last.lineno}"


@dataclass
class Scheduler:
    db: Database
    jobs: list[Job]
    clock: Callable[[], datetime]
    holder_id: str = field(default_factory=default_holder_id)
    lease_seconds: float = 60.0
    tick_seconds: float = 15.0
    # Longest wait between retries of a job that keeps failing.
    max_retry_seconds: float = 900.0
    _running: dict[str, asyncio.Task] = field(default_factory=dict, init=False, repr=False)
    _failures: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        names = [job.name for job in self.jobs]
        if len(names) != len(set(names)):
            raise ValueError("two scheduled jobs share a name")
        self.jobs = list(self.jobs)

    def add(self, job: Job) -> None:
        """Register another job (before ``run()``; its name must be new)."""
        if any(known.name == job.name for known in self.jobs):
            raise ValueError(f"a job named {job.name!r} is already scheduled")
        self.jobs.append(job)

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    async def run(self) -> None:
        """Tick every ``tick_seconds`` until ``stop()``; a long job does not hold up others."""
        while not self._stopping:
            self._wake.clear()
            try:
                await self._start_due()
            except Exception as exc:  # the database may be briefly unreachable: keep going
                log.warning("scheduler tick failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_seconds)
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def stop(self) -> None:
        """Stop ticking; ``run()`` returns once the jobs in progress have finished."""
        self._stopping = True
        self._wake.set()

    async def tick(self) -> list[str]:
        """Run every job due now and wait for them; the names of the jobs this instance ran."""
        started = await self._start_due()
        outcomes = await asyncio.gather(*started)
        return [name for name in outcomes if name is not None]

    async def _start_due(self) -> list[asyncio.Task]:
        now = self.clock()
        rows = await self.db.query(_read_rows)
        started = []
        for job in self.jobs:
            if job.name in self._running:
                continue  # still running from an earlier tick
            slot = job.schedule.latest(now)
            if slot is None:
                continue
            row = rows.get(job.name)
            if row is not None:
                if row.last_slot is not None and slot <= row.last_slot:
                    continue  # done already
                live = row.expires_at is not None and row.expires_at > now
                if live and row.holder != self.holder_id:
                    continue  # another instance has it, or it is cooling down after a failure
            task = asyncio.create_task(self._run_job(job, now, slot), name=f"job:{job.name}")
            self._running[job.name] = task
            task.add_done_callback(partial(_forget, self._running, job.name))
            started.append(task)
        return started

    async def _run_job(self, job: Job, now: datetime, slot: datetime) -> str | None:
        first_since = job.schedule.previous(slot)
        try:
            taken, since = await self.db.run(
                lambda conn: self._take(conn, job.name, now, slot, first_since)
            )
        except Exception as exc:
            log.warning("could not take the lease of job %s: %s", job.name, type(exc).__name__)
            return None
        if not taken:
            return None
        if since is not None and first_since is not None and since < first_since:
            log.info(
                "job %s catching up: last ran for %s, running once for %s",
                job.name,
                since.isoformat(),
                slot.isoformat(),
            )
        renewer = asyncio.create_task(self._renew(job.name), name=f"lease:{job.name}")
        try:
            await job.run(now, slot, since)
        except Exception as exc:
            failures = self._failures[job.name] = self._failures.get(job.name, 0) + 1
            wait = min(self.tick_seconds * 2 ** (failures - 1), self.max_retry_seconds)
            log.warning(
                "job %s failed (%s at %s, %d in a row); retrying in %.0f s",
                job.name,
                type(exc).__name__,
                _where_place(exc),
                failures,
                wait,
            )
            renewer.cancel()
            retry_at = now + timedelta(seconds=wait)
            await self._write_quietly(job.name, lambda conn: self._cool(conn, job.name, retry_at))
            return job.name
        finally:
            renewer.cancel()
        self._failures.pop(job.name, None)
        await self._write_quietly(
            job.name, lambda conn: self._record(conn, job.name, slot, self.clock())
        )
        log.debug("job %s ran for %s", job.name, slot.isoformat())
        return job.name

    async def _write_quietly(self, name: str, command: Callable[[Connection], None]) -> None:
        try:
            await self.db.run(command)
        except Exception as exc:  # the lease then simply expires
            log.warning("could not record job %s: %s", name, type(exc).__name__)

    async def _renew(self, name: str) -> None:
        """Keep the lease while the job runs (a dead holder stops renewing)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                kept = await self.db.run(lambda conn: self._extend(conn, name))
            except Exception as exc:
                log.warning("could not renew the lease of job %s: %s", name, type(exc).__name__)
                continue
            if not kept:
                log.warning("job %s: lease lost while running (another instance took it)", name)
                return

    # The transactions, each short; run by Database.run (one transaction each).

    def _take(
        self,
        conn: Connection,
        name: str,
        now: datetime,
        slot: datetime,
        first_since: datetime | None,
    ) -> tuple[bool, datetime | None]:
        conn.execute(
            _INSERT[conn.dialect.name].values(
                name=name, holder=None, expires_at=None, last_slot=first_since, last_run_at=None
            )
        )
        row = conn.execute(
            update(job_leases)
            .where(
                job_leases.c.name == name,
                or_(
                    job_leases.c.expires_at.is_(None),
                    job_leases.c.expires_at <= now,
                    job_leases.c.holder == self.holder_id,
                ),
                or_(job_leases.c.last_slot.is_(None), job_leases.c.last_slot < slot),
            )
            .values(holder=self.holder_id, expires_at=now + self._lease)
            .returning(job_leases.c.last_slot)
        ).first()
        return (row is not None, row.last_slot if row is not None else None)

    def _extend(self, conn: Connection, name: str) -> bool:
        result = conn.execute(
            update(job_leases)
            .where(job_leases.c.name == name, job_leases.c.holder == self.holder_id)
            .values(expires_at=self.clock() + self._lease)
        )
        return result.rowcount > 0

    def _record(self, conn: Connection, name: str, slot: datetime, now: datetime) -> None:
        mine = conn.execute(
            update(job_leases)
            .where(job_leases.c.name == name, job_leases.c.holder == self.holder_id)
            .values(holder=None, expires_at=None, last_slot=slot, last_run_at=now)
        ).rowcount
        if not mine:
            # The lease was lost while running (renewals failed): still record the slot as
            # done, without touching whoever holds the row now.
            log.warning("job %s finished after losing its lease", name)
            conn.execute(
                update(job_leases)
                .where(
                    job_leases.c.name == name,
                    or_(job_leases.c.last_slot.is_(None), job_leases.c.last_slot < slot),
                )
                .values(last_slot=slot, last_run_at=now)
            )

    def _cool(self, conn: Connection, name: str, retry_at: datetime) -> None:
        """Release after a failure: nobody holds it, nobody may take it before ``retry_at``."""
        conn.execute(
            update(job_leases)
            .where(job_leases.c.name == name, job_leases.c.holder == self.holder_id)
            .values(holder=None, expires_at=retry_at)
        )


def _read_rows(conn: Connection) -> dict[str, _Row]:
    return {
        row.name: _Row(row.holder, row.expires_at, row.last_slot)
        for row in conn.execute(
            select(
                job_leases.c.name,
                job_leases.c.holder,
                job_leases.c.expires_at,
                job_leases.c.last_slot,
            )
        )
    }


def _forget(running: dict[str, asyncio.Task], name: str, _task: asyncio.Task) -> None:
    """Done: the job may be started again (a callback bound to its name)."""
    running.pop(name, None)
