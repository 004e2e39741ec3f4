"""The managers' digest: what happened to a team's work since the last one, and what is open.

Every figure is a count a person can check against the tasks of the team:

- **new**: tasks whose ``created_at`` is in the period [since, until);
- **completed** / **cancelled**: tasks that reached that status with ``closed_at`` in the
  period; **completed within due time**: those of them with ``closed_at <= due_at``;
- **open**: tasks in an open status (unassigned, assigned, accepted, in progress) at
  ``now``, the moment the digest is built; **overdue**: open ones with ``due_at < now``.
  Open = the officers' loads + unassigned;
- **busiest types and wards**: the period's new tasks, counted by type and by ward.

The figures come from a few aggregate queries (GROUP BY) on the tasks table, never from
task rows fetched into Python: the period's through the (team, created_at) and (team,
closed_at) indexes, the open ones in two passes over the team's open tasks (~190 ms for a
team with 35,000 open tasks on SQLite; see bench/digest.py).

``commands/digest.py`` records the period in ``digests`` and owes one ``teams.digest``
message per manager of the team and one for its channel, keyed by the slot so a repeat
sends nothing twice; the Teams delivery builds the digest afresh from the stored period
when it sends.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, func, select

from responder.domain.context import Domain
from responder.domain.digest import Digest, OfficerLine, OverdueTask, PriorityLine, UnknownTeam
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.reference import format_reference
from responder.store.schema import digests, people, tasks

MAX_OVERDUE = 10
MAX_BUSIEST = 5
DEFAULT_PERIOD = timedelta(hours=24)

# Open statuses in a fixed order, so the statement (and its cached plan) is always the same.
_OPEN = sorted(s.value for s in OPEN_STATUSES)


def _count(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def build_digest(
    conn: Connection,
    domain: Domain,
    team_code: str,
    since: datetime,
    until: datetime,
    now: datetime,
) -> Digest:
    """The digest of ``team_code`` for [since, until), open figures as of ``now``."""
    council = domain.council
    team = council.team(team_code)
    if team is None:
        raise UnknownTeam(team_code)
    mine = tasks.c.team == team_code
    created = and_(mine, tasks.c.created_at >= since, tasks.c.created_at < until)
    closed = and_(mine, tasks.c.closed_at >= since, tasks.c.closed_at < until)
    is_open = and_(mine, tasks.c.status.in_(_OPEN))
    late = tasks.c.due_at < now

    new_by: dict[str, int] = dict(
        conn.execute(
            select(tasks.c.priority, func.count()).where(created).group_by(tasks.c.priority)
        ).all()
    )
    closed_by: dict[str, tuple[int, int]] = {}
    completed = completed_in_time = cancelled = 0
    for priority, done, in_time, dropped in conn.execute(
        select(
            tasks.c.priority,
            _count(tasks.c.status == Status.COMPLETED.value),
            _count(
                and_(tasks.c.status == Status.COMPLETED.value, tasks.c.closed_at <= tasks.c.due_at)
            ),
            _count(tasks.c.status == Status.CANCELLED.value),
        )
        .where(closed)
        .group_by(tasks.c.priority)
    ):
        closed_by[priority] = (int(done), int(in_time))
        completed += int(done)
        completed_in_time += int(in_time)
        cancelled += int(dropped)

    # Open work by priority and holder in one pass: priorities x holders is a handful of
    # groups, summed below both ways.
    open_by: dict[str, list[int]] = {}
    held: dict[str, list[int]] = {}
    unassigned = 0
    for priority, assignee, n, n_late in conn.execute(
        select(tasks.c.priority, tasks.c.assignee, func.count(), _count(late))
        .where(is_open)
        .group_by(tasks.c.priority, tasks.c.assignee)
    ):
        n, n_late = int(n), int(n_late)
        totals = open_by.setdefault(priority, [0, 0])
        totals[0] += n
        totals[1] += n_late
        if assignee is None:
            unassigned += n
        else:
            load = held.setdefault(assignee, [0, 0])
            load[0] += n
            load[1] += n_late

    overdue_rows = conn.execute(
        select(
            tasks.c.id,
            tasks.c.type,
            tasks.c.priority,
            tasks.c.status,
            tasks.c.ward,
            tasks.c.address,
            tasks.c.assignee,
            tasks.c.due_at,
        )
        .where(is_open, late)
        .order_by(tasks.c.due_at, tasks.c.id)
        .limit(MAX_OVERDUE)
    ).all()

    def busiest(column) -> tuple[tuple[str, int], ...]:
        n = func.count().label("n")
        rows = conn.execute(
            select(column, n)
            .where(created)
            .group_by(column)
            .order_by(n.desc(), column)
            .limit(MAX_BUSIEST)
        )
        return tuple((name, int(count)) for name, count in rows)

    officer_ids = list(team.officers) + sorted(p for p in held if p not in team.officers)
    duty = {}
    if officer_ids:
        duty = dict(
            conn.execute(
                select(people.c.id, people.c.on_duty).where(people.c.id.in_(officer_ids))
            ).all()
        )
    officers = tuple(
        OfficerLine(
            person_id=p,
            open=held.get(p, (0, 0))[0],
            overdue=held.get(p, (0, 0))[1],
            on_duty=bool(duty.get(p, True)),  # not yet synced: counts as on duty, as routing does
            in_team=p in team.officers,
        )
        for p in officer_ids
    )

    def rank(priority: str) -> tuple[int, str]:
        try:
            return (council.priority_rank(priority), "")
        except KeyError:  # a priority since removed from the file: after the known ones
            return (len(council.priority_names), priority)

    names = set(council.priority_names) | set(new_by) | set(closed_by) | set(open_by)
    by_priority = tuple(
        PriorityLine(
            priority=p,
            new=int(new_by.get(p, 0)),
            completed=closed_by.get(p, (0, 0))[0],
            open=open_by.get(p, [0, 0])[0],
            overdue=open_by.get(p, [0, 0])[1],
        )
        for p in sorted(names, key=rank)
    )
    return Digest(
        team=team_code,
        team_name=team.name,
        since=since,
        until=until,
        now=now,
        new=sum(line.new for line in by_priority),
        completed=completed,
        completed_in_time=completed_in_time,
        cancelled=cancelled,
        open=sum(line.open for line in by_priority),
        overdue=sum(line.overdue for line in by_priority),
        unassigned=unassigned,
        by_priority=by_priority,
        overdue_tasks=tuple(
            OverdueTask(
                id=r.id,
                reference=format_reference(domain.prefix, r.id),
                type=r.type,
                priority=r.priority,
                status=Status(r.status),
                ward=r.ward,
                address=r.address,
                assignee=r.assignee,
                due_at=r.due_at,
            )
            for r in overdue_rows
        ),
        busiest_types=busiest(tasks.c.type),
        busiest_wards=busiest(tasks.c.ward),
        officers=officers,
        off_duty=tuple(o.person_id for o in officers if o.in_team and not o.on_duty),
    )


# -- sending ---------------------------------------------------------------------------------


def digest_period(conn: Connection, digest_id: int) -> tuple[str, datetime, datetime] | None:
    """(team, period_start, period_end) of a recorded digest."""
    row = conn.execute(
        select(digests.c.team, digests.c.period_start, digests.c.period_end).where(
            digests.c.id == digest_id
        )
    ).first()
    return (row.team, row.period_start, row.period_end) if row is not None else None


__all__ = ["build_digest", "digest_period"]
