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
from typing import Any

from sqlalchemy import Connection, String, and_, func, select, type_coerce
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Alias
from sqlalchemy.sql.util import ClauseAdapter

from responder.domain.context import Domain
from responder.domain.task_filter import TaskFilter
from responder.domain.visibility import Scope
from responder.queries.task_list import conditions
from responder.store.schema import feedback, task_events, tasks

BATCH = 5000


def _accepted_at(table: Any = tasks):
    return (
        select(func.min(task_events.c.at))
        .where(task_events.c.task_id == table.c.id, task_events.c.action == "accept")
        .correlate(table)
        .scalar_subquery()
    )


def _rating(table: Any = tasks):
    return (
        select(func.avg(feedback.c.rating))
        .where(feedback.c.task_id == table.c.id)
        .correlate(table)
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


class _NotIndexed(Alias):
    """``tasks AS t``, with ``NOT INDEXED`` on SQLite: walk the table in id order."""

    inherit_cache = True


@compiles(_NotIndexed, "sqlite")
def _not_indexed_sqlite(element, compiler, **kw):
    text = compiler.visit_alias(element, **kw)
    return f"{text} NOT INDEXED" if kw.get("asfrom") else text


@compiles(_NotIndexed)
def _not_indexed(element, compiler, **kw):
    return compiler.visit_alias(element, **kw)


def export_statement(
    domain: Domain,
    scope: Scope,
    task_filter: TaskFilter,
    now: datetime,
    after: int,
    limit: int,
    *,
    sqlite: bool = False,
):
    """One batch: tasks after id ``after`` that ``scope`` may see and the filter asks for.

    The filter's conditions over the table walked in id order from ``after``, so the
    batches together read it once, with the accepted time and the rating (correlated
    sub-selects) for the rows returned only.

    ``sqlite``: one step, over ``tasks AS t NOT INDEXED`` (without statistics SQLite's
    planner would take an index on status or ward and sort every matching row for each
    batch; walking the rowid from ``after`` it stops at ``limit`` rows and runs the
    sub-selects for those alone), and the times as SQLite stores them (UTC text), not
    ``datetime``s: the CSV turns them into the council's time straight away, and
    SQLAlchemy's parsing of four times a row was a third of a million-row export's time.
    The first of these, two steps (the ids, then their columns), looked each row up
    again by id: a third of the read's time.

    Otherwise two steps in one statement: the ids (the conditions, ``ORDER BY id LIMIT``),
    then the columns and sub-selects for those ids."""
    walk = _NotIndexed._construct(tasks, name="t")
    adapt = ClauseAdapter(walk)
    where = [adapt.traverse(c) for c in conditions(domain, scope, task_filter, now)]
    if sqlite:
        columns = [walk.c[c.name] for c in EXPORT_COLUMNS]
        return (
            select(
                *[_as_text(c) if c.name in _TIMES else c for c in columns],
                type_coerce(_accepted_at(walk), String).label("accepted_at"),
                _rating(walk).label("rating"),
            )
            .where(and_(*where, walk.c.id > after))
            .order_by(walk.c.id)
            .limit(limit)
        )
    ids = (
        select(walk.c.id)
        .where(and_(*where, walk.c.id > after))
        .order_by(walk.c.id)
        .limit(limit)
        .correlate(None)
        .scalar_subquery()
    )
    return (
        select(*EXPORT_COLUMNS, _accepted_at().label("accepted_at"), _rating().label("rating"))
        .where(tasks.c.id.in_(ids))
        .order_by(tasks.c.id)
    )


_TIMES = frozenset({"created_at", "due_at", "closed_at"})


def _as_text(column):
    return type_coerce(column, String).label(column.name)


def export_batch(
    conn: Connection,
    domain: Domain,
    scope: Scope,
    task_filter: TaskFilter,
    now: datetime,
    after: int = 0,
    limit: int = BATCH,
) -> Sequence[Sequence[Any]]:
    """Rows of ``EXPORT_COLUMNS`` + accepted_at + rating, at most ``limit``, by id (on
    SQLite the times as UTC text: ``responder.export.rows.utc`` reads either).

    On SQLite, the driver's own tuples (SQLAlchemy binds the parameters, but the rows are
    read from its cursor): every column is text or a number there, which SQLAlchemy would
    hand over unchanged, and building its ``Row``s cost a tenth of a million-row export's
    time. PostgreSQL: ``Row``s (which read as tuples too)."""
    if conn.dialect.name != "sqlite":
        statement = export_statement(domain, scope, task_filter, now, after, limit)
        return conn.execute(statement).all()
    statement = export_statement(domain, scope, task_filter, now, after, limit, sqlite=True)
    result = conn.execute(statement)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


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
