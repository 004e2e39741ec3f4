"""Task states, who may do what, and why not: the one transition table.

Everything that changes a task's status asks ``decide`` first, so the rules live here
once and the refusal a user sees is a sentence they can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from responder.config.model import Council


class Status(StrEnum):
    UNASSIGNED = "unassigned"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


OPEN_STATUSES: frozenset[Status] = frozenset(
    {Status.UNASSIGNED, Status.ASSIGNED, Status.ACCEPTED, Status.IN_PROGRESS}
)


class Action(StrEnum):
    ASSIGN = "assign"
    ACCEPT = "accept"
    START = "start"
    UPDATE = "update"
    COMPLETE = "complete"
    HANDBACK = "handback"
    REASSIGN = "reassign"
    CANCEL = "cancel"
    PRIORITY = "priority"  # a manager changes how urgent it is (and so when it is due)


class Relation(StrEnum):
    """How the person acting relates to the task (a person may hold several)."""

    SYSTEM = "system"
    ASSIGNEE = "assignee"
    TEAM_OFFICER = "team_officer"
    TEAM_MANAGER = "team_manager"
    OTHER = "other"


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Status]
    # None: the task stays in its current status (e.g. adding a note).
    target: Status | None
    allowed: frozenset[Relation]
    # Only for tasks offered to a whole team (routing: queue).
    queue_only: bool = False


def _row(
    action: Action,
    sources: set[Status],
    target: Status | None,
    allowed: set[Relation],
    *,
    queue_only: bool = False,
) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(allowed), queue_only)


S, A, R = Status, Action, Relation
TRANSITIONS: tuple[Transition, ...] = (
    _row(A.ASSIGN, {S.UNASSIGNED}, S.ASSIGNED, {R.SYSTEM, R.TEAM_MANAGER}),
    _row(A.ACCEPT, {S.ASSIGNED}, S.ACCEPTED, {R.ASSIGNEE}),
    # Queue tasks: any on-duty officer of the team may take it; the first one wins.
    _row(A.ACCEPT, {S.UNASSIGNED}, S.ACCEPTED, {R.TEAM_OFFICER}, queue_only=True),
    _row(A.START, {S.ACCEPTED}, S.IN_PROGRESS, {R.ASSIGNEE}),
    _row(A.UPDATE, {S.ACCEPTED, S.IN_PROGRESS}, None, {R.ASSIGNEE, R.TEAM_MANAGER}),
    # Starting first is optional: small jobs are often accepted and done in one go.
    _row(A.COMPLETE, {S.ACCEPTED, S.IN_PROGRESS}, S.COMPLETED, {R.ASSIGNEE}),
    # The command re-routes a handed-back task (excluding the officer who returned it).
    _row(
        A.HANDBACK,
        {S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS},
        S.UNASSIGNED,
        {R.ASSIGNEE, R.TEAM_MANAGER},
    ),
    _row(A.REASSIGN, set(OPEN_STATUSES), S.ASSIGNED, {R.TEAM_MANAGER, R.SYSTEM}),
    _row(A.CANCEL, set(OPEN_STATUSES), S.CANCELLED, {R.TEAM_MANAGER, R.SYSTEM}),
    _row(A.PRIORITY, set(OPEN_STATUSES), None, {R.TEAM_MANAGER, R.SYSTEM}),
)
del S, A, R


@dataclass(frozen=True)
class Decision:
    ok: bool
    # The status after the action (the current one for UPDATE); None when refused.
    target: Status | None
    # Empty when allowed; a sentence for the user when refused.
    reason: str


def relations(
    person_id: str | None,
    council: Council,
    team_code: str,
    assignee: str | None,
    on_duty: bool = True,
) -> frozenset[Relation]:
    """How ``person_id`` relates to a task of ``team_code`` assigned to ``assignee``.

    None is the system itself (routing, jobs). Off-duty officers do not count as team
    officers, so they cannot pick up queue tasks; they can still act on their own.
    """
    if person_id is None:
        return frozenset({Relation.SYSTEM})
    rel: set[Relation] = set()
    if assignee is not None and person_id == assignee:
        rel.add(Relation.ASSIGNEE)
    team = council.team(team_code)
    if team is not None:
        if on_duty and person_id in team.officers:
            rel.add(Relation.TEAM_OFFICER)
        if person_id in team.managers:
            rel.add(Relation.TEAM_MANAGER)
    return frozenset(rel or {Relation.OTHER})


# What the action is, for "Only ... can <phrase>."
_PHRASES: dict[Action, str] = {
    Action.ASSIGN: "assign this task",
    Action.ACCEPT: "accept this task",
    Action.START: "start this task",
    Action.UPDATE: "add an update to this task",
    Action.COMPLETE: "complete this task",
    Action.HANDBACK: "hand this task back",
    Action.REASSIGN: "reassign this task",
    Action.CANCEL: "cancel this task",
    Action.PRIORITY: "change this task's priority",
}

# Who a relation is, in words. SYSTEM is left out: users cannot act as the system.
_WHO: dict[Relation, str] = {
    Relation.ASSIGNEE: "the assigned officer",
    Relation.TEAM_OFFICER: "an on-duty officer of the team",
    Relation.TEAM_MANAGER: "a manager of the team",
}

# Refusals because of the task's state, where a specific sentence helps.
_STATE_REASONS: dict[tuple[Action, Status], str] = {
    (Action.ASSIGN, Status.ASSIGNED): "This task is already assigned; reassign it instead.",
    (Action.ASSIGN, Status.ACCEPTED): "This task is already assigned; reassign it instead.",
    (Action.ASSIGN, Status.IN_PROGRESS): "This task is already assigned; reassign it instead.",
    (Action.ACCEPT, Status.UNASSIGNED): "This task has not been assigned to anyone yet.",
    (Action.ACCEPT, Status.ACCEPTED): "This task has already been accepted.",
    (Action.ACCEPT, Status.IN_PROGRESS): "This task is already in progress.",
    (Action.START, Status.IN_PROGRESS): "This task is already in progress.",
    (Action.HANDBACK, Status.UNASSIGNED): "This task is not assigned to anyone.",
}
_CLOSED_REASONS: dict[Status, str] = {
    Status.COMPLETED: "This task is already completed.",
    Status.CANCELLED: "This task has been cancelled.",
}
_NOT_ACCEPTED = "This task has not been accepted yet."


def _state_reason(status: Status, action: Action) -> str:
    if status in _CLOSED_REASONS:
        return _CLOSED_REASONS[status]
    if (action, status) in _STATE_REASONS:
        return _STATE_REASONS[(action, status)]
    if status in (Status.UNASSIGNED, Status.ASSIGNED):
        return _NOT_ACCEPTED  # start / update / complete before acceptance
    return f"This task cannot be changed that way while it is {status.value}."


def _who_reason(action: Action, allowed: frozenset[Relation]) -> str:
    who = [_WHO[r] for r in Relation if r in allowed and r in _WHO]
    if not who:
        return f"Nobody can {_PHRASES[action]} by hand; it happens automatically."
    return f"Only {' or '.join(who)} can {_PHRASES[action]}."


def _rows(action: Action, queue_task: bool) -> list[Transition]:
    return [t for t in TRANSITIONS if t.action == action and (queue_task or not t.queue_only)]


def decide(
    status: Status, action: Action, rel: frozenset[Relation], *, queue_task: bool = False
) -> Decision:
    """May someone with relations ``rel`` do ``action`` to a task in ``status``?

    The state is checked first: "already completed" is the useful answer even for
    someone who could never have completed it.
    """
    in_state = [t for t in _rows(action, queue_task) if status in t.sources]
    if not in_state:
        return Decision(False, None, _state_reason(status, action))
    for t in in_state:
        if t.allowed & rel:
            return Decision(True, t.target or status, "")
    allowed = frozenset().union(*(t.allowed for t in in_state))
    return Decision(False, None, _who_reason(action, allowed))


def allowed_actions(
    status: Status, rel: frozenset[Relation], *, queue_task: bool = False
) -> list[Action]:
    """Actions open to ``rel`` now, in ``Action`` order (for buttons on cards)."""
    return [a for a in Action if decide(status, a, rel, queue_task=queue_task).ok]
