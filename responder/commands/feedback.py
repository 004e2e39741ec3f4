"""A resident's rating of finished work (the completion message's feedback link): the one
writer of ``feedback`` rows.

One transaction (Principle 1): the task row is locked (so two posts of the same form, or
two instances, take turns), the report must still be on a completed task, and a report
already rated answers ``already`` and changes nothing. Otherwise the ``feedback`` row
(rating and comment) and one ``feedback`` history event on the task, actor ``resident``,
data ``{"rating": n}``, and whatever webhooks subscribers are owed for it.

The comment is not in the event. History is append-only and goes out through the history
API and exports; the comment is the resident's own free text, which may hold personal
details, and must go at the retention date with the contact details
(``commands/erase.purge`` blanks ``feedback.comment``). So it lives only in the
``feedback`` row, where the task page reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import Connection, insert, select

from responder.commands.subscribers import webhook_messages
from responder.config.model import Council
from responder.domain.feedback import COMMENT_MAX, RATINGS, clean_comment, rating_note
from responder.store.db import Database
from responder.store.history import append_event
from responder.store.outbox import enqueue
from responder.store.schema import feedback, reports, tasks

ACTION = "feedback"
ACTOR = "resident"


class Recorded(Enum):
    RECORDED = "recorded"
    ALREADY = "already"  # this report was rated before: nothing changed
    NOT_FOUND = "not_found"  # no such report, or its task is not completed


@dataclass(frozen=True)
class FeedbackResult:
    outcome: Recorded
    event_id: int | None = None


async def record_feedback(
    db: Database,
    council: Council,
    report_id: int,
    rating: int,
    comment: str | None,
    now: datetime,
) -> FeedbackResult:
    """Record a rating (1-5) and optional comment (cleaned here as the form reads it: at
    most COMMENT_MAX characters then, ValueError otherwise) for a report on a completed
    task."""
    if rating not in RATINGS:
        raise ValueError("a rating is 1 to 5")
    comment = clean_comment(comment) if comment is not None else None
    if comment is not None and len(comment) > COMMENT_MAX:
        raise ValueError(f"a comment is at most {COMMENT_MAX} characters")
    return await db.run(lambda conn: _record(conn, council, report_id, rating, comment, now))


def _record(
    conn: Connection,
    council: Council,
    report_id: int,
    rating: int,
    comment: str | None,
    now: datetime,
) -> FeedbackResult:
    task_id = conn.execute(
        select(reports.c.task_id).where(reports.c.id == report_id)
    ).scalar_one_or_none()
    if task_id is None:
        return FeedbackResult(Recorded.NOT_FOUND)
    task = conn.execute(
        select(tasks.c.id, tasks.c.status, tasks.c.due_at)
        .where(tasks.c.id == task_id)
        .with_for_update()
    ).first()
    if task is None or task.status != "completed":
        return FeedbackResult(Recorded.NOT_FOUND)
    if conn.execute(select(feedback.c.report_id).where(feedback.c.report_id == report_id)).first():
        return FeedbackResult(Recorded.ALREADY)
    conn.execute(
        insert(feedback).values(
            report_id=report_id,
            task_id=task_id,
            rating=rating,
            comment=comment or None,
            created_at=now,
        )
    )
    event_id = append_event(
        conn,
        task_id,
        now,
        ACTOR,
        ACTION,
        note=rating_note(rating),
        data={"rating": rating},
        from_status=task.status,
        to_status=task.status,
    )
    # Subscribers hear of it only if they ask for it (config/subscribers.py decides which
    # actions may be asked for).
    messages = webhook_messages(council, task_id, [(event_id, ACTION)], now)
    if messages:
        enqueue(conn, messages, deliver_by=task.due_at)
    return FeedbackResult(Recorded.RECORDED, event_id)


__all__ = ["ACTION", "ACTOR", "FeedbackResult", "Recorded", "record_feedback"]
