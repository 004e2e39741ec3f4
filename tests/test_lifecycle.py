"""The transition table: every action allowed where it should be and refused elsewhere."""

from __future__ import annotations

import itertools

import pytest
from domain_helpers import example_council, other_council

from responder.domain.lifecycle import (
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    Decision,
    Relation,
    Status,
    allowed_actions,
    decide,
    relations,
)

S, A, R = Status, Action, Relation
OPEN = [S.UNASSIGNED, S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS]

# Written out independently of TRANSITIONS: (action, status, relation, queue task?) -> target.
# Anything not listed must be refused.
EXPECTED: dict[tuple[Action, Status, Relation, bool], Status] = {}


def _allow(
    action: Action,
    statuses: list[Status],
    rels: list[Relation],
    target: Status | None,
    queues: tuple[bool, ...] = (False, True),
) -> None:
    for status, rel, queue in itertools.product(statuses, rels, queues):
        EXPECTED[(action, status, rel, queue)] = target or status


_allow(A.ASSIGN, [S.UNASSIGNED], [R.SYSTEM, R.TEAM_MANAGER], S.ASSIGNED)
_allow(A.ACCEPT, [S.ASSIGNED], [R.ASSIGNEE], S.ACCEPTED)
_allow(A.ACCEPT, [S.UNASSIGNED], [R.TEAM_OFFICER], S.ACCEPTED, queues=(True,))
_allow(A.START, [S.ACCEPTED], [R.ASSIGNEE], S.IN_PROGRESS)
_allow(A.UPDATE, [S.ACCEPTED, S.IN_PROGRESS], [R.ASSIGNEE, R.TEAM_MANAGER], None)
_allow(A.COMPLETE, [S.ACCEPTED, S.IN_PROGRESS], [R.ASSIGNEE], S.COMPLETED)
_allow(A.HANDBACK, OPEN[1:], [R.ASSIGNEE, R.TEAM_MANAGER], S.UNASSIGNED)
_allow(A.REASSIGN, OPEN, [R.TEAM_MANAGER, R.SYSTEM], S.ASSIGNED)
_allow(A.CANCEL, OPEN, [R.TEAM_MANAGER, R.SYSTEM], S.CANCELLED)
_allow(A.PRIORITY, OPEN, [R.TEAM_MANAGER, R.SYSTEM], None)


@pytest.mark.parametrize(
    ("action", "status", "rel", "queue"),
    list(itertools.product(Action, Status, Relation, (False, True))),
)
def test_every_transition_allowed_or_refused(
    action: Action, status: Status, rel: Relation, queue: bool
) -> None:
    decision = decide(status, action, frozenset({rel}), queue_task=queue)
    expected = EXPECTED.get((action, status, rel, queue))
    if expected is None:
        assert not decision.ok
        assert decision.target is None
        assert decision.reason.startswith(("This task", "Only ")), decision.reason
        assert decision.reason.endswith(".")
    else:
        assert decision == Decision(True, expected, "")


def test_open_statuses() -> None:
    assert frozenset(OPEN) == OPEN_STATUSES
    assert S.COMPLETED not in OPEN_STATUSES and S.CANCELLED not in OPEN_STATUSES


def test_table_shape() -> None:
    assert {t.action for t in TRANSITIONS} == set(Action)
    assert [t.action for t in TRANSITIONS if t.queue_only] == [A.ACCEPT]
    assert [t.action for t in TRANSITIONS if t.target is None] == [A.UPDATE, A.PRIORITY]
    # Nothing ever leaves a closed state.
    assert all(not (t.sources - OPEN_STATUSES) for t in TRANSITIONS)


@pytest.mark.parametrize(
    ("status", "action", "rel", "reason"),
    [
        # State is checked first, even for people who could never do it.
        (S.COMPLETED, A.COMPLETE, R.OTHER, "This task is already completed."),
        (S.COMPLETED, A.CANCEL, R.TEAM_MANAGER, "This task is already completed."),
        (S.CANCELLED, A.UPDATE, R.ASSIGNEE, "This task has been cancelled."),
        (S.ASSIGNED, A.START, R.ASSIGNEE, "This task has not been accepted yet."),
        (S.ASSIGNED, A.COMPLETE, R.OTHER, "This task has not been accepted yet."),
        (S.UNASSIGNED, A.UPDATE, R.TEAM_MANAGER, "This task has not been accepted yet."),
        (S.UNASSIGNED, A.ACCEPT, R.TEAM_OFFICER, "This task has not been assigned to anyone yet."),
        (S.ACCEPTED, A.ACCEPT, R.ASSIGNEE, "This task has already been accepted."),
        (S.IN_PROGRESS, A.START, R.ASSIGNEE, "This task is already in progress."),
        (S.ASSIGNED, A.ASSIGN, R.SYSTEM, "This task is already assigned; reassign it instead."),
        (S.UNASSIGNED, A.HANDBACK, R.TEAM_MANAGER, "This task is not assigned to anyone."),
        # Then who is asking.
        (S.ACCEPTED, A.START, R.TEAM_MANAGER, "Only the assigned officer can start this task."),
        (
            S.ACCEPTED,
            A.COMPLETE,
            R.TEAM_OFFICER,
            "Only the assigned officer can complete this task.",
        ),
        (S.ASSIGNED, A.ACCEPT, R.TEAM_MANAGER, "Only the assigned officer can accept this task."),
        (S.ACCEPTED, A.CANCEL, R.ASSIGNEE, "Only a manager of the team can cancel this task."),
        (S.ASSIGNED, A.REASSIGN, R.OTHER, "Only a manager of the team can reassign this task."),
        (
            S.UNASSIGNED,
            A.ASSIGN,
            R.TEAM_OFFICER,
            "Only a manager of the team can assign this task.",
        ),
        (
            S.IN_PROGRESS,
            A.UPDATE,
            R.OTHER,
            "Only the assigned officer or a manager of the team can add an update to this task.",
        ),
        (
            S.ACCEPTED,
            A.HANDBACK,
            R.TEAM_OFFICER,
            "Only the assigned officer or a manager of the team can hand this task back.",
        ),
    ],
)
def test_refusal_reasons(status: Status, action: Action, rel: Relation, reason: str) -> None:
    assert decide(status, action, frozenset({rel})) == Decision(False, None, reason)


