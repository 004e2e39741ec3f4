"""What people do to a task from its card: accept, start, update, complete, hand back,
reassign, cancel; and going on or off duty.

Each action is one write transaction (Principle 1): the task row is read under a row
lock, the lifecycle table decides whether this person may do this now, and the change,
its audit event(s) and every message it causes are written together. A refusal, a bad
input or a stale card writes nothing and says why (Principle 4).

Stale cards. A card carries the task version it showed; a click whose version is not
the task's any more is not applied ("here is the task as it is now"), so the same click
delivered twice, or ten times at once, applies exactly once (Principle 2). The task row
lock (PostgreSQL; SQLite writes are serialised by ``Database.write``) makes the second
click see the first one's result; ``WHERE version = :v`` on the update is a second line
of defence. When the stale click repeats what the same person already did, or lost a
race to take a queue task, the notice says so.

Hand-back. The officer returns the task (one ``handback`` event: from its status to
unassigned, with the reason) and the system at once re-routes it within the team,
excluding that officer: when someone is chosen, a second event ``assign`` (actor
``system``, unassigned -> assigned, with the routing reasons) records it, as the
lifecycle's ASSIGN transition by the system; when nobody is, the handback event's data
carries the routing reasons and the task is offered to the team. The task version goes
up once either way.

Outbox. Every applied action enqueues ``teams.refresh`` for the new version (the
dispatcher updates every copy of the card already sent); a person who should newly see
the task gets ``teams.card``; completion tells every reporter of the task who asked for
updates (the original and linked duplicates) through Notify.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from responder.commands.create import delivery_messages, notify_rows, officer_loads
from responder.commands.follows import status_notices
from responder.commands.subscribers import webhook_messages
from responder.config.model import Council, Team
from responder.domain.context import Domain
from responder.domain.lifecycle import Action, Status, decide, relations
from responder.domain.records import TaskRecord
from responder.domain.routing import choose_officer
from responder.domain.sla import due_at
from responder.domain.vocabulary import (
    NOTE_MAX,
    NOTE_TOO_LONG,
    REASON_MAX,
    REASON_TOO_LONG,
    outcome_list,
    priority_words,
)
from responder.messages import CardRefresh, TaskCard
from responder.queries.tasks import load_task
from responder.store.db import Database
from responder.store.outbox import enqueue
from responder.store.schema import contacts, people, reports, task_events, tasks, teams

STALE = "This card was out of date; here is the task as it is now."
NEED_NOTE = "Add a note to post an update."
NEED_OUTCOME = "Choose an outcome."
NEED_REASON = "Say why you are handing it back."
NEED_OFFICER = "Choose an officer of the team to reassign to."
NEED_PRIORITY = "Choose a priority."

# Statuses at or past acceptance, and at or past starting.
_ACCEPTED = (Status.ACCEPTED, Status.IN_PROGRESS, Status.COMPLETED)
_STARTED = (Status.IN_PROGRESS, Status.COMPLETED)


@dataclass(frozen=True)
class ActionRequest:
    task_id: int
    action: Action
    # Who acts (a person id from the council file); None is the system itself.
    person_id: str | None
    # The task version on the card that was clicked; None: do not check.
    expected_version: int | None
    note: str | None = None  # an update, or a note with any other action (<= NOTE_MAX chars)
    outcome: str | None = None  # COMPLETE: a code of the task's service's outcomes
    reason: str | None = None  # HANDBACK: required (<= REASON_MAX chars)
    officer: str | None = None  # REASSIGN: the new assignee's person id
    priority: str | None = None  # PRIORITY: one of the council's priorities
    # Where the action came from when not a card ("web": the task page): recorded in the
    # events' data, so the history says so. None (cards) adds nothing.
    via: str | None = None


@dataclass(frozen=True)
class ActionResult:
    task: TaskRecord  # the task as it is now: after the change, or unchanged
    applied: bool
    # A sentence for the person: why nothing happened, or what did.
    notice: str | None


async def act(db: Database, domain: Domain, request: ActionRequest, now: datetime) -> ActionResult:
    """Apply ``request`` if this person may, now; LookupError for an unknown task."""
    return await db.run(lambda conn: _act(conn, domain, request, now))


async def set_duty(db: Database, person_id: str, on_duty: bool, now: datetime) -> bool:
    """Put a person on or off duty; returns whether they were on duty before.

    Off duty, an officer gets no new tasks (routing skips them) and cannot take queue
    tasks; their open tasks stay with them. LookupError for an unknown person.
    """

    def change(conn: Connection) -> bool:
        before = conn.execute(
            select(people.c.on_duty).where(people.c.id == person_id).with_for_update()
        ).scalar_one_or_none()
        if before is None:
            raise LookupError(f"no person '{person_id}'")
        if bool(before) != on_duty:
            conn.execute(
                update(people)
                .where(people.c.id == person_id)
                .values(on_duty=on_duty, updated_at=now)
            )
        return bool(before)

    return await db.run(change)


# -- the command ---------------------------------------------------------------------------


@dataclass
class _Change:
    """What an allowed action writes, worked out before anything is written."""

    values: dict[str, Any]
    events: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    notice: str
    cursor: tuple[str, str] | None = None  # (team, officer): move the round-robin cursor


def _act(conn: Connection, domain: Domain, request: ActionRequest, now: datetime) -> ActionResult:
    council = domain.council
    row = (
        conn.execute(select(tasks).where(tasks.c.id == request.task_id).with_for_update())
    ).first()
    if row is None:
        raise LookupError(f"no task {request.task_id}")
    task = TaskRecord.from_row(row, domain.prefix)
    team = council.team(task.team)
    queue_task = team is not None and team.routing == "queue"

    if request.expected_version is not None and request.expected_version != task.version:
        notice = _repeat_notice(conn, council, task, request, queue_task)
        return ActionResult(task, False, notice or STALE)

    on_duty = _on_duty(conn, request.person_id)
    rel = relations(request.person_id, council, task.team, task.assignee, on_duty=on_duty)
    decision = decide(task.status, request.action, rel, queue_task=queue_task)
    if not decision.ok:
        notice = _repeat_notice(conn, council, task, request, queue_task)
        return ActionResult(task, False, notice or decision.reason)

    problem = _invalid(conn, council, task, request)
    if problem is not None:
        return ActionResult(task, False, problem)

    assert decision.target is not None
    change = _change(conn, council, team, task, request, decision.target, now)
    new_version = task.version + 1
    done = conn.execute(
        update(tasks)
        .where(tasks.c.id == task.id, tasks.c.version == task.version)
        .values(**change.values, version=tasks.c.version + 1, updated_at=now)
    )
    if done.rowcount == 0:  # moved on under us despite the lock: nothing written yet
        current = load_task(conn, domain, task.id)
        return ActionResult(current or task, False, STALE)
    event_ids = conn.execute(
        insert(task_events).returning(task_events.c.id, sort_by_parameter_order=True),
        change.events,
    ).scalars()
    webhooks = webhook_messages(
        council, task.id, zip(event_ids, (e["action"] for e in change.events), strict=True), now
    )
    if change.cursor is not None:
        team_code, officer = change.cursor
        conn.execute(update(teams).where(teams.c.code == team_code).values(last_assigned=officer))
    refresh = CardRefresh.of(task.id, new_version, now)
    notices = status_notices(
        conn, task, Status(change.values["status"]), request.person_id, new_version, now
    )
    updated = load_task(conn, domain, task.id)
    assert updated is not None
    enqueue(conn, [refresh, *change.messages, *notices, *webhooks], deliver_by=updated.due_at)
    return ActionResult(updated, True, change.notice)


def _change(
    conn: Connection,
    council: Council,
    team: Team | None,
    task: TaskRecord,
    request: ActionRequest,
    target: Status,
    now: datetime,
) -> _Change:
    action, person = request.action, request.person_id
    actor = person or "system"
    note = _clean(request.note)
    values: dict[str, Any] = {"status": target.value}
    data: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = []
    notice = ""

    if action is Action.ACCEPT:
        notice = "You accepted this task."
        if task.assignee is None:  # a queue task: whoever accepts first takes it
            values["assignee"] = person
            data = {"to": person}
            notice = "You took this task."
    elif action is Action.START:
        notice = "You started this task."
    elif action is Action.UPDATE:
        notice = "Update added."
    elif action is Action.COMPLETE:
        values.update(outcome=request.outcome, closed_at=now)
        data = {"outcome": request.outcome}
        messages = _completed_messages(conn, council, task.id, now)
        notice = "Completed."
    elif action is Action.CANCEL:
        values["closed_at"] = now
        note = _clean(request.reason) or note  # the card asks why; the reason is the note
        notice = "Cancelled."
    elif action is Action.PRIORITY:
        assert request.priority is not None
        # Due again from when it was reported, as if it had come in at this priority.
        hours = council.priority_hours(request.priority)
        values.update(
            priority=request.priority,
            due_at=due_at(task.created_at, hours, council.tz),
            priority_reasons=[*task.priority_reasons, f"set to {request.priority} by {actor}"],
        )
        data = {"from": task.priority, "to": request.priority}
        notice = f"Now {priority_words(request.priority)}."
    elif action is Action.REASSIGN:
        assert request.officer is not None
        values["assignee"] = request.officer
        values["routing_reasons"] = [
            *task.routing_reasons[:2],
            f"reassigned by {actor} to {request.officer}",
        ]
        data = {"from": task.assignee, "to": request.officer}
        messages = [TaskCard.to_person(task.id, request.officer, task.version + 1, now)]
        notice = f"Reassigned to {_name(council, request.officer)}."
    elif action is Action.HANDBACK:
        return _handback(conn, council, team, task, request, target, now)

    if request.via is not None:
        data = {**(data or {}), "via": request.via}
    event = _event(task, now, actor, action.value, task.status, target, note, data)
    return _Change(values, [event], messages, notice)


def _handback(
    conn: Connection,
    council: Council,
    team: Team | None,
    task: TaskRecord,
    request: ActionRequest,
    target: Status,
    now: datetime,
) -> _Change:
    """Return the task, then route it again within its team, never to the same officer."""
    returned_by = task.assignee
    exclude = frozenset({returned_by}) if returned_by else frozenset()
    chosen: str | None = None
    cursor: tuple[str, str] | None = None
    if team is None:
        reasons: tuple[str, ...] = (f"team {task.team} is no longer in the council file",)
    else:
        # Lock the team row (PostgreSQL) like create_task, so routing sees other assignments.
        last = (
            conn.execute(
                select(teams.c.last_assigned).where(teams.c.code == team.code).with_for_update()
            )
        ).scalar_one_or_none()
        loads = officer_loads(conn, team.officers)
        chosen, reasons = choose_officer(team, loads, last, exclude)
        if chosen is not None and team.routing == "round-robin":
            cursor = (team.code, chosen)

    actor = request.person_id or "system"
    back_data: dict[str, Any] = {"from": returned_by}
    if request.via is not None:
        back_data["via"] = request.via
    if chosen is None:
        back_data["routing_reasons"] = list(reasons)
    events = [
        _event(
            task,
            now,
            actor,
            Action.HANDBACK.value,
            task.status,
            target,
            _clean(request.reason),
            back_data,
        )
    ]
    values: dict[str, Any] = {
        "status": target.value,
        "assignee": chosen,
        "routing_reasons": [
            *task.routing_reasons[:2],
            f"handed back by {returned_by or actor}",
            *reasons,
        ],
    }
    if chosen is not None:
        values["status"] = Status.ASSIGNED.value
        events.append(
            _event(
                task,
                now,
                "system",
                Action.ASSIGN.value,
                target,
                Status.ASSIGNED,
                None,
                {"to": chosen, "routing_reasons": list(reasons)},
            )
        )
        notice = f"Handed back; now assigned to {_name(council, chosen)}."
    else:
        notice = "Handed back; it now waits for the team to take it."
    messages = delivery_messages(
        conn, council, task.id, task.team, chosen, task.version + 1, now, exclude
    )
    return _Change(values, events, messages, notice, cursor)


def _event(
    task: TaskRecord,
    now: datetime,
    actor: str,
    action: str,
    from_status: Status,
    to_status: Status,
    note: str | None,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "at": now,
        "actor": actor,
        "action": action,
        "from_status": from_status.value,
        "to_status": to_status.value,
        "note": note,
        "data": data,
    }


def _completed_messages(
    conn: Connection, council: Council, task_id: int, now: datetime
) -> list[dict[str, Any]]:
    """'completed' for every report of the task whose reporter asked for updates.

    Only whether an address is held is read here, never the address itself.
    """
    rows = conn.execute(
        select(
            reports.c.id,
            contacts.c.updates,
            contacts.c.email.is_not(None).label("has_email"),
            contacts.c.phone.is_not(None).label("has_phone"),
        )
        .join(contacts, contacts.c.report_id == reports.c.id)
        .where(reports.c.task_id == task_id, contacts.c.erased_at.is_(None))
        .order_by(reports.c.id)
    )
    messages: list[dict[str, Any]] = []
    for r in rows:
        messages += notify_rows(
            council,
            task_id,
            r.id,
            r.updates or [],
            bool(r.has_email),
            bool(r.has_phone),
            "completed",
            now,
        )
    return messages


# -- checks --------------------------------------------------------------------------------


def _on_duty(conn: Connection, person_id: str | None) -> bool:
    if person_id is None:
        return True
    value = (
        conn.execute(select(people.c.on_duty).where(people.c.id == person_id))
    ).scalar_one_or_none()
    return True if value is None else bool(value)


def _invalid(
    conn: Connection, council: Council, task: TaskRecord, request: ActionRequest
) -> str | None:
    """What is wrong with the inputs of an allowed action, or None."""
    note = _clean(request.note)
    if request.action is Action.UPDATE and not note:
        return NEED_NOTE
    if note is not None and len(note) > NOTE_MAX:
        return NOTE_TOO_LONG
    if request.action is Action.COMPLETE:
        problem = _outcome_problem(council, task, request.outcome)
        if problem is not None:
            return problem
    if request.action is Action.HANDBACK:
        reason = _clean(request.reason)
        if not reason:
            return NEED_REASON
        if len(reason) > REASON_MAX:
            return REASON_TOO_LONG
    if request.action is Action.CANCEL:
        reason = _clean(request.reason)
        if reason is not None and len(reason) > REASON_MAX:
            return REASON_TOO_LONG
    if request.action is Action.PRIORITY:
        if not request.priority or request.priority not in council.priority_names:
            return NEED_PRIORITY
        if request.priority == task.priority:
            return f"It is already {priority_words(task.priority)}."
    if request.action is Action.REASSIGN:
        officer = request.officer
        team = council.team(task.team)
        if not officer or team is None or officer not in team.officers:
            return NEED_OFFICER
        active = (
            conn.execute(select(people.c.active).where(people.c.id == officer))
        ).scalar_one_or_none()
        if not active:
            return NEED_OFFICER
        if officer == task.assignee:
            return f"Already assigned to {_name(council, officer)}."
    return None


def _outcome_problem(council: Council, task: TaskRecord, outcome: str | None) -> str | None:
    """Why ``outcome`` cannot complete this task, or None: only its service's outcomes can."""
    if not outcome:
        return NEED_OUTCOME
    outcomes = council.outcomes_for(task.type)
    if any(o.code == outcome for o in outcomes):
        return None
    task_type = council.task_type(task.type)
    service = council.service(task_type.service) if task_type else None
    whose = f"the outcomes for {service.name}" if service else "this task's outcomes"
    return f"That isn't one of {whose} ({outcome_list(outcomes)}), so nothing was changed."


