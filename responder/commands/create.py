"""Use-case commands: each runs in one write transaction and enqueues what must be sent.

Nothing else writes task rows. The decisions themselves (priority, routing, due time,
duplicates) are the pure functions beside this module; here we fetch their inputs,
apply them and record the result with its audit event and outbox rows, atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from responder.commands.follows import follow
from responder.commands.subscribers import webhook_messages
from responder.config.model import Council
from responder.domain import geo
from responder.domain.context import Domain
from responder.domain.dedupe import OpenTaskAt, find_duplicate
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.priority import NearbyReport, PriorityDecision, prioritise, repeat_window
from responder.domain.records import CreateResult, NewReport, TaskRecord
from responder.domain.routing import (
    OfficerLoad,
    RoutingDecision,
    choose_officer,
    route,
)
from responder.domain.sla import due_at
from responder.messages import PhotoFetch, ResidentUpdate, TaskCard
from responder.queries.tasks import load_task
from responder.store.db import Database
from responder.store.history import append_event
from responder.store.outbox import enqueue
from responder.store.schema import contacts, people, reports, tasks, teams

_OPEN = [s.value for s in OPEN_STATUSES]

# Built once: constructing a statement costs more than running it on SQLite.
_INSERT_TASK = insert(tasks).returning(tasks.c.id)
_INSERT_REPORT = insert(reports).returning(reports.c.id)
_INSERT_CONTACT = insert(contacts)
_EXISTING_REPORT = select(
    reports.c.id,
    reports.c.task_id,
    reports.c.duplicate,
    reports.c.type,
    reports.c.lat,
    reports.c.lon,
    reports.c.content_hash,
).where(reports.c.source == bindparam("source"), reports.c.external_id == bindparam("external_id"))
_CONTACT_OF = select(
    contacts.c.name, contacts.c.email, contacts.c.phone, contacts.c.erased_at
).where(contacts.c.report_id == bindparam("report_id"))
_TEAM_CURSOR = (
    select(teams.c.last_assigned).where(teams.c.code == bindparam("team")).with_for_update()
)
_SET_CURSOR = update(teams).where(teams.c.code == bindparam("team"))
# Each officer's duty and open load in one query.
_OFFICER_LOADS = select(
    people.c.id,
    people.c.on_duty,
    select(func.count())
    .where(tasks.c.assignee == people.c.id, tasks.c.status.in_(_OPEN))
    .scalar_subquery(),
).where(people.c.id.in_(bindparam("ids", expanding=True)))
_ON_DUTY = select(people.c.id, people.c.on_duty).where(
    people.c.id.in_(bindparam("ids", expanding=True))
)
_NEARBY_REPORTS = select(reports.c.lat, reports.c.lon, reports.c.received_at).where(
    reports.c.type == bindparam("type"),
    reports.c.received_at >= bindparam("since"),
    reports.c.lat.between(bindparam("min_lat"), bindparam("max_lat")),
    reports.c.lon.between(bindparam("min_lon"), bindparam("max_lon")),
)
_OPEN_NEARBY = select(tasks.c.id, tasks.c.lat, tasks.c.lon).where(
    tasks.c.type == bindparam("type"),
    tasks.c.status.in_(_OPEN),
    tasks.c.lat.between(bindparam("min_lat"), bindparam("max_lat")),
    tasks.c.lon.between(bindparam("min_lon"), bindparam("max_lon")),
)


class ReplayConflict(Exception):
    """The report's source + external_id were used before, for a report with other content.

    Nothing was written. ``reference`` is the task the earlier report belongs to.
    """

    def __init__(self, source: str, external_id: str, reference: str) -> None:
        super().__init__(f"{source}/{external_id} already used for {reference}")
        self.source = source
        self.external_id = external_id
        self.reference = reference


async def create_task(
    db: Database,
    domain: Domain,
    report: NewReport,
    now: datetime,
    *,
    first: Callable[[Connection], None] | None = None,
) -> CreateResult:
    """Accept a report: a new task, a linked duplicate, or the task it already made.

    Raises ``RoutingError`` (with the offending field) when the report cannot be routed,
    and ``ReplayConflict`` when its source + external_id were used for other content.
    ``first`` runs at the start of the same transaction (e.g. ``commands.replays`` claiming
    a signed request): whatever it raises undoes everything and reaches the caller.
    """

    def command(conn: Connection) -> CreateResult:
        if first is not None:
            first(conn)
        return _create(conn, domain, report, now)

    try:
        return await db.run(command)
    except IntegrityError:
        # The same source + external_id is stored already (perhaps by another request or
        # instance a moment ago): the unique key undid this transaction.
        if report.external_id is None:
            raise
        found = await db.query(lambda conn: _existing_report(conn, domain, report))
        if found is None:
            raise
        existing, same = found
        if not same:
            raise ReplayConflict(
                report.source, report.external_id, existing.task.reference
            ) from None
        return existing


def _create(conn: Connection, domain: Domain, report: NewReport, now: datetime) -> CreateResult:
    council = domain.council
    # A replay (same source + external_id) is not looked for first: the report's unique
    # key refuses it at insert, this transaction or savepoint is undone, and create_task
    # answers with the task the first one made. That saves a query on every new report.
    # Locating first refuses a point outside the council before anything is read or written.
    placed = route(council, domain.locator, report.type, report.lat, report.lon, (), None)
    nearby = _nearby_reports(conn, council, report, now)
    duplicate = _open_duplicate(conn, council, report)
    if duplicate is not None:
        return _link_duplicate(conn, domain, report, duplicate, nearby, now)
    decision = _assign(conn, domain, report, placed)

    priority = _prioritise(council, report, nearby, now)
    status = Status.ASSIGNED if decision.assignee else Status.UNASSIGNED
    values: dict[str, Any] = {
        "type": report.type,
        "description": report.description,
        "lat": report.lat,
        "lon": report.lon,
        "address": report.address,
        "ward": decision.ward,
        "team": decision.team,
        "assignee": decision.assignee,
        "status": status.value,
        "priority": priority.priority,
        "due_at": due_at(now, council.priority_hours(priority.priority), council.tz),
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
        "source": report.source,
        "raised_by": report.raised_by,
        "raised_by_person": report.raised_by_person,
        "photos": list(report.photos),
        "priority_reasons": list(priority.reasons),
        "routing_reasons": list(decision.reasons),
        "report_count": 1,
        "outcome": None,
        "version": 1,
    }
    task_id = conn.execute(_INSERT_TASK, values).scalar_one()
    event_id = append_event(
        conn,
        task_id,
        now,
        report.actor,
        "created",
        to_status=status.value,
        data={
            "priority": priority.priority,
            "priority_reasons": list(priority.reasons),
            "routing_reasons": list(decision.reasons),
        },
    )
    if decision.assignee and decision.strategy == "round-robin":
        conn.execute(_SET_CURSOR, {"team": decision.team, "last_assigned": decision.assignee})
    report_id = _store_report(conn, report, task_id, now, duplicate=False)
    if report.raised_by_person:  # whoever raises a case follows it
        follow(conn, report.raised_by_person, task_id, now)
    messages = delivery_messages(conn, council, task_id, decision.team, decision.assignee, 1, now)
    messages += _notify_messages(council, task_id, report_id, report, "received", now)
    messages += photo_fetches(report, task_id, report_id, now)
    messages += webhook_messages(council, task_id, [(event_id, "created")], now)
    enqueue(conn, messages, deliver_by=values["due_at"])  # known: no need to read it back
    task = TaskRecord.from_row(_Row({"id": task_id, **values}), domain.prefix)
    return CreateResult(task=task, created=True)


def _existing_report(
    conn: Connection, domain: Domain, report: NewReport
) -> tuple[CreateResult, bool] | None:
    """The result the stored report with this source + external_id made, and whether
    ``report`` has the same content (a resend) or not (a conflict)."""
    if report.external_id is None:
        return None
    row = conn.execute(
        _EXISTING_REPORT, {"source": report.source, "external_id": report.external_id}
    ).first()
    if row is None:
        return None
    task = load_task(conn, domain, row.task_id)
    assert task is not None  # reports cascade with their task
    result = CreateResult(task=task, created=False, duplicate_of=task.id if row.duplicate else None)
    return result, _same_content(conn, row, report)


def _same_content(conn: Connection, row: Any, report: NewReport) -> bool:
    """Whether ``report`` says what the stored report ``row`` said.

    Content by its hash (reports from before it was kept: by type and place); contact
    details against the stored contact row, unless none was kept or it was erased.
    """
    if row.content_hash is not None and report.content_hash is not None:
        if row.content_hash != report.content_hash:
            return False
    elif (row.type, row.lat, row.lon) != (report.type, report.lat, report.lon):
        return False
    contact = conn.execute(_CONTACT_OF, {"report_id": row.id}).first()
    if contact is None or contact.erased_at is not None:
        return True
    r = report.reporter
    if r is None:
        return False
    return (contact.name, contact.email, contact.phone) == (r.name, r.email, r.phone)


def _assign(
    conn: Connection, domain: Domain, report: NewReport, placed: RoutingDecision
) -> RoutingDecision:
    """Choose the officer, given the ward and team already found."""
    council = domain.council
    team = council.team(placed.team)
    assert team is not None
    if team.routing == "queue":
        return placed
    last_assigned = None
    if team.routing == "round-robin" or conn.dialect.name == "postgresql":
        # On PostgreSQL the row lock makes concurrent reports for one team see each
        # other's assignments (SQLite writes are serialised already).
        last_assigned = conn.execute(_TEAM_CURSOR, {"team": team.code}).scalar_one_or_none()
    loads = officer_loads(conn, team.officers)
    assignee, reasons = choose_officer(team, loads, last_assigned)
    return replace(placed, assignee=assignee, reasons=(*placed.reasons[:2], *reasons))


def officer_loads(conn: Connection, officer_ids: list[str]) -> list[OfficerLoad]:
    if not officer_ids:
        return []
    found = {
        r[0]: (bool(r[1]), int(r[2])) for r in conn.execute(_OFFICER_LOADS, {"ids": officer_ids})
    }
    # An officer missing from the people table (not yet synced) counts as on duty, idle.
    return [OfficerLoad(p, *found.get(p, (True, 0))) for p in officer_ids]


def _nearby_reports(
    conn: Connection, council: Council, report: NewReport, now: datetime
) -> list[NearbyReport]:
    window = repeat_window(council, report.type)
    if window is None:
        return []
    days, metres = window
    min_lat, max_lat, min_lon, max_lon = geo.bbox(report.lat, report.lon, metres)
    rows = conn.execute(
        _NEARBY_REPORTS,
        {
            "type": report.type,
            "since": now - timedelta(days=days),
            "min_lat": min_lat,
            "max_lat": max_lat,
            "min_lon": min_lon,
            "max_lon": max_lon,
        },
    )
    return [NearbyReport(r.lat, r.lon, r.received_at) for r in rows]


def _open_duplicate(conn: Connection, council: Council, report: NewReport) -> OpenTaskAt | None:
    within = council.file.duplicates.within_metres
    if within <= 0:
        return None
    min_lat, max_lat, min_lon, max_lon = geo.bbox(report.lat, report.lon, within)
    rows = conn.execute(
        _OPEN_NEARBY,
        {
            "type": report.type,
            "min_lat": min_lat,
            "max_lat": max_lat,
            "min_lon": min_lon,
            "max_lon": max_lon,
        },
    )
    candidates = [OpenTaskAt(r.id, r.lat, r.lon) for r in rows]
    return find_duplicate(report.lat, report.lon, candidates, within)


def _link_duplicate(
    conn: Connection,
    domain: Domain,
    report: NewReport,
    duplicate: OpenTaskAt,
    nearby: list[NearbyReport],
    now: datetime,
) -> CreateResult:
    council = domain.council
    task = load_task(conn, domain, duplicate.task_id)
    assert task is not None
    changes: dict[str, Any] = {
        "report_count": tasks.c.report_count + 1,
        "updated_at": now,
        "version": tasks.c.version + 1,
    }
    note = f"another report linked ({report.source})"
    data: dict[str, Any] = {"report_source": report.source}
    # More reports of the same thing can make it more urgent (never less).
    raised = _raised_priority(council, task, report, nearby, now)
    if raised is not None:
        changes["priority"] = raised.priority
        changes["priority_reasons"] = [*task.priority_reasons, *raised.reasons]
        new_due = due_at(task.created_at, council.priority_hours(raised.priority), council.tz)
        if new_due < task.due_at:
            changes["due_at"] = new_due
        data["priority"] = {
            "from": task.priority,
            "to": raised.priority,
            "reasons": list(raised.reasons),
        }
        note += f"; priority raised from {task.priority} to {raised.priority}"
    conn.execute(update(tasks).where(tasks.c.id == task.id).values(changes))
    event_id = append_event(
        conn,
        task.id,
        now,
        report.actor,
        "duplicate_linked",
        note=note,
        data=data,
        from_status=task.status.value,
        to_status=task.status.value,
    )
    report_id = _store_report(conn, report, task.id, now, duplicate=True)
    if report.raised_by_person:
        follow(conn, report.raised_by_person, task.id, now)
    messages = _notify_messages(council, task.id, report_id, report, "received", now)
    messages += photo_fetches(report, task.id, report_id, now)
    messages += webhook_messages(council, task.id, [(event_id, "duplicate_linked")], now)
    enqueue(conn, messages)
    updated = load_task(conn, domain, task.id)
    assert updated is not None
    return CreateResult(task=updated, created=False, duplicate_of=task.id)


def _prioritise(
    council: Council, report: NewReport, nearby: list[NearbyReport], now: datetime
) -> PriorityDecision:
    return prioritise(
        council,
        report.type,
        report.description,
        report.raised_by,
        report.lat,
        report.lon,
        now,
        nearby,
    )


def _raised_priority(
    council: Council,
    task: TaskRecord,
    report: NewReport,
    nearby: list[NearbyReport],
    now: datetime,
) -> PriorityDecision | None:
    decision = _prioritise(council, report, nearby, now)
    if council.priority_rank(decision.priority) < council.priority_rank(task.priority):
        return decision
    return None


def photo_fetches(
    report: NewReport, task_id: int, report_id: int, now: datetime
) -> list[dict[str, Any]]:
    """A ``fetch.photo`` row for each photo link the report came with, once each."""
    return [
        PhotoFetch.of(
            task_id, report.source, url, f"photo:report:{report_id}:{i}", now, report_id=report_id
        )
        for i, url in enumerate(dict.fromkeys(report.fetch_photos))
    ]


def _store_report(
    conn: Connection, report: NewReport, task_id: int, now: datetime, *, duplicate: bool
) -> int:
    report_id = conn.execute(
        _INSERT_REPORT,
        {
            "task_id": task_id,
            "type": report.type,
            "lat": report.lat,
            "lon": report.lon,
            "received_at": now,
            "source": report.source,
            "external_id": report.external_id,
            "duplicate": duplicate,
            "content_hash": report.content_hash,
            "attributes": dict(report.attributes) or None,
        },
    ).scalar_one()
    if report.reporter is not None:
        r = report.reporter
        conn.execute(
            _INSERT_CONTACT,
            {
                "report_id": report_id,
                "name": r.name,
                "email": r.email,
                "phone": r.phone,
                "updates": list(r.updates),
                "erased_at": None,
            },
        )
    return report_id


def delivery_messages(
    conn: Connection,
    council: Council,
    task_id: int,
    team_code: str,
    assignee: str | None,
    version: int,
    now: datetime,
    exclude: frozenset[str] = frozenset(),
) -> list[dict]:
    """The cards a task owes to the people who should newly see it.

    An assigned task: one card, to the assignee. A task nobody holds (a queue team, or
    nobody available): one card to every on-duty officer of the team (bar ``exclude``,
    e.g. the officer who just handed it back) and one to the team's linked channel. The
    channel row is always written; the dispatcher records "no linked channel" if none.
    Keys carry the task version, so a later offer of the same task is a new message.
    """
    if assignee:
        return [TaskCard.to_person(task_id, assignee, version, now)]
    team = council.team(team_code)
    officers = [o for o in (team.officers if team else []) if o not in exclude]
    rows = [TaskCard.to_person(task_id, p, version, now) for p in on_duty_of(conn, officers)]
    rows.append(TaskCard.to_team(task_id, team_code, version, now))
    return rows


def on_duty_of(conn: Connection, person_ids: list[str]) -> list[str]:
    """Those of ``person_ids`` on duty, in the order given (unknown ids count as on duty)."""
    if not person_ids:
        return []
    duty = dict(conn.execute(_ON_DUTY, {"ids": person_ids}).all())
    return [p for p in person_ids if duty.get(p, True)]


def _notify_messages(
    council: Council, task_id: int, report_id: int, report: NewReport, event: str, now: datetime
) -> list[dict]:
    """Notify messages for a report just received (see ``notify_rows``)."""
    r = report.reporter
    if r is None:
        return []
    return notify_rows(
        council, task_id, report_id, r.updates, bool(r.email), bool(r.phone), event, now
    )


def notify_rows(
    council: Council,
    task_id: int,
    report_id: int,
    updates: Sequence[str],
    has_email: bool,
    has_phone: bool,
    event: str,
    now: datetime,
) -> list[dict]:
    """One Notify message per channel the reporter asked for and the council has a template for.

    The payload names the report, not the person: contact details are read at send time
    and so are erased with the contact row.
    """
    templates = council.file.notify.events.get(event)
    if templates is None:
        return []
    rows = []
    for channel in updates:
        template = templates.email_template if channel == "email" else templates.sms_template
        reachable = has_email if channel == "email" else has_phone
        if template and reachable:
            message = ResidentUpdate(
                report_id=report_id,
                task_id=task_id,
                event=event,
                channel=channel,
                template_id=template,
            )
            rows.append(message.owed(now))
    return rows


class _Row:
    """Adapter so freshly inserted values build a TaskRecord like a fetched row."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


__all__ = [
    "ReplayConflict",
    "create_task",
    "delivery_messages",
    "notify_rows",
    "officer_loads",
    "on_duty_of",
]
