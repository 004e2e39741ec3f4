"""Lists of tasks for the work list, the map, the task API and exports: one filter
(``domain/task_filter.py``), always inside the viewer's ``Scope``.

Pages are keyset pages on (sort key, id), never OFFSET: the next page starts after the last
row's key, so a task created while someone pages through the list neither appears twice
nor pushes another out of sight, and page 500 costs what page 1 does.

Every statement here ANDs ``visible(scope)`` (``queries/scope.py``): a filter narrows what
the viewer may see and never widens it, so ``ward=Elsewhere`` for a councillor of one ward
is simply empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import product

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union,
)

from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES
from responder.domain.reference import format_reference
from responder.domain.task_filter import (
    SORTS,
    UNASSIGNED,
    TaskFilter,
    cursor_after,
    day_bounds,
    like_pattern,
)
from responder.domain.visibility import Scope
from responder.queries.scope import visible
from responder.store.schema import follows, tasks

MAP_CAP = 5000
_OPEN = frozenset(s.value for s in OPEN_STATUSES)


@dataclass(frozen=True)
class TaskRow:
    """One task as a list shows it."""

    id: int
    reference: str
    type: str
    type_name: str
    priority: str
    status: str
    ward: str
    team: str
    team_name: str
    assignee: str | None
    assignee_name: str | None
    source: str
    address: str | None
    created_at: datetime
    due_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class Page:
    rows: tuple[TaskRow, ...]
    next_cursor: str | None  # None: this is the last page


@dataclass(frozen=True)
class MapPoint:
    id: int
    reference: str
    lat: float
    lon: float
    type: str
    priority: str
    status: str
    overdue: bool


@dataclass(frozen=True)
class MapPoints:
    points: tuple[MapPoint, ...]
    capped: bool  # more tasks matched than ``cap``: these are the first by the sort


def _rank(domain: Domain) -> ColumnElement[int]:
    """The council's priority order (0 = most urgent) as SQL; unknown names last."""
    names = domain.council.priority_names
    return case(
        {name: literal(i) for i, name in enumerate(names)},
        value=tasks.c.priority,
        else_=literal(len(names)),
    )


def _statuses(task_filter: TaskFilter) -> tuple[str, ...]:
    return tuple(s for s in task_filter.statuses if not task_filter.overdue or s in _OPEN)


def conditions(
    domain: Domain, scope: Scope, task_filter: TaskFilter, now: datetime
) -> list[ColumnElement[bool]]:
    """The WHERE clauses for ``task_filter`` within ``scope`` (visibility first, always)."""
    f = task_filter
    tz = domain.council.tz
    where: list[ColumnElement[bool]] = [visible(scope)]
    statuses = _statuses(f)
    if len(statuses) == 1:
        where.append(tasks.c.status == statuses[0])
    else:
        where.append(tasks.c.status.in_(statuses))
    if f.overdue:
        where.append(tasks.c.due_at < now)
    for column, values in (
        (tasks.c.priority, f.priorities),
        (tasks.c.type, f.types),
        (tasks.c.ward, f.wards),
        (tasks.c.team, f.teams),
        (tasks.c.source, f.sources),
    ):
        if len(values) == 1:
            where.append(column == values[0])
        elif values:
            where.append(column.in_(values))
    if f.officers:
        people = [p for p in f.officers if p != UNASSIGNED]
        either: list[ColumnElement[bool]] = []
        if people:
            either.append(tasks.c.assignee.in_(people))
        if UNASSIGNED in f.officers:
            either.append(tasks.c.assignee.is_(None))
        where.append(or_(*either))
    for column, start, end in (
        (tasks.c.created_at, f.created_from, f.created_to),
        (tasks.c.due_at, f.due_from, f.due_to),
        (tasks.c.closed_at, f.closed_from, f.closed_to),
    ):
        low, high = day_bounds(start, end, tz)
        if low is not None:
            where.append(column >= low)
        if high is not None:
            where.append(column < high)
    if f.reference_id is not None:
        where.append(tasks.c.id == f.reference_id)
    for word in f.words:
        pattern = like_pattern(word)
        where.append(
            or_(
                func.lower(tasks.c.description).like(pattern, escape="\\"),
                func.lower(func.coalesce(tasks.c.address, "")).like(pattern, escape="\\"),
            )
        )
    return where


def _order(domain: Domain, sort: str) -> list[ColumnElement]:
    column_name, descending = SORTS[sort]
    if sort == "priority":
        keys = [_rank(domain), tasks.c.due_at, tasks.c.id]
    else:
        keys = [tasks.c[column_name], tasks.c.id]
    return [k.desc() for k in keys] if descending else [k.asc() for k in keys]


