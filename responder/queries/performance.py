"""The performance page's figures: a few GROUP BY statements over the tasks a viewer may see.

Every statement reads through ``queries.scope.visible(scope)``. So that the planner can use
the tasks' indexes ((team, created_at), (team, closed_at), (status, team), (ward, status))
instead of scanning a million rows for the rule's OR, each statement reads the visible tasks
as three disjoint arms, UNION ALL:

- the scope's **own** tasks: its teams' (staff) or its wards' (councillors), which is where
  the indexes lead;
- the **others** it may see, outside those teams or wards: tasks it follows (a handful,
  found by id through ``follows``), and tasks assigned to it that it does not follow (the
  (assignee, status, ...) index).

Every arm also carries ``visible(scope)`` itself, so nothing outside the rule is ever counted,
and together they are exactly the visible tasks, each once (the rule is "own teams or wards, or
followed, or assigned"). The trend's day or week is worked out in SQL by a CASE over the
buckets' bounds (computed in the council's time zone in Python, so both databases agree and
daylight saving is exact): one statement per figure, not one per bucket.

Statements (each over the period's bounds and the page's filters):

1. open now, by priority × team × ward (× officer × status for staff's loads);
2. created in the period, by priority × team × ward × bucket × type (the busiest types);
3. completed in the period, by priority × team × ward × bucket, with how many in time;
4. residents' ratings left in the period, by team.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    false,
    func,
    not_,
    or_,
    select,
    union_all,
)

from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.performance import (
    OfficerLoad,
    Performance,
    Period,
    Rating,
    Tally,
    buckets,
    busiest,
)
from responder.domain.visibility import Scope
from responder.queries.scope import visible
from responder.store.schema import feedback, follows, tasks

_OPEN = sorted(s.value for s in OPEN_STATUSES)
_COMPLETED = Status.COMPLETED.value


@dataclass(frozen=True)
class Filters:
    """The page's own narrowing (already checked against what the viewer may choose)."""

    team: str | None = None
    ward: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.team is not None:
            found.append(tasks.c.team == self.team)
        if self.ward is not None:
            found.append(tasks.c.ward == self.ward)
        return found


def _own(scope: Scope) -> ColumnElement[bool] | None:
    """The part of the rule the indexes serve: the scope's teams or wards."""
    clauses: list[ColumnElement[bool]] = []
    if scope.teams:
        clauses.append(tasks.c.team.in_(sorted(scope.teams)))
    if scope.wards:
        clauses.append(tasks.c.ward.in_(sorted(scope.wards)))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def visible_arms(scope: Scope, columns: list, where: list[ColumnElement[bool]]) -> list[Select]:
    """``select(*columns).where(*where)`` over the visible tasks, as the arms of a UNION ALL
    (see the module's docstring): disjoint, so each visible task is counted once. Empty
    when the scope sees nothing."""
    if scope.everything:
        return [select(*columns).where(*where)]
    if scope.person_id is None:
        return []
    seen = visible(scope)
    own = _own(scope)
    outside = [not_(own)] if own is not None else []
    followed = select(follows.c.task_id).where(follows.c.person_id == scope.person_id)
    arms = []
    if own is not None:
        arms.append(select(*columns).where(own, seen, *where))
    # Followed outside the own teams or wards: a few, by id.
    arms.append(select(*columns).where(tasks.c.id.in_(followed), *outside, seen, *where))
    # Assigned to them outside those (and not followed): through (assignee, status, ...).
    arms.append(
        select(*columns).where(
            tasks.c.assignee == scope.person_id,
            tasks.c.id.not_in(followed),
            *outside,
            seen,
            *where,
        )
    )
    return arms


def _source(scope: Scope, columns: list, where: list[ColumnElement[bool]]):
    arms = visible_arms(scope, columns, where)
    if not arms:
        return select(*columns).where(false()).subquery("seen")
    return union_all(*arms).subquery("seen") if len(arms) > 1 else arms[0].subquery("seen")


def _sum(condition: ColumnElement[bool]):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _bucket_of(column, bounds: list[datetime]):
    """The index of the bucket ``column`` falls in, given each bucket's end (ascending)."""
    return case(*[(column < end, i) for i, end in enumerate(bounds)], else_=-1).label("bucket")