def test_queue_task_accept() -> None:
    officer, manager = frozenset({R.TEAM_OFFICER}), frozenset({R.TEAM_MANAGER})
    assert decide(S.UNASSIGNED, A.ACCEPT, officer, queue_task=True).target == S.ACCEPTED
    refused = decide(S.UNASSIGNED, A.ACCEPT, manager, queue_task=True)
    assert refused.reason == "Only an on-duty officer of the team can accept this task."
    # Someone else got there first: the second officer is told so.
    late = decide(S.ACCEPTED, A.ACCEPT, officer, queue_task=True)
    assert late.reason == "This task has already been accepted."
    # A manager may still assign a queue task to someone, who then accepts as usual.
    assert decide(S.ASSIGNED, A.ACCEPT, frozenset({R.ASSIGNEE}), queue_task=True).ok


def test_any_of_several_relations_is_enough() -> None:
    both = frozenset({R.ASSIGNEE, R.TEAM_MANAGER})
    assert decide(S.IN_PROGRESS, A.CANCEL, both).ok
    assert decide(S.IN_PROGRESS, A.COMPLETE, both).ok


def test_empty_relations_are_refused() -> None:
    assert not decide(S.ACCEPTED, A.UPDATE, frozenset()).ok


def test_relations_example_council() -> None:
    council = example_council()
    assert relations(None, council, "sc-north", "bob") == {R.SYSTEM}
    assert relations("bob", council, "sc-north", "bob") == {R.ASSIGNEE, R.TEAM_OFFICER}
    assert relations("carol", council, "sc-north", "bob") == {R.TEAM_OFFICER}
    assert relations("carol", council, "sc-north", "bob", on_duty=False) == {R.OTHER}
    assert relations("bob", council, "sc-north", "bob", on_duty=False) == {R.ASSIGNEE}
    assert relations("alice", council, "sc-north", None) == {R.TEAM_MANAGER}
    assert relations("frank", council, "sc-north", None) == {R.OTHER}  # manages another team
    assert relations("dan", council, "sc-north", None) == {R.OTHER}
    assert relations("stranger", council, "sc-north", None) == {R.OTHER}
    assert relations("bob", council, "no-such-team", "bob") == {R.ASSIGNEE}


def test_relations_other_council() -> None:
    council = other_council()
    # mo manages every team; as the assignee too, both count.
    assert relations("mo", council, "roads", "mo") == {R.ASSIGNEE, R.TEAM_MANAGER}
    assert relations("fay", council, "roads", None) == {R.TEAM_OFFICER}


def test_allowed_actions() -> None:
    assignee, manager = frozenset({R.ASSIGNEE}), frozenset({R.TEAM_MANAGER})
    assert allowed_actions(S.ASSIGNED, assignee) == [A.ACCEPT, A.HANDBACK]
    assert allowed_actions(S.ACCEPTED, assignee) == [A.START, A.UPDATE, A.COMPLETE, A.HANDBACK]
    assert allowed_actions(S.IN_PROGRESS, assignee) == [A.UPDATE, A.COMPLETE, A.HANDBACK]
    assert allowed_actions(S.UNASSIGNED, manager) == [A.ASSIGN, A.REASSIGN, A.CANCEL, A.PRIORITY]
    assert allowed_actions(S.ASSIGNED, manager) == [A.HANDBACK, A.REASSIGN, A.CANCEL, A.PRIORITY]
    officer = frozenset({R.TEAM_OFFICER})
    assert allowed_actions(S.UNASSIGNED, officer) == []
    assert allowed_actions(S.UNASSIGNED, officer, queue_task=True) == [A.ACCEPT]
    for closed in (S.COMPLETED, S.CANCELLED):
        assert allowed_actions(closed, frozenset(Relation)) == []


def test_values_are_stable_strings() -> None:
    # Stored in the database and sent in card payloads.
    assert [s.value for s in Status] == [
        "unassigned",
        "assigned",
        "accepted",
        "in_progress",
        "completed",
        "cancelled",
    ]
    assert Action("handback") is A.HANDBACK
    assert str(R.TEAM_MANAGER) == "team_manager"
