"""Erasing reporters' contact details once the council's retention period is over.

For every task closed (completed or cancelled) more than ``notify.retention_days``
before a date, the contact rows of all its reports (the first and linked duplicates)
are deleted, outright rather than blanked, so nothing of them is left in the row:

- SQLite runs with ``secure_delete=ON``, which zeroes the freed space in the file; a
  ``wal_checkpoint(TRUNCATE)`` afterwards copies the pages into the database file and
  empties the write-ahead log, so the old page images go from the ``-wal`` file too.
- PostgreSQL deletes the row (its space is reclaimed by autovacuum).

Outbox rows of kind ``notify`` for those reports are cleaned too: any key that is not
one of the few non-personal ones is dropped from the payload (today's payloads carry
none), and a message still pending is parked, "contact details erased" (the sender
would find no address anyway). Each task gets one ``contact_erased`` history event.

Residents' feedback comments (``feedback.comment``, their own words, which may name them)
go at the same cutoff: blanked, the rating kept. That is a pass of its own over every task
closed before the cutoff, not only those with contacts left, so a comment sent after its
report's contact details were erased (a feedback link outlives a short retention period)
goes at the next run.

Tasks are taken in batches, each in its own transaction, so a first run over years of
history neither holds the writer for long nor grows one huge transaction. A second run
finds nothing left to erase and changes nothing: it is safe to run daily.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from responder.config.model import Council
from responder.store.db import Database
from responder.store.schema import contacts, feedback, outbox, reports, task_events, tasks

log = logging.getLogger("responder.commands.erase")

CLOSED = ("completed", "cancelled")
PARKED_NOTE = "contact details erased"
# What a notify outbox payload may carry: ids and names, nothing about the person.
SAFE_PAYLOAD_KEYS = frozenset({"report_id", "task_id", "event", "channel", "template_id"})
BATCH = 500


@dataclass
class PurgeResult:
    as_of: date
    retention_days: int
    cutoff: datetime  # tasks closed before this instant (UTC) were erased
    tasks: int = 0
    contacts: int = 0
    parked: int = 0
    payloads: int = 0
    comments: int = 0  # residents' feedback comments blanked
    # SQLite: whether the write-ahead log was emptied; None on PostgreSQL.
    wal_truncated: bool | None = None
    task_ids: list[int] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        lines = [
            f"purge as of {self.as_of.isoformat()} (retention {self.retention_days} days: "
            f"tasks closed before {self.cutoff.isoformat().replace('+00:00', 'Z')})",
            f"  tasks: {self.tasks}",
            f"  contact details erased: {self.contacts}",
            f"  pending messages parked: {self.parked}",
            f"  outbox payloads cleaned: {self.payloads}",
            f"  feedback comments erased: {self.comments}",
        ]
        if self.wal_truncated is not None:
            lines.append(f"  write-ahead log emptied: {'yes' if self.wal_truncated else 'NO'}")
        return "\n".join(lines)


def cutoff_for(council: Council, as_of: date) -> datetime:
    """Start of the day ``retention_days`` before ``as_of``, in the council's time zone.

    A task closed on that day or later is kept: it is not yet *more than* that many
    days old on ``as_of``.
    """
    day = as_of - timedelta(days=council.file.notify.retention_days)
    return datetime.combine(day, time(0), tzinfo=council.tz).astimezone(UTC)


async def purge(
    db: Database,
    council: Council,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
    batch: int = BATCH,
) -> PurgeResult:
    """Erase contact details of reports on tasks closed before the retention cutoff."""
    now = now or datetime.now(UTC)
    as_of = as_of or now.astimezone(council.tz).date()
    retention = council.file.notify.retention_days
    result = PurgeResult(as_of, retention, cutoff_for(council, as_of))
    note = f"Reporter contact details erased after the {retention}-day retention period"
    while True:
        done = await db.run(lambda conn: _erase_batch(conn, result, note, now, batch))
        if done < batch:
            break
    result.comments = await db.run(lambda conn: _erase_comments(conn, result.cutoff))
    if db.is_sqlite:
        result.wal_truncated = await truncate_wal(db)
    log.info(
        "purge as of %s: %d tasks, %d contacts erased, %d messages parked, "
        "%d feedback comments erased",
        as_of,
        result.tasks,
        result.contacts,
        result.parked,
        result.comments,
    )
    return result


def _erase_batch(
    conn: Connection, result: PurgeResult, note: str, now: datetime, batch: int
) -> int:
    """Erase up to ``batch`` tasks' contacts; returns how many tasks were taken."""
    task_ids = list(
        conn.execute(
            select(tasks.c.id)
            .where(
                tasks.c.status.in_(CLOSED),
                tasks.c.closed_at < result.cutoff,
                select(contacts.c.report_id)
                .join(reports, reports.c.id == contacts.c.report_id)
                .where(reports.c.task_id == tasks.c.id)
                .exists(),
            )
            .order_by(tasks.c.id)
            .limit(batch)
        ).scalars()
    )
    if not task_ids:
        return 0
    by_task: dict[int, list[int]] = defaultdict(list)
    for report_id, task_id in conn.execute(
        select(contacts.c.report_id, reports.c.task_id)
        .join(reports, reports.c.id == contacts.c.report_id)
        .where(reports.c.task_id.in_(task_ids))
    ):
        by_task[task_id].append(report_id)
    report_ids = {r for ids in by_task.values() for r in ids}
    erased = conn.execute(delete(contacts).where(contacts.c.report_id.in_(report_ids))).rowcount

    for row in conn.execute(
        select(outbox.c.id, outbox.c.payload, outbox.c.status).where(
            outbox.c.kind == "notify", outbox.c.task_id.in_(task_ids)
        )
    ):
        payload = row.payload if isinstance(row.payload, dict) else {}
        if payload.get("report_id") not in report_ids:
            continue
        values: dict = {}
        if set(payload) - SAFE_PAYLOAD_KEYS:
            values["payload"] = {k: v for k, v in payload.items() if k in SAFE_PAYLOAD_KEYS}
            result.payloads += 1
        if row.status == "pending":
            values.update(status="parked", last_error=PARKED_NOTE)
            result.parked += 1
        if values:
            values["updated_at"] = now
            conn.execute(update(outbox).where(outbox.c.id == row.id).values(values))

    conn.execute(
        insert(task_events),
        [
            {
                "task_id": task_id,
                "at": now,
                "actor": "system",
                "action": "contact_erased",
                "from_status": None,
                "to_status": None,
                "note": note,
                "data": {"reports": len(by_task[task_id])},
            }
            for task_id in task_ids
        ],
    )
    result.tasks += len(task_ids)
    result.contacts += erased
    result.task_ids += task_ids
    return len(task_ids)


def _erase_comments(conn: Connection, cutoff: datetime) -> int:
    """Blank the feedback comments on tasks closed before ``cutoff`` (ratings stay)."""
    closed = select(tasks.c.id).where(tasks.c.status.in_(CLOSED), tasks.c.closed_at < cutoff)
    done = conn.execute(
        update(feedback)
        .where(feedback.c.comment.is_not(None), feedback.c.task_id.in_(closed))
        .values(comment=None)
    )
    return int(done.rowcount or 0)


async def truncate_wal(db: Database, attempts: int = 20) -> bool:
    """SQLite: checkpoint everything into the database file and empty the ``-wal`` file.

    Run outside any transaction; a reader holding an old snapshot makes it report
    'busy', so it is tried again for a few seconds.
    """
    for attempt in range(attempts):
        async with db.engine.connect() as conn:
            row = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).first()
        if row is not None and row[0] == 0:
            return True
        await asyncio.sleep(0.05 * (attempt + 1))
    log.warning("could not empty the SQLite write-ahead log: readers kept it busy")
    return False
