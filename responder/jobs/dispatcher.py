"""The outbox dispatcher: delivers what the commands enqueued, at least once.

Rows are claimed by pushing their ``next_attempt_at`` forward by a lease, inside one
short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so instances never claim
the same row). A row whose sender crashed simply becomes due again when the lease ends.
Each kind of row has a handler (Teams, Notify, ...) that answers what happened.

**Lanes.** One channel never waits for another. Every row belongs to a lane, its channel
(``teams``, ``notify``, ``default``: the ``lane`` column, from the kind's prefix, see
``responder.store.outbox.lane_of``), and each lane has its own number of deliveries in
flight (``Lane.concurrency``) and its own pace (the channel's pacer, inside its
handlers: ``TeamsPacer``, ``NotifyPacer``). One loop claims for every lane that has room,
in one statement (a pick per lane, joined by UNION ALL), and never waits for a delivery:
a lane whose rows sit in Notify's pacer is simply full, and claims nothing until some of
them end, while the Teams lane goes on claiming and sending. (Before lanes, 360 Notify
messages held the next card ~10 s behind Notify's 48/s.) A busy lane is refilled a
quarter of its room at a time, not with a claim per delivery.

**Urgency.** Within a lane, the row with the earliest ``deliver_by`` goes first (then the
oldest). A row about a task takes the task's due time, which its priority set (an urgent
task is due within hours, a low one in days), so a new urgent card overtakes a backlog of
normal ones and a digest (a day); earliest-deadline-first also means a long-waiting row
of a low priority becomes urgent as its deadline nears, so none waits for ever.

**Order per task.** The rows one transaction enqueues are one step (equal
``created_at``); a task's steps go out in order, per lane: a row is not claimed while an
earlier step of the same task in the same lane is still pending (waiting, in flight or
retrying). So a card is sent before the refresh of a later change, and the resident's
"received" email before the "completed" one, by any instance, whatever their deadlines;
the cards of one step (one per officer offered a queue task) and the email and text of
one event still go out side by side. A parked row no longer holds its task's later ones
back. Rows of different lanes are not ordered against each other (a card and an email
owe each other nothing), and a frozen test clock makes every step look alike (equal
``created_at``), which only loses the ordering, never a row.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Update,
    bindparam,
    exists,
    select,
    union_all,
    update,
)

from responder.incidents import log_incident
from responder.messages import UnreadablePayload
from responder.store.db import Database
from responder.store.outbox import (
    DEFAULT_LANE,
    FETCH_LANE,
    NOTIFY_LANE,
    TEAMS_LANE,
    WEBHOOK_LANE,
    lane_of,
)
from responder.store.schema import outbox

log = logging.getLogger("responder.dispatcher")


@dataclass(frozen=True)
class Done:
    note: str | None = None


@dataclass(frozen=True)
class Retry:
    error: str
    # Seconds to wait (e.g. the other side's Retry-After); None: back off with jitter.
    after: float | None = None


@dataclass(frozen=True)
class Park:
    """Final failure: kept where a manager can see it, never silently dropped."""

    error: str


Outcome = Done | Retry | Park


@dataclass(frozen=True)
class Message:
    id: int
    kind: str
    key: str
    task_id: int | None
    payload: dict[str, Any]
    attempts: int  # including this one
    created_at: datetime | None = None


Handler = Callable[[Message], Awaitable[Outcome]]


def backoff(attempts: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter (AWS's recipe): spreads retries after an outage."""
    return random.uniform(0, min(cap, base * 2 ** (attempts - 1)))


@dataclass(frozen=True)
class Lane:
    """A channel's share of the dispatcher: at most ``concurrency`` deliveries in flight."""

    name: str
    concurrency: int


# Teams: 48 cards/s through the pacer, so a few dozen in flight cover a slow connector.
# Notify: 48/s through its pacer and 8 worker threads; kept small, so that a new urgent
# message waits behind at most this many already claimed (under a second at Notify's pace).
LANES = (
    Lane(TEAMS_LANE, 48),
    Lane(NOTIFY_LANE, 24),
    # A slow photo host or subscriber holds only its own lane.
    Lane(FETCH_LANE, 8),
    Lane(WEBHOOK_LANE, 16),
    Lane(DEFAULT_LANE, 16),
)