def _keyset(domain: Domain, task_filter: TaskFilter) -> ColumnElement[bool] | None:
    cursor = task_filter.after
    if cursor is None:
        return None
    column_name, descending = SORTS[cursor.sort]
    moment = datetime.fromisoformat(str(cursor.key[-1]))
    if cursor.sort == "priority":
        row = tuple_(_rank(domain), tasks.c.due_at, tasks.c.id)
        after = tuple_(
            literal(int(cursor.key[0])), literal(moment, tasks.c.due_at.type), literal(cursor.id)
        )
    else:
        column = tasks.c[column_name]
        row = tuple_(column, tasks.c.id)
        after = tuple_(literal(moment, column.type), literal(cursor.id))
    return row < after if descending else row > after


_LIST_COLUMNS = (
    tasks.c.id,
    tasks.c.type,
    tasks.c.priority,
    tasks.c.status,
    tasks.c.ward,
    tasks.c.team,
    tasks.c.assignee,
    tasks.c.source,
    tasks.c.address,
    tasks.c.created_at,
    tasks.c.due_at,
    tasks.c.updated_at,
    tasks.c.closed_at,
)


def _scope_arms(scope: Scope) -> list[ColumnElement[bool]]:
    """``visible(scope)``'s OR, one clause per part (each team, each ward, own, followed):
    each part is then an index range of its own (see ``_narrowed``)."""
    if scope.everything:
        return [true()]
    if scope.person_id is None:  # a read key (issue 19): its teams and wards only
        return [tasks.c.team == t for t in sorted(scope.teams)] + [
            tasks.c.ward == w for w in sorted(scope.wards)
        ]
    followed = select(follows.c.task_id).where(follows.c.person_id == scope.person_id)
    arms: list[ColumnElement[bool]] = [
        tasks.c.id.in_(followed),
        tasks.c.assignee == scope.person_id,
    ]
    arms += [tasks.c.team == team for team in sorted(scope.teams)]
    arms += [tasks.c.ward == ward for ward in sorted(scope.wards)]
    return arms


def _narrowed(
    domain: Domain,
    scope: Scope,
    task_filter: TaskFilter,
    now: datetime,
    columns: Sequence[ColumnElement],
    limit: int,
    *,
    keyset: bool,
) -> Select:
    """The first ``limit`` rows the filter asks for within the scope, in the sort's order.

    ``visible(scope)`` is an OR over teams, wards, the assignee and follows: as one WHERE
    clause the planner fetches every visible open task and sorts them all (a manager of two
    teams: tens of thousands of rows over a million tasks). Instead each part of the OR and
    each status is its own ``ORDER BY ... LIMIT`` over an index range (``tasks`` indexes
    (team, status, due_at), (ward, status, due_at), (assignee, status, due_at)), and the
    few rows they give are merged: the ids found, then the rows, again ``AND
    visible(scope)`` with every condition, in order. The result is exactly the single
    statement's.
    """
    where = conditions(domain, scope, task_filter, now)
    split_status = task_filter.sort in ("due", "-due", "priority")
    # Everything but visible(scope), which the arms spell out (and the status, when each
    # arm asks for one): conditions() puts those two first.
    rest = where[2:] if split_status else where[1:]
    after = _keyset(domain, task_filter) if keyset else None
    if after is not None:
        where.append(after)
    order = _order(domain, task_filter.sort)
    statuses: list[str | None] = list(_statuses(task_filter)) if split_status else [None]
    # Most urgent first: each priority is an arm of its own too, so each arm is in the
    # index's order (due_at, id), and the cursor's rank says which arms it cuts.
    by_priority = task_filter.sort == "priority"
    priorities: list[str | None] = [None]
    if by_priority:
        priorities = list(task_filter.priorities or domain.council.priority_names)
    arm_order = [tasks.c.due_at.asc(), tasks.c.id.asc()] if by_priority else order
    cursor = task_filter.after if keyset else None
    column_name, descending = SORTS[task_filter.sort]
    key_column = tasks.c.due_at if by_priority else tasks.c[column_name]
    arms = []
    for arm in _scope_arms(scope):
        for status, priority in product(statuses, priorities):
            clauses = [arm, *rest]
            rank = 0
            if status is not None:
                clauses.append(tasks.c.status == status)
            if priority is not None:
                clauses.append(tasks.c.priority == priority)
                rank = domain.council.priority_rank(priority)
                if cursor is not None:
                    if rank < int(cursor.key[0]):
                        continue  # all of this priority came before the cursor
                    if rank == int(cursor.key[0]):
                        moment = datetime.fromisoformat(str(cursor.key[-1]))
                        clauses.append(
                            tuple_(tasks.c.due_at, tasks.c.id)
                            > tuple_(literal(moment, tasks.c.due_at.type), literal(cursor.id))
                        )
            elif after is not None:
                clauses.append(after)
            arms.append(
                select(tasks.c.id, key_column.label("k"), literal(rank).label("r"))
                .where(and_(*clauses))
                .order_by(*arm_order)
                .limit(limit)
                .subquery()
            )
    if not arms:
        return select(*columns).where(false())
    # The arms' rows (id, sort key, rank: all in the index), merged and cut to the page
    # before any task row is read; UNION drops a task two arms both found.
    found = (
        union(*(select(a.c.id, a.c.k, a.c.r) for a in arms))
        if len(arms) > 1
        else select(arms[0].c.id, arms[0].c.k, arms[0].c.r)
    ).subquery()
    merged = [found.c.r, found.c.k, found.c.id] if by_priority else [found.c.k, found.c.id]
    top = (
        select(found.c.id)
        .order_by(*(c.desc() if descending else c.asc() for c in merged))
        .limit(limit)
    )
    return (
        select(*columns)
        .where(tasks.c.id.in_(top.scalar_subquery()), and_(*where))
        .order_by(*order)
        .limit(limit)
    )


