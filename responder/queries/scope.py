"""The visibility rule (``domain/visibility.py``) as SQL: WHERE clauses for reads.

Kept beside the reads so the rule itself stays free of the database; ``test_visibility``
checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from responder.domain.visibility import Scope
from responder.store.schema import follows, tasks


def visible(scope: Scope) -> ColumnElement[bool]:
    """The WHERE clause: tasks this scope may see."""
    if scope.everything:
        return true()
    if scope.person_id is None:  # a read key: its wards and teams only
        keyed: list[ColumnElement[bool]] = []
        if scope.wards:
            keyed.append(tasks.c.ward.in_(sorted(scope.wards)))
        if scope.teams:
            keyed.append(tasks.c.team.in_(sorted(scope.teams)))
        return or_(*keyed) if keyed else false()
    followed = select(follows.c.task_id).where(follows.c.person_id == scope.person_id)
    clauses: list[ColumnElement[bool]] = [
        tasks.c.id.in_(followed),
        tasks.c.assignee == scope.person_id,
    ]
    if scope.wards:
        clauses.append(tasks.c.ward.in_(sorted(scope.wards)))
    if scope.teams:
        clauses.append(tasks.c.team.in_(sorted(scope.teams)))
    return or_(*clauses)


def in_ward(scope: Scope, ward: str) -> ColumnElement[bool]:
    """Open work in one ward: all of it for its councillor, the own teams' for staff."""
    if scope.everything or ward in scope.wards:
        return tasks.c.ward == ward
    if scope.teams:
        return and_(tasks.c.ward == ward, tasks.c.team.in_(sorted(scope.teams)))
    return false()