@dataclass
class Dispatcher:
    db: Database
    handlers: dict[str, Handler]
    clock: Callable[[], datetime]
    batch: int = 50
    lanes: tuple[Lane, ...] = LANES
    poll_seconds: float = 1.0
    lease_seconds: float = 120.0
    # Transient failures (timeouts, 5xx, 429) are retried for this long before a row is
    # parked. An age, not a count: a bad minute at the other end must not cost a message,
    # however many tries it took.
    give_up_after: timedelta = timedelta(hours=24)
    # Longest wait between tries after a failure (backoff grows to it with full jitter).
    max_backoff: float = 300.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    # Lanes worth claiming for at the next turn of the loop.
    _due: set[str] = field(default_factory=set)
    # Lanes whose last claim took all it asked for: more is waiting there.
    _backlogged: set[str] = field(default_factory=set)
    _running: dict[str, set[asyncio.Task]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [lane.name for lane in self.lanes]
        if DEFAULT_LANE not in names or len(set(names)) != len(names):
            raise ValueError(f"lanes must be distinct and include {DEFAULT_LANE!r}: {names}")
        self._by_name = {lane.name: lane for lane in self.lanes}
        self._claims: dict[tuple[str, ...], Update] = {}  # built once per set of lanes
        self._running = {name: set() for name in names}
        self._due = set(names)

    def lane_for(self, kind: str) -> Lane:
        return self._by_name.get(lane_of(kind)) or self._by_name[DEFAULT_LANE]

    def in_flight(self) -> dict[str, int]:
        return {name: len(running) for name, running in self._running.items()}

    def wake(self) -> None:
        """Called after a local commit: deliver now rather than at the next poll."""
        self._due.update(self._by_name)
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wanted = {}
            for lane in self.lanes:
                room = lane.concurrency - len(self._running[lane.name])
                if lane.name in self._due and room > 0:
                    wanted[lane.name] = min(self.batch, room)
            # A full lane is asked again when one of its deliveries ends (see _finished).
            self._due.clear()
            if wanted:
                try:
                    claimed = await self.claim(wanted)
                except Exception as exc:  # the database may be briefly unreachable: keep going
                    log.warning("claiming outbox rows failed: %s", type(exc).__name__)
                    claimed = []
                got: dict[str, int] = dict.fromkeys(wanted, 0)
                for message in claimed:
                    lane = self.lane_for(message.kind)
                    got[lane.name] = got.get(lane.name, 0) + 1
                    task = asyncio.create_task(self._deliver(message))
                    self._running[lane.name].add(task)
                    task.add_done_callback(partial(self._finished, message, lane.name))
                for name, asked in wanted.items():
                    if got.get(name, 0) >= asked:
                        self._backlogged.add(name)
                        self._due.add(name)  # more may be due right now
                    else:
                        self._backlogged.discard(name)
            if self._due:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                self._due.update(self._by_name)  # retries whose wait is over
        running = [t for tasks in self._running.values() for t in tasks]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, message: Message, lane_name: str, task: asyncio.Task) -> None:
        self._running[lane_name].discard(task)
        lane = self._by_name[lane_name]
        if lane_name in self._backlogged:
            # Refill a busy lane a quarter at a time, not with one claim per delivery.
            room = lane.concurrency - len(self._running[lane_name])
            if room < max(1, lane.concurrency // 4):
                return
        elif message.task_id is None:
            return  # nothing waits for it, and the lane had nothing more to give
        # (A row about a task may have held back that task's next step in this lane.)
        self._due.add(lane_name)
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def claim(self, wanted: dict[str, int] | int) -> list[Message]:
        """Claim up to ``wanted[lane]`` due rows of each lane named (an int: that many of
        every lane), the most urgent first, and none that must wait for an earlier step.

        One statement for all the lanes asked (a claim is on every delivery's path: each
        statement more was ~2 ms more per card on SQLite)."""
        if isinstance(wanted, int):
            wanted = dict.fromkeys(self._by_name, wanted)
        wanted = {name: limit for name, limit in wanted.items() if limit > 0}
        if not wanted:
            return []
        now = self.clock()
        lease = now + timedelta(seconds=self.lease_seconds)
        statement = self._claim_statement(tuple(wanted))
        values: dict[str, object] = {"now": now, "lease": lease}
        values |= {f"limit_{n}": limit for n, limit in enumerate(wanted.values())}
        async with self.db.write(tell=False) as conn:
            result = await conn.execute(statement, values)
        # RETURNING keeps no order: started most urgent first, they reach each channel's
        # pacer in that order.
        rows = sorted(result, key=lambda row: (row.deliver_by, row.id))
        return [Message(*row[:-1]) for row in rows]

    def _claim_statement(self, lanes: tuple[str, ...]) -> Update:
        """The claim for these lanes, built once per set of lanes with bound parameters
        (``now``, ``lease``, ``limit_<n>``): building it afresh cost ~0.8 ms a lane on
        every claim, far more than running it."""
        cached = self._claims.get(lanes)
        if cached is not None:
            return cached
        chosen = [
            select(self._due_in(name, bindparam(f"limit_{n}")).subquery(f"lane_{n}").c.id)
            for n, name in enumerate(lanes)
        ]
        ids = chosen[0] if len(chosen) == 1 else select(union_all(*chosen).subquery().c.id)
        statement = (
            update(outbox)
            .where(outbox.c.id.in_(ids.scalar_subquery()))
            .values(
                next_attempt_at=bindparam("lease"),
                attempts=outbox.c.attempts + 1,
                updated_at=bindparam("now"),
            )
            .returning(
                outbox.c.id,
                outbox.c.kind,
                outbox.c.idempotency_key,
                outbox.c.task_id,
                outbox.c.payload,
                outbox.c.attempts,
                outbox.c.created_at,
                outbox.c.deliver_by,
            )
        )
        self._claims[lanes] = statement
        return statement

    def _due_in(self, lane: str, limit: BindParameter[int]) -> Select:
        """The ids of a lane's most urgent due rows that no earlier step holds back."""
        candidate = outbox.alias("candidate")
        earlier = outbox.alias("earlier")
        if lane == DEFAULT_LANE:  # and any lane this version has no place for
            others = [name for name in self._by_name if name != DEFAULT_LANE]
            in_lane: ColumnElement[bool] = candidate.c.lane.not_in(others)
        else:
            in_lane = candidate.c.lane == lane
        held_back_by = [
            earlier.c.task_id == candidate.c.task_id,
            earlier.c.lane == candidate.c.lane,
            earlier.c.status == "pending",
            earlier.c.created_at < candidate.c.created_at,
        ]
        if lane == WEBHOOK_LANE:
            # In order per subscriber: one that is down must not hold back the others.
            held_back_by.append(
                earlier.c.payload["subscriber"].as_string()
                == candidate.c.payload["subscriber"].as_string()
            )
        conditions = [
            candidate.c.status == "pending",
            in_lane,
            candidate.c.next_attempt_at <= bindparam("now"),
        ]
        if lane != FETCH_LANE:
            # (A task's photos need no order: one slow host must not hold back the next.)
            conditions.append(~exists().where(*held_back_by).correlate(candidate))
        return (
            select(candidate.c.id)
            .where(*conditions)
            .order_by(candidate.c.deliver_by, candidate.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=candidate)
        )

    async def _deliver(self, message: Message) -> None:
        handler = self.handlers.get(message.kind)
        try:
            if handler is None:
                outcome: Outcome = Park(f"no handler for {message.kind!r} messages")
            else:
                outcome = await handler(message)
        except UnreadablePayload as exc:  # not its kind's payload: retrying cannot help
            outcome = Park(str(exc))
        except Exception as exc:  # a bug in a handler must not lose the row: retry it
            log_incident(log, f"handler for {message.kind} row {message.id} failed", exc)
            outcome = Retry(f"{type(exc).__name__} in the handler")
        await self.record(message, outcome)

    def _too_old(self, message: Message, now: datetime) -> bool:
        return message.created_at is not None and now - message.created_at >= self.give_up_after

    async def record(self, message: Message, outcome: Outcome) -> None:
        now = self.clock()
        values: dict[str, Any] = {"updated_at": now}
        if isinstance(outcome, Done):
            values.update(status="done", last_error=outcome.note)
        elif isinstance(outcome, Park) or self._too_old(message, now):
            error = outcome.error
            if not isinstance(outcome, Park):
                error = f"gave up after {message.attempts} tries: {error}"
            values.update(status="parked", last_error=error)
            log.warning("parked %s row %d: %s", message.kind, message.id, error)
        else:
            if outcome.after is not None:
                # The other side asked us to wait (Retry-After): that is pacing, not a
                # failure, so it does not use up an attempt.
                wait = outcome.after
                values["attempts"] = message.attempts - 1
            else:
                wait = backoff(message.attempts, cap=self.max_backoff)
            values.update(next_attempt_at=now + timedelta(seconds=wait), last_error=outcome.error)
        async with self.db.write(tell=False) as conn:
            await conn.execute(update(outbox).where(outbox.c.id == message.id).values(values))
