"""The outbox dispatcher: delivers what the commands enqueued, at least once.

Rows are claimed by pushing their ``next_attempt_at`` forward by a lease, inside one
short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so instances never claim
the same row). A row whose sender crashed simply becomes due again when the lease ends.
Each kind of row has a handler (Teams, Notify, ...) that answers what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from responder.incidents import log_incident
from responder.store.db import Database
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


@dataclass
class Dispatcher:
    db: Database
    handlers: dict[str, Handler]
    clock: Callable[[], datetime]
    batch: int = 50
    concurrency: int = 64
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

    def wake(self) -> None:
        """Called after a local commit: deliver now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task] = set()
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = await self.claim(min(self.batch, self.concurrency - len(running) or 1))
            except Exception as exc:  # the database may be briefly unreachable: keep going
                log.warning("claiming outbox rows failed: %s", type(exc).__name__)
                claimed = []
            for message in claimed:
                await slots.acquire()
                task = asyncio.create_task(self._deliver(message))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _t: slots.release())
            if len(claimed) >= self.batch:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def claim(self, limit: int) -> list[Message]:
        now = self.clock()
        async with self.db.write(tell=False) as conn:
            due = (
                select(outbox.c.id)
                .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(due.scalar_subquery()))
                .values(
                    next_attempt_at=now + timedelta(seconds=self.lease_seconds),
                    attempts=outbox.c.attempts + 1,
                    updated_at=now,
                )
                .returning(
                    outbox.c.id,
                    outbox.c.kind,
                    outbox.c.idempotency_key,
                    outbox.c.task_id,
                    outbox.c.payload,
                    outbox.c.attempts,
                    outbox.c.created_at,
                )
            )
            return [Message(*row) for row in rows]

    async def _deliver(self, message: Message) -> None:
        handler = self.handlers.get(message.kind)
        try:
            if handler is None:
                outcome: Outcome = Park(f"no handler for {message.kind!r} messages")
            else:
                outcome = await handler(message)
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