def read_performance(
    conn: Connection,
    domain: Domain,
    scope: Scope,
    period: Period,
    now: datetime,
    filters: Filters = Filters(),
    *,
    with_officers: bool,
) -> Performance:
    council = domain.council
    tz = council.tz
    bucket_list = buckets(period, tz)
    bounds = [b.end for b in bucket_list]
    narrowing = filters.clauses()
    team_names = {t.code: t.name for t in council.file.teams}
    type_names = {t.code: t.name for t in council.file.task_types}
    ward_order = [w.name for w in council.wards]
    tally = Tally(
        period,
        bucket_list,
        names={
            "priority": {p: p.capitalize() for p in council.priority_names},
            "team": team_names,
            "ward": {w: w for w in ward_order},
        },
        orders={
            "priority": council.priority_names,
            "team": sorted(team_names, key=lambda code: team_names[code]),
            "ward": ward_order,
        },
    )
    cols = [tasks.c.priority, tasks.c.team, tasks.c.ward]

    # 1. Open now (and, for staff, each officer's load).
    extra = [tasks.c.assignee, tasks.c.status] if with_officers else []
    src = _source(scope, cols + extra + [tasks.c.due_at], [tasks.c.status.in_(_OPEN), *narrowing])
    keys = [src.c.priority, src.c.team, src.c.ward] + [src.c[c.name] for c in extra]
    loads: dict[str, list[int]] = {}
    for row in conn.execute(select(*keys, func.count(), _sum(src.c.due_at < now)).group_by(*keys)):
        priority, team, ward = row[0], row[1], row[2]
        n, late = int(row[-2]), int(row[-1])
        tally.add_open(priority, team, ward, n, late)
        if with_officers and row[3] is not None:
            load = loads.setdefault(row[3], [0, 0, 0])
            load[0] += n
            load[1] += n if row[4] == Status.IN_PROGRESS.value else 0
            load[2] += late

    # 2. Created in the period (by type too: the busiest types come from the same scan).
    created_where = [
        tasks.c.created_at >= period.start,
        tasks.c.created_at < period.end,
        *narrowing,
    ]
    src = _source(
        scope, cols + [tasks.c.type, _bucket_of(tasks.c.created_at, bounds)], created_where
    )
    keys = [src.c.priority, src.c.team, src.c.ward, src.c.bucket, src.c.type]
    types: Counter[str] = Counter()
    for row in conn.execute(select(*keys, func.count()).group_by(*keys)):
        tally.add_created(row[0], row[1], row[2], row[3], int(row[5]))
        types[row[4]] += int(row[5])

    # 3. Completed in the period, and how many of them in time.
    src = _source(
        scope,
        cols + [tasks.c.closed_at, tasks.c.due_at, _bucket_of(tasks.c.closed_at, bounds)],
        [
            tasks.c.closed_at >= period.start,
            tasks.c.closed_at < period.end,
            tasks.c.status == _COMPLETED,
            *narrowing,
        ],
    )
    keys = [src.c.priority, src.c.team, src.c.ward, src.c.bucket]
    for row in conn.execute(
        select(*keys, func.count(), _sum(src.c.closed_at <= src.c.due_at)).group_by(*keys)
    ):
        tally.add_completed(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]))

    # 4. Residents' ratings given in the period, by the team that did the work: from the
    # period's ratings (few) to their tasks, never every visible task to their ratings.
    rated = select(feedback.c.task_id).where(
        feedback.c.created_at >= period.start, feedback.c.created_at < period.end
    )
    src = _source(scope, [tasks.c.id, tasks.c.team], [tasks.c.id.in_(rated), *narrowing])
    ratings: dict[str, Rating] = {}
    total = Rating("", "All teams")
    for team, count, summed in conn.execute(
        select(src.c.team, func.count(), func.coalesce(func.sum(feedback.c.rating), 0))
        .select_from(src.join(feedback, feedback.c.task_id == src.c.id))
        .where(and_(feedback.c.created_at >= period.start, feedback.c.created_at < period.end))
        .group_by(src.c.team)
    ):
        rating = Rating(team, team_names.get(team, team), int(count), int(summed))
        ratings[team] = rating
        total.count += rating.count
        total.total += rating.total

    officers = None
    if with_officers:
        officers = [
            OfficerLoad(p, _person_name(domain, p), load[0], load[1], load[2])
            for p, load in loads.items()
        ]
        officers.sort(key=lambda o: (-o.open, o.name))
    ward_counts = {line.key: line.created for line in tally.lines["ward"].values()}
    return Performance(
        period=period,
        now=now,
        totals=tally.totals,
        by_priority=tally.breakdown("priority", always=council.priority_names),
        by_team=[line for line in tally.breakdown("team") if not line.empty],
        by_ward=[line for line in tally.breakdown("ward") if not line.empty],
        trend=tally.trend,
        busiest_types=busiest(types, type_names),
        busiest_wards=busiest(ward_counts, {}),
        officers=officers,
        ratings=sorted(ratings.values(), key=lambda r: r.name),
        ratings_total=total,
    )


def _person_name(domain: Domain, person_id: str) -> str:
    person = domain.council.person(person_id)
    return person.name if person is not None else person_id
