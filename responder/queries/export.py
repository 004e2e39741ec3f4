"""Tasks for the exports (issue 19): the work list's filter (``queries/task_list.conditions``,
visibility first) with the columns a manager reports on, in batches.

The CSV export reads in keyset batches on the task id (``WHERE id > last ORDER BY id``,
the primary key), so any size streams at constant memory and each batch costs what the
first did; a task created while an export runs is either in it (if its id comes after the
last batch read) or not, never twice. ``extras`` adds the same report columns to a page of
the JSON API, which pages in the list's own sort order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, Row, and_, func, select

from responder.domain.context import Domain
from responder.domain.task_filter import TaskFilter
from responder.domain.visibility import Scope
from responder.queries.task_list import conditions
from responder.store.schema import feedback, task_events, tasks

BATCH = 5000


def _accepted_at():
    return (
        select(func.min(task_events.c.at))
        .where(task_events.c.task_id == tasks.c.id, task_events.c.action == "accept")
        .correlate(tasks)
        .scalar_subquery()
    )


def _rating():
    return (
        select(func.avg(feedback.c.rating))
        .where(feedback.c.task_id == tasks.c.id)
        .correlate(tasks)
        .scalar_subquery()
    )


EXPORT_COLUMNS = (
    tasks.c.id,
    tasks.c.type,
    tasks.c.priority,
    tasks.c.ward,
    tasks.c.team,
    tasks.c.assignee,
    tasks.c.source,
    tasks.c.status,
    tasks.c.outcome,
    tasks.c.created_at,
    tasks.c.due_at,
    tasks.c.closed_at,
)


@dataclass(frozen=True)
class Extras:
    outcome: str | None
    accepted_at: datetime | None
    rating: float | None
    report_count: int


def export_statement(
    domain: Domain, scope: Scope, task_filter: TaskFilter, now: datetime, after: int, limit: int
):
    """One batch: tasks after id ``after`` that ``scope`` may see and the filter asks for."""
    where = conditions(domain, scope, task_filter, now)
    where.append(tasks.c.id > after)
    return (
        select(
            *EXPORT_COLUMNS,
            _accepted_at().label("accepted_at"),
            _rating().label("rating"),
        )
        .where(and_(*where))
        .order_by(tasks.c.id)
        .limit(limit)
    )


def export_batch(
    conn: Connection,
    domain: Domain,
    scope: Scope,
    task_filter: TaskFilter,
    now: datetime,
    after: int = 0,
    limit: int = BATCH,
) -> Sequence[Row]:
    """Rows of ``EXPORT_COLUMNS`` + accepted_at + rating, at most ``limit``, by id."""
    statement = export_statement(domain, scope, task_filter, now, after, limit)
    return conn.execute(statement).all()


def extras(conn: Connection, ids: Iterable[int]) -> dict[int, Extras]:
    """The report columns the work list's rows lack, for these (already visible) tasks."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(
            tasks.c.id,
            tasks.c.outcome,
            tasks.c.report_count,
            _accepted_at().label("accepted_at"),
            _rating().label("rating"),
        ).where(tasks.c.id.in_(wanted))
    )
    return {
        r.id: Extras(
            r.outcome,
            r.accepted_at,
            float(r.rating) if r.rating is not None else None,
            r.report_count,
        )
        for r in rows
    }


def unpaged(task_filter: TaskFilter) -> TaskFilter:
    """The filter without its page (``after``/``limit`` do not apply to an export)."""
    return replace(task_filter, after=None)