def _repeat_notice(
    conn: Connection,
    council: Council,
    task: TaskRecord,
    request: ActionRequest,
    queue_task: bool,
) -> str | None:
    """A friendlier word when the click repeats what already happened, or lost a race."""
    action, person = request.action, request.person_id
    mine = person is not None and task.assignee == person
    if action is Action.ACCEPT and task.status in _ACCEPTED:
        if mine:
            return "You have already accepted this task."
        if queue_task and task.assignee is not None:
            return f"{_name(council, task.assignee)} took this task first."
    if action is Action.START and mine and task.status in _STARTED:
        return "You have already started this task."
    if action is Action.COMPLETE and mine and task.status is Status.COMPLETED:
        return "You have already completed this task."
    if action is Action.CANCEL and task.status is Status.CANCELLED:
        return "This task has already been cancelled."
    if (
        action is Action.REASSIGN
        and request.officer is not None
        and request.officer == task.assignee
        and task.status is Status.ASSIGNED
    ):
        return f"Already assigned to {_name(council, task.assignee)}."
    actor = person or "system"
    if action is Action.HANDBACK and not mine:
        last = _last_event(conn, task.id, Action.HANDBACK)
        if last is not None and last.actor == actor:
            return "You have already handed this task back."
    if action is Action.UPDATE:
        last = _last_event(conn, task.id)
        if last is not None and (last.action, last.actor, last.note) == (
            action.value,
            actor,
            _clean(request.note),
        ):
            return "Your update has already been added."
    return None


def _last_event(conn: Connection, task_id: int, action: Action | None = None) -> Any:
    """The task's latest event (of ``action``, if given)."""
    query = select(task_events.c.actor, task_events.c.action, task_events.c.note).where(
        task_events.c.task_id == task_id
    )
    if action is not None:
        query = query.where(task_events.c.action == action.value)
    return (conn.execute(query.order_by(task_events.c.id.desc()).limit(1))).first()


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    return text.strip() or None


def _name(council: Council, person_id: str) -> str:
    person = council.person(person_id)
    return person.name if person else person_id


__all__ = ["ActionRequest", "ActionResult", "act", "set_duty"]
