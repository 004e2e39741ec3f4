"""Cases as councillors and staff see them: who may see what, follows, public history.

Every read here takes a ``Scope`` (``tasks/visibility.py``, the one rule of who may see
what) and puts it in the query's WHERE clause, so a reply is built from what the viewer may
see rather than filtered after the fact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    func,
    literal_column,
    select,
)

from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.records import TaskRecord
from responder.domain.visibility import Scope, task_id_of
from responder.domain.vocabulary import (
    DEFAULT_OUTCOMES,
    PUBLIC_EVENT_WORDS,
    OutcomeWords,
    outcome_words,
)
from responder.queries.scope import in_ward, visible
from responder.store.schema import follows, task_events, tasks

MAX_LISTED = 10  # a phone screen or two; the rest are counted
MAX_OVERDUE = 10

_OPEN = [s.value for s in OPEN_STATUSES]


# -- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseLine:
    """One case in a list, with its latest public event."""

    task: TaskRecord
    last_event: str | None  # "Work started"
    last_event_at: datetime | None


@dataclass(frozen=True)
class MyCases:
    cases: tuple[CaseLine, ...]
    total: int


# "id IN (their follows)": the planner looks up each followed task by key (a join ordered
# by created_at scanned every task in the table instead). The window count gives the
# total before LIMIT, and each case's latest public event is joined on by its id, so one
# statement, built once, answers "my cases".
_PAGE = (
    select(tasks, func.count().over().label("total"))
    .where(
        tasks.c.id.in_(
            select(follows.c.task_id)
            .where(follows.c.person_id == bindparam("person"))
            .scalar_subquery()
        )
    )
    .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
    .limit(MAX_LISTED)
    .cte("page")
)
_LATEST_PUBLIC = (
    select(func.max(task_events.c.id))
    .where(
        task_events.c.task_id == _PAGE.c.id,
        # Spelled out in the SQL: a bound list would be expanded again on every call.
        task_events.c.action.in_(
            [literal_column(f"'{action}'") for action in sorted(PUBLIC_EVENT_WORDS)]
        ),
    )
    .correlate(_PAGE)
    .scalar_subquery()
)
_MY_CASES = (
    select(
        _PAGE,
        task_events.c.action.label("last_action"),
        task_events.c.note.label("last_note"),
        task_events.c.at.label("last_at"),
    )
    .select_from(_PAGE.outerjoin(task_events, task_events.c.id == _LATEST_PUBLIC))
    .order_by(_PAGE.c.created_at.desc(), _PAGE.c.id.desc())
)


def my_cases(conn: Connection, domain: Domain, person_id: str) -> MyCases:
    """Cases the person raised or follows (raising follows), newest first."""
    rows = conn.execute(_MY_CASES, {"person": person_id}).all()
    lines = tuple(
        CaseLine(
            TaskRecord.from_row(r, domain.prefix),
            _public_words(r.last_action, r.last_note) if r.last_action else None,
            r.last_at,
        )
        for r in rows
    )
    return MyCases(lines, int(rows[0].total) if rows else 0)


def _public_words(action: str, note: str | None) -> str:
    words = PUBLIC_EVENT_WORDS.get(action, action)
    return f"{words}: {note}" if note and action == "update" else words


@dataclass(frozen=True)
class WardSummary:
    ward: str
    open_total: int
    by_status: tuple[tuple[Status, int], ...]  # in lifecycle order, only non-zero
    by_type: tuple[tuple[str, int], ...]  # most first
    overdue_total: int
    overdue: tuple[TaskRecord, ...]  # most overdue first, up to MAX_OVERDUE
    newest: tuple[TaskRecord, ...]  # the newest open cases that are not overdue


def ward_summary(
    conn: Connection, domain: Domain, scope: Scope, ward: str, now: datetime
) -> WardSummary:
    where = and_(in_ward(scope, ward), tasks.c.status.in_(_OPEN))
    counts = conn.execute(
        select(tasks.c.status, tasks.c.type, (tasks.c.due_at < now).label("late"), func.count())
        .where(where)
        .group_by(tasks.c.status, tasks.c.type, "late")
    ).all()
    statuses: Counter[str] = Counter()
    types: Counter[str] = Counter()
    overdue_total = 0
    for status, type_code, late, n in counts:
        statuses[status] += n
        types[type_code] += n
        overdue_total += n if late else 0
    overdue = conn.execute(
        select(tasks)
        .where(where, tasks.c.due_at < now)
        .order_by(tasks.c.due_at, tasks.c.id)
        .limit(MAX_OVERDUE)
    ).all()
    newest = conn.execute(
        select(tasks)
        .where(where, tasks.c.due_at >= now)
        .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
        .limit(MAX_OVERDUE)
    ).all()
    order = [s for s in Status if s.value in statuses]
    return WardSummary(
        ward=ward,
        open_total=sum(statuses.values()),
        by_status=tuple((s, statuses[s.value]) for s in order),
        by_type=tuple(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))),
        overdue_total=overdue_total,
        overdue=tuple(TaskRecord.from_row(r, domain.prefix) for r in overdue),
        newest=tuple(TaskRecord.from_row(r, domain.prefix) for r in newest),
    )


def find_case(conn: Connection, domain: Domain, scope: Scope, task_id: int) -> TaskRecord | None:
    """The case, if this scope may see it; None whether it is missing or not theirs.

    Every path that shows one task reads it here, so they cannot decide differently.
    """
    if task_id_of(task_id) is None:  # out of the database's range: no such task
        return None
    row = conn.execute(select(tasks).where(tasks.c.id == task_id, visible(scope))).first()
    return TaskRecord.from_row(row, domain.prefix) if row is not None else None


def is_following(conn: Connection, person_id: str, task_id: int) -> bool:
    found = conn.execute(
        select(follows.c.task_id).where(
            follows.c.person_id == person_id, follows.c.task_id == task_id
        )
    ).first()
    return found is not None


@dataclass(frozen=True)
class PublicEvent:
    at: datetime
    words: str


def public_history(
    conn: Connection,
    task_id: int,
    limit: int = 8,
    outcomes: Sequence[OutcomeWords] = DEFAULT_OUTCOMES,
) -> list[PublicEvent]:
    """The latest public events, newest first, as every card lists history (a phone card
    shows a handful).

    ``outcomes``: the task's service's (``Council.outcomes_for``), for the council's words.
    """
    rows = conn.execute(
        select(task_events.c.at, task_events.c.action, task_events.c.note, task_events.c.data)
        .where(task_events.c.task_id == task_id, task_events.c.action.in_(list(PUBLIC_EVENT_WORDS)))
        .order_by(task_events.c.id.desc())
        .limit(limit)
    ).all()
    events = []
    for r in rows:
        words = _public_words(r.action, r.note)
        if r.action == "complete" and isinstance(r.data, dict) and r.data.get("outcome"):
            outcome = outcome_words(outcomes, r.data["outcome"], "councillor")
            words = f"{PUBLIC_EVENT_WORDS['complete']} ({outcome})"
        events.append(PublicEvent(r.at, words))
    return events