def list_statement(domain: Domain, scope: Scope, task_filter: TaskFilter, now: datetime) -> Select:
    """The page's statement (one row more than the page, to know whether another follows)."""
    return _narrowed(
        domain, scope, task_filter, now, _LIST_COLUMNS, task_filter.limit + 1, keyset=True
    )


def _is_overdue(status: str, due_at: datetime, now: datetime) -> bool:
    return status in _OPEN and due_at < now


def list_tasks(
    conn: Connection, domain: Domain, scope: Scope, task_filter: TaskFilter, now: datetime
) -> Page:
    """One page of the tasks ``scope`` may see that ``task_filter`` asks for."""
    rows = conn.execute(list_statement(domain, scope, task_filter, now)).all()
    more = len(rows) > task_filter.limit
    rows = rows[: task_filter.limit]
    council = domain.council
    people = {p.id: p.name for p in council.file.people}
    team_names = {t.code: t.name for t in council.file.teams}
    prefix = domain.prefix
    out = []
    for r in rows:
        task_type = council.task_type(r.type)
        out.append(
            TaskRow(
                id=r.id,
                reference=format_reference(prefix, r.id),
                type=r.type,
                type_name=task_type.name if task_type else r.type,
                priority=r.priority,
                status=r.status,
                ward=r.ward,
                team=r.team,
                team_name=team_names.get(r.team, r.team),
                assignee=r.assignee,
                assignee_name=people.get(r.assignee) if r.assignee else None,
                source=r.source,
                address=r.address,
                created_at=r.created_at,
                due_at=r.due_at,
                updated_at=r.updated_at,
                closed_at=r.closed_at,
                overdue=_is_overdue(r.status, r.due_at, now),
            )
        )
    next_cursor = None
    if more and out:
        last = out[-1]
        column_name, _ = SORTS[task_filter.sort]
        rank = None
        if task_filter.sort == "priority":
            names = council.priority_names
            rank = names.index(last.priority) if last.priority in names else len(names)
        moment = last.due_at if task_filter.sort == "priority" else getattr(last, column_name)
        next_cursor = cursor_after(task_filter.sort, rank, moment, last.id).encode()
    return Page(tuple(out), next_cursor)


def map_points(
    conn: Connection,
    domain: Domain,
    scope: Scope,
    task_filter: TaskFilter,
    now: datetime,
    cap: int = MAP_CAP,
) -> MapPoints:
    """Every task the filter asks for as points, up to ``cap`` (the first by its sort);
    the cursor and page size do not apply."""
    # Overdue worked out in SQL: 5,000 due times are not read into datetimes for it.
    overdue = case(
        (and_(tasks.c.status.in_(sorted(_OPEN)), tasks.c.due_at < now), literal(1)),
        else_=literal(0),
    ).label("overdue")
    columns = (
        tasks.c.id,
        tasks.c.lat,
        tasks.c.lon,
        tasks.c.type,
        tasks.c.priority,
        tasks.c.status,
        overdue,
    )
    if task_filter.sort in ("created", "-created", "updated", "-updated"):
        # By creation or change: each part of the scope read in that order through
        # (team, created_at) and the like, rather than every visible task sorted.
        statement = _narrowed(domain, scope, task_filter, now, columns, cap + 1, keyset=False)
    else:
        # By due time or priority, one statement: the arms would each read ``cap`` rows
        # (a manager of two teams: 16 arms, 33,000 ids to merge over a million tasks), and
        # PostgreSQL's parallel bitmap scan of the visible open tasks measured faster
        # (SQLite: about the same).
        statement = (
            select(*columns)
            .where(and_(*conditions(domain, scope, task_filter, now)))
            .order_by(*_order(domain, task_filter.sort))
            .limit(cap + 1)
        )
    rows: Sequence = conn.execute(statement).all()
    prefix = domain.prefix
    points = tuple(
        MapPoint(
            task_id,
            format_reference(prefix, task_id),
            lat,
            lon,
            type_,
            priority,
            status,
            bool(overdue),
        )
        for task_id, lat, lon, type_, priority, status, overdue in rows[:cap]
    )
    return MapPoints(points, len(rows) > cap)
