"""The ward page's list of open cases: a ward's open tasks the viewer may see there
(``queries.scope.in_ward``: all of them for its councillor, the own teams' for staff), most
urgent (earliest due) first, through the (ward, status) index."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES
from responder.domain.records import TaskRecord
from responder.domain.visibility import Scope
from responder.queries.scope import in_ward
from responder.store.schema import tasks

MAX_LISTED = 100
_OPEN = sorted(s.value for s in OPEN_STATUSES)


@dataclass(frozen=True)
class WardCases:
    cases: tuple[TaskRecord, ...]
    total: int


def ward_open_cases(
    conn: Connection, domain: Domain, scope: Scope, ward: str, limit: int = MAX_LISTED
) -> WardCases:
    where = (in_ward(scope, ward), tasks.c.status.in_(_OPEN))
    rows = conn.execute(
        select(tasks).where(*where).order_by(tasks.c.due_at, tasks.c.id).limit(limit)
    ).all()
    total = len(rows)
    if total == limit:
        total = int(conn.execute(select(func.count()).where(*where)).scalar_one())
    return WardCases(tuple(TaskRecord.from_row(r, domain.prefix) for r in rows), total)
