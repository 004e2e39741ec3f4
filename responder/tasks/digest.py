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

``enqueue_digest`` records the period in ``digests`` and writes one ``teams.digest``
outbox row per manager of the team and one for its channel, keyed by the slot so a
repeat sends nothing twice; the Teams delivery builds the digest afresh from the stored
period when it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import Connection, and_, case, func, insert, select

from responder.messages import DigestDelivery
from responder.store.db import Database
from responder.store.outbox import enqueue
from responder.store.schema import digests, people, tasks
from responder.store.teams_state import team_channel
from responder.tasks.domain import Domain
from responder.tasks.lifecycle import OPEN_STATUSES, Status
from responder.tasks.reference import format_reference

MAX_OVERDUE = 10
MAX_BUSIEST = 5
DEFAULT_PERIOD = timedelta(hours=24)

# Open statuses in a fixed order, so the statement (and its cached plan) is always the same.
_OPEN = sorted(s.value for s in OPEN_STATUSES)


class UnknownTeam(LookupError):
    """The team code is not in the council file."""


@dataclass(frozen=True)
class PriorityLine:
    priority: str  # the council's name for it
    new: int
    completed: int
    open: int
    overdue: int


@dataclass(frozen=True)
class OverdueTask:
    id: int
    reference: str
    type: str  # type code
    priority: str
    status: Status
    ward: str
    address: str | None
    assignee: str | None
    due_at: datetime


@dataclass(frozen=True)
class OfficerLine:
    person_id: str
    open: int  # the team's open tasks they hold
    overdue: int
    on_duty: bool
    in_team: bool  # False: not (or no longer) an officer of the team, but holds its tasks


@dataclass(frozen=True)
class Digest:
    team: str
    team_name: str
    since: datetime
    until: datetime
    now: datetime  # open and overdue figures are as of this moment
    new: int
    completed: int
    completed_in_time: int  # of ``completed``: closed no later than their due time
    cancelled: int
    open: int
    overdue: int
    unassigned: int  # open tasks nobody holds
    by_priority: tuple[PriorityLine, ...]  # the council's order, most urgent first
    overdue_tasks: tuple[OverdueTask, ...]  # most overdue first, up to MAX_OVERDUE
    busiest_types: tuple[tuple[str, int], ...]  # (type code, new tasks), most first
    busiest_wards: tuple[tuple[str, int], ...]  # (ward, new tasks), most first
    officers: tuple[OfficerLine, ...]  # team officers in file order, then other holders
    off_duty: tuple[str, ...]  # person ids of the team's officers who are off duty

    @property
    def in_time_percent(self) -> int | None:
        """Whole percent, rounded down (100 % only when every one was in time)."""
        if not self.completed:
            return None
        return self.completed_in_time * 100 // self.completed


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


@dataclass(frozen=True)
class QueuedDigest:
    """What ``enqueue_digest`` wrote (or found already written for this slot)."""

    digest_id: int
    team: str
    since: datetime
    until: datetime
    managers: tuple[str, ...]  # person ids with a message owed
    channel: str | None  # the team's linked channel now (None: the channel row will say so)
    repeat: bool  # this slot had been queued before: nothing new is sent


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given for a digest period")
    return moment.astimezone(UTC)


def enqueue_digest(
    conn: Connection,
    domain: Domain,
    team_code: str,
    since: datetime | None,
    until: datetime,
    now: datetime,
) -> QueuedDigest:
    """Record the digest of [since, until) for the team and owe it to each manager and the
    team's channel, in the caller's transaction.

    ``since`` None: from the end of the team's previous digest (or 24 hours before
    ``until`` for the first). The same ``until`` again finds the digest already recorded
    and sends nothing twice.
    """
    team = domain.council.team(team_code)
    if team is None:
        raise UnknownTeam(team_code)
    until = _utc(until)
    existing = conn.execute(
        select(digests.c.id, digests.c.period_start)
        .where(digests.c.team == team_code, digests.c.period_end == until)
        .order_by(digests.c.id)
        .limit(1)
    ).first()
    if existing is not None:
        digest_id, since, repeat = existing.id, existing.period_start, True
    else:
        if since is None:
            previous = conn.execute(
                select(func.max(digests.c.period_end)).where(
                    digests.c.team == team_code, digests.c.period_end < until
                )
            ).scalar_one_or_none()
            since = previous if previous is not None else until - DEFAULT_PERIOD
        since = _utc(since)
        if since >= until:
            raise ValueError(f"the digest period must end after it starts ({since} >= {until})")
        digest_id = conn.execute(
            insert(digests).returning(digests.c.id),
            {"team": team_code, "period_start": since, "period_end": until, "created_at": now},
        ).scalar_one()
        repeat = False
    recipients: list[str | None] = [*team.managers, None]  # None: the team's channel
    enqueue(conn, [DigestDelivery.to(digest_id, team_code, until, p, now) for p in recipients])
    return QueuedDigest(
        digest_id=digest_id,
        team=team_code,
        since=since,
        until=until,
        managers=tuple(team.managers),
        channel=team_channel(conn, team_code),
        repeat=repeat,
    )


def digest_period(conn: Connection, digest_id: int) -> tuple[str, datetime, datetime] | None:
    """(team, period_start, period_end) of a recorded digest."""
    row = conn.execute(
        select(digests.c.team, digests.c.period_start, digests.c.period_end).where(
            digests.c.id == digest_id
        )
    ).first()
    return (row.team, row.period_start, row.period_end) if row is not None else None


def _enqueue_now(conn: Connection, *, domain: Domain, team: str, now: datetime) -> QueuedDigest:
    """The digest up to ``now`` since the team's last one (a partial, for ``db.run``)."""
    return enqueue_digest(conn, domain, team, None, now, now)


async def send_digests(
    db: Database, domain: Domain, now: datetime, team: str | None = None
) -> list[QueuedDigest]:
    """Queue the digest up to ``now`` for every team of the council file (or just ``team``).

    ``now`` is the slot: the scheduler passes the scheduled time, so running the same slot
    again (another instance, a restart) sends nothing twice. One transaction per team.
    ``UnknownTeam`` for a team code the council file does not have.
    """
    council = domain.council
    if team is not None and council.team(team) is None:
        raise UnknownTeam(team)
    codes = [team] if team is not None else [t.code for t in council.file.teams]
    queued = []
    for code in codes:
        queued.append(await db.run(partial(_enqueue_now, domain=domain, team=code, now=now)))
    return queued


__all__ = [
    "Digest",
    "OfficerLine",
    "OverdueTask",
    "PriorityLine",
    "QueuedDigest",
    "UnknownTeam",
    "build_digest",
    "digest_period",
    "enqueue_digest",
    "send_digests",
]
