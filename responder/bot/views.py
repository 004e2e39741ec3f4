"""Who sees what: the task card for one viewer, built from the current task state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from responder.cards.common import when
from responder.cards.task_card import TaskView, outcome_choices, task_card
from responder.domain.context import Domain
from responder.domain.lifecycle import Action, Relation, Status, allowed_actions, relations
from responder.domain.records import TaskRecord
from responder.domain.vocabulary import (
    DELIVERY_EVENTS,
    EVENT_WORDS,
    PEOPLE_EVENTS,
    delivery_problem,
    outcome_words,
    priority_words,
)
from responder.queries.tasks import load_task, nearest_address, recent_events
from responder.store.schema import people
from responder.store.teams_state import teams_user_ids

# Teams accepts at most 60 user ids in a card's refresh list.
MAX_REFRESH_USERS = 60
# The card lists three recent lines; a manager's are read from a few more, since
# deliveries that worked are left out.
MAX_RECENT = 3
MAX_RECENT_READ = 12


@dataclass(frozen=True)
class Viewer:
    """A person looking at their own copy, or a team channel's shared copy."""

    person_id: str | None = None
    channel_team: str | None = None

    @property
    def recipient(self) -> str:
        return f"person:{self.person_id}" if self.person_id else f"channel:{self.channel_team}"

    @classmethod
    def of(cls, recipient: str) -> Viewer:
        kind, _, ident = recipient.partition(":")
        return cls(person_id=ident) if kind == "person" else cls(channel_team=ident)


def event_line(
    council,
    action: str,
    actor: str,
    note: str | None,
    outcome: str | None = None,
    data: object = None,
) -> str:
    """'Done (Cleared / fixed) by Bob Warden: note', 'Assigned to Carol Warden': the event
    in staff words."""
    words = EVENT_WORDS.get(action, action.replace("_", " ").capitalize())
    if outcome is not None:
        words += f" ({outcome})"
    to = data.get("to") if isinstance(data, dict) else None
    if action in ("assign", "reassign") and isinstance(to, str):
        words += f" to {_name(council, to)}"
    if action == "priority" and isinstance(to, str):
        words = f"Now {priority_words(to)}"
    person = council.person(actor)
    who = f" by {person.name}" if person else ""
    return f"{words}{who}" + (f": {note}" if note else "")


_event_line = event_line  # the name tests and older callers use


def _outcome(event, outcomes) -> str | None:
    """A completion's outcome, in the council's words for staff."""
    data = event.data
    if event.action != "complete" or not isinstance(data, dict):
        return None
    code = data.get("outcome")
    return outcome_words(outcomes, code, "officer") if isinstance(code, str) else None


def render(
    conn: Connection,
    domain: Domain,
    task: TaskRecord | int,
    viewer: Viewer,
    now: datetime,
    notice: str | None = None,
) -> tuple[TaskRecord, dict] | None:
    view = task_view(conn, domain, task, viewer, now, notice)
    return (view.task, task_card(view)) if view is not None else None


def task_view(
    conn: Connection,
    domain: Domain,
    task: TaskRecord | int,
    viewer: Viewer,
    now: datetime,
    notice: str | None = None,
) -> TaskView | None:
    """What the task card shows this viewer (the web's task page shows the same)."""
    council = domain.council
    if isinstance(task, int):
        loaded = load_task(conn, domain, task)
        if loaded is None:
            return None
        task = loaded
    team = council.team(task.team)
    queue_task = team is not None and team.routing == "queue"
    officers = list(team.officers) if team else []
    duty = dict(
        (
            conn.execute(
                select(people.c.id, people.c.on_duty).where(
                    people.c.id.in_([*officers, *([viewer.person_id] if viewer.person_id else [])])
                )
            )
        ).all()
    )
    if viewer.person_id:
        rel = relations(
            viewer.person_id,
            council,
            task.team,
            task.assignee,
            on_duty=bool(duty.get(viewer.person_id, True)),
        )
    else:
        # A channel's shared copy: anyone may claim a queue task from it (the click is
        # checked against the person who makes it); otherwise it is read-only.
        rel = frozenset({Relation.TEAM_OFFICER if queue_task else Relation.OTHER})
    actions = allowed_actions(task.status, rel, queue_task=queue_task)
    if Relation.TEAM_MANAGER in rel and Relation.ASSIGNEE not in rel:
        # Handing back is the assignee's "not for me"; a manager moves work by reassigning.
        actions = [a for a in actions if a != Action.HANDBACK]

    choices: tuple[tuple[str, str], ...] = ()
    if Action.REASSIGN in actions:
        choices = tuple(
            (p, _name(council, p)) for p in officers if duty.get(p, True) and p != task.assignee
        )
        if not choices:
            actions = [a for a in actions if a != Action.REASSIGN]

    outcomes = council.outcomes_for(task.type)
    # Officers see what people did; the team's managers also see delivery problems, in
    # words they can act on. Newest first, as on every card.
    manager = Relation.TEAM_MANAGER in rel
    wanted = PEOPLE_EVENTS | DELIVERY_EVENTS if manager else PEOPLE_EVENTS
    lines: list[tuple[str, str]] = []
    for e in recent_events(conn, task.id, sorted(wanted), limit=MAX_RECENT_READ):
        if e.action in DELIVERY_EVENTS:
            words = delivery_problem(e.action, e.note, e.data)
            if words is None:
                continue
        else:
            outcome = _outcome(e, outcomes)
            words = event_line(council, e.action, e.actor, e.note, outcome, e.data)
        lines.append((when(e.at.astimezone(council.tz), now), words))
    recent = tuple(lines[:MAX_RECENT])

    if viewer.person_id:
        audience = [viewer.person_id]
    else:
        audience = [*(team.managers if team else []), *officers]
    user_ids = teams_user_ids(conn, audience)
    refresh_ids = tuple(user_ids[p] for p in audience if p in user_ids)[:MAX_REFRESH_USERS]

    near = None
    if not (task.address or "").strip():
        near = nearest_address(conn, task.lat, task.lon)
    task_type = council.task_type(task.type)
    assignee = council.person(task.assignee) if task.assignee else None
    return TaskView(
        task=task,
        type_name=task_type.name if task_type else task.type,
        team_name=team.name if team else task.team,
        assignee_name=assignee.name if assignee else task.assignee,
        # A priority dropped from the council file since ranks as the least urgent.
        priority_rank=(
            council.priority_rank(task.priority)
            if task.priority in council.file.priorities
            else len(council.priority_names)
        ),
        priority_count=len(council.priority_names),
        due_local=task.due_at.astimezone(council.tz),
        now=now,
        actions=tuple(actions),
        reassign_choices=choices,
        priority_choices=tuple(
            (name, priority_words(name)) for name in council.priority_names if name != task.priority
        )
        if Action.PRIORITY in actions
        else (),
        outcomes=outcome_choices(outcomes),
        notice=notice,
        refresh_user_ids=refresh_ids,
        recent=recent,
        near=near,
    )


def is_open(task: TaskRecord) -> bool:
    return task.status not in (Status.COMPLETED, Status.CANCELLED)


def _name(council, person_id: str) -> str:
    """A person's name, or their id if the council file no longer has them."""
    person = council.person(person_id)
    return person.name if person else person_id
