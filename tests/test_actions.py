"""Acting on tasks (accept, start, update, complete, hand back, reassign, cancel) and
going on or off duty, through the command API on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from support import EXAMPLES

from responder.commands.act import (
    ActionRequest,
    ActionResult,
    act,
    set_duty,
)
from responder.commands.create import create_task
from responder.config import load_council
from responder.domain.context import Domain
from responder.domain.lifecycle import Action, Status
from responder.domain.records import NewReport, ReporterContact, TaskRecord
from responder.domain.sla import due_at
from responder.domain.vocabulary import DEFAULT_OUTCOMES
from responder.queries.tasks import load_task
from responder.store import migrate
from responder.store.db import Database
from responder.store.schema import contacts, outbox, people, task_events, tasks, teams
from responder.store.sync import sync_council

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday morning
LATER = NOW + timedelta(minutes=30)
NORTHGATE = (51.9051, 0.8873)
SOUTHMERE = (51.8850, 0.8850)
STALE = "This card was out of date; here is the task as it is now."

# One of each kind of person, for a task of sc-north assigned to bob.
PEOPLE: dict[str, str | None] = {
    "assignee": "bob",
    "team officer": "carol",
    "team manager": "alice",
    "other team's manager": "frank",
    "councillor": "cllr-hughes",
    "unknown person": "mallory",
    "system": None,
}


def spread(i: int) -> tuple[float, float]:
    """Distinct points in Northgate, far enough apart (>100 m) not to be duplicates."""
    return (51.9005 + (i // 10) * 0.0015, 0.8805 + (i % 10) * 0.0018)


def reporter(*updates: str) -> ReporterContact:
    return ReporterContact("A Resident", "a@example.com", "07700900123", tuple(updates))


def new_report(
    type_: str = "litter",
    at: tuple[float, float] = NORTHGATE,
    contact: ReporterContact | None = None,
    external_id: str | None = None,
) -> NewReport:
    return NewReport(
        type=type_,
        description="Bags of rubbish by the bench",
        lat=at[0],
        lon=at[1],
        address="1 High Street",
        photos=(),
        source="web-form",
        external_id=external_id,
        reporter=contact,
    )


@dataclass
class World:
    db: Database
    domain: Domain
    made: int = field(default=0)

    async def new_task(self, type_: str = "litter", at: tuple[float, float] | None = None):
        if at is None:
            at = spread(self.made)
            self.made += 1
        result = await create_task(self.db, self.domain, new_report(type_, at), NOW)
        assert result.created
        return result.task

    async def act(
        self,
        task_id: int,
        action: Action,
        person: str | None,
        version: int | None = None,
        now: datetime = LATER,
        **inputs: Any,
    ) -> ActionResult:
        request = ActionRequest(task_id, action, person, version, **inputs)
        return await act(self.db, self.domain, request, now)

    async def ok(self, *args: Any, **kwargs: Any) -> TaskRecord:
        result = await self.act(*args, **kwargs)
        assert result.applied, result.notice
        return result.task

    async def task_in(self, status: Status, person: str = "bob") -> TaskRecord:
        """A task of sc-north assigned to ``person`` and moved on to ``status``."""
        task = await self.new_task()
        if task.assignee != person:
            task = await self.ok(task.id, Action.REASSIGN, None, officer=person)
        if status in (Status.ACCEPTED, Status.IN_PROGRESS):
            task = await self.ok(task.id, Action.ACCEPT, person, task.version)
        if status is Status.IN_PROGRESS:
            task = await self.ok(task.id, Action.START, person, task.version)
        assert task.status is status
        return task

    async def get(self, task_id: int) -> TaskRecord:
        task = await self.db.query(lambda conn: load_task(conn, self.domain, task_id))
        assert task is not None
        return task

    async def events(self, task_id: int) -> list[Any]:
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(task_events)
                    .where(task_events.c.task_id == task_id)
                    .order_by(task_events.c.id)
                )
            ).all()

    async def outbox(self, task_id: int, *where: Any) -> dict[str, dict]:
        """Outbox rows of the task: idempotency key -> (kind, payload)."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(outbox).where(outbox.c.task_id == task_id, *where))
            return {r.idempotency_key: (r.kind, r.payload) for r in rows}

    async def snapshot(self) -> tuple:
        """Everything an action could change."""
        state = []
        async with self.db.read() as conn:
            for t in (tasks, task_events, outbox, people, teams, contacts):
                rows = await conn.execute(select(t).order_by(*t.primary_key))
                state.append([tuple(r) for r in rows])
        return tuple(state)


@pytest.fixture
async def world(database_url):
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        council = load_council(EXAMPLES / "council.yaml")
        await sync_council(db, council, NOW)
        yield World(db, Domain.for_council(council))
    finally:
        await db.dispose()


# action: (the state it is tried in, its inputs, who may, the status after, the refusal)
MATRIX: dict[Action, tuple[Status, dict, set[str], Status, str]] = {
    Action.ACCEPT: (
        Status.ASSIGNED,
        {},
        {"assignee"},
        Status.ACCEPTED,
        "Only the assigned officer can accept this task.",
    ),
    Action.START: (
        Status.ACCEPTED,
        {},
        {"assignee"},
        Status.IN_PROGRESS,
        "Only the assigned officer can start this task.",
    ),
    Action.UPDATE: (
        Status.ACCEPTED,
        {"note": "Two bags cleared, more to come"},
        {"assignee", "team manager"},
        Status.ACCEPTED,
        "Only the assigned officer or a manager of the team can add an update to this task.",
    ),
    Action.COMPLETE: (
        Status.IN_PROGRESS,
        {"outcome": "resolved"},
        {"assignee"},
        Status.COMPLETED,
        "Only the assigned officer can complete this task.",
    ),
    Action.HANDBACK: (
        Status.ACCEPTED,
        {"reason": "Needs the van"},
        {"assignee", "team manager"},
        Status.ASSIGNED,  # handed back, then re-routed to carol
        "Only the assigned officer or a manager of the team can hand this task back.",
    ),
    Action.REASSIGN: (
        Status.ACCEPTED,
        {"officer": "carol"},
        {"team manager", "system"},
        Status.ASSIGNED,
        "Only a manager of the team can reassign this task.",
    ),
    Action.CANCEL: (
        Status.IN_PROGRESS,
        {},
        {"team manager", "system"},
        Status.CANCELLED,
        "Only a manager of the team can cancel this task.",
    ),
    Action.PRIORITY: (
        Status.ACCEPTED,
        {"priority": "urgent"},
        {"team manager", "system"},
        Status.ACCEPTED,
        "Only a manager of the team can change this task's priority.",
    ),
}


@pytest.mark.parametrize("action", list(MATRIX), ids=[a.value for a in MATRIX])
async def test_each_action_by_each_kind_of_person(world, action):
    status, inputs, allowed, after, refusal = MATRIX[action]
    task = await world.task_in(status)
    before = await world.snapshot()
    for kind, person in PEOPLE.items():
        if kind in allowed:
            continue
        result = await world.act(task.id, action, person, task.version, **inputs)
        assert (result.applied, result.notice) == (False, refusal), kind
        assert result.task == task
        assert await world.snapshot() == before, f"{kind}'s refused {action} changed something"

    for kind in sorted(allowed):
        fresh = await world.task_in(status)
        result = await world.act(fresh.id, action, PEOPLE[kind], fresh.version, **inputs)
        assert result.applied, (kind, result.notice)
        assert (result.task.status, result.task.version) == (after, fresh.version + 1), kind
        assert result.task.updated_at == LATER
        assert result.task == await world.get(fresh.id)
        event = [e for e in await world.events(fresh.id) if e.action == action.value][-1]
        assert event.at == LATER
        assert event.actor == (PEOPLE[kind] or "system")
        keys = await world.outbox(fresh.id, outbox.c.kind == "teams.refresh")
        assert keys[f"refresh:{fresh.id}:{fresh.version + 1}"] == (
            "teams.refresh",
            {"task_id": fresh.id, "version": fresh.version + 1},
        )


async def test_history_records_actor_from_to_and_note(world):
    task = await world.new_task()
    assert task.assignee == "bob"
    for i, (action, inputs) in enumerate(
        [
            (Action.ACCEPT, {}),
            (Action.START, {}),
            (Action.UPDATE, {"note": "  Two bags cleared  "}),
            (Action.COMPLETE, {"outcome": "resolved", "note": "All clear now"}),
        ]
    ):
        result = await world.act(
            task.id, action, "bob", task.version, now=NOW + timedelta(minutes=i + 1), **inputs
        )
        assert result.applied, result.notice
        assert result.task.version == task.version + 1
        task = result.task
    assert (task.status, task.outcome, task.version) == (Status.COMPLETED, "resolved", 5)
    assert task.closed_at == task.updated_at == NOW + timedelta(minutes=4)
    history = [
        (e.at, e.actor, e.action, e.from_status, e.to_status, e.note, e.data)
        for e in await world.events(task.id)
    ]
    at = [NOW + timedelta(minutes=i) for i in range(5)]
    assert history[1:] == [
        (at[1], "bob", "accept", "assigned", "accepted", None, None),
        (at[2], "bob", "start", "accepted", "in_progress", None, None),
        (at[3], "bob", "update", "in_progress", "in_progress", "Two bags cleared", None),
        (
            at[4],
            "bob",
            "complete",
            "in_progress",
            "completed",
            "All clear now",
            {"outcome": "resolved"},
        ),
    ]
    refreshes = await world.outbox(task.id, outbox.c.kind == "teams.refresh")
    assert sorted(refreshes) == [f"refresh:{task.id}:{v}" for v in (2, 3, 4, 5)]


async def test_bad_inputs_are_refused_with_a_clear_notice_and_change_nothing(world):
    task = await world.task_in(Status.ACCEPTED)
    before = await world.snapshot()
    cases = [
        (Action.UPDATE, "bob", {}, "Add a note to post an update."),
        (Action.UPDATE, "bob", {"note": "   "}, "Add a note to post an update."),
        (Action.UPDATE, "bob", {"note": "x" * 1001}, "Keep the note to 1000 characters or fewer."),
        (Action.COMPLETE, "bob", {}, "Choose an outcome."),
        (
            Action.COMPLETE,
            "bob",
            {"outcome": "fixed"},
            "That isn't one of the outcomes for Street cleansing (Cleared / fixed, Nothing "
            "found, Referred elsewhere or On private land), so nothing was changed.",
        ),
        (
            Action.COMPLETE,
            "bob",
            {"outcome": "resolved", "note": "y" * 1001},
            "Keep the note to 1000 characters or fewer.",
        ),
        (Action.HANDBACK, "bob", {}, "Say why you are handing it back."),
        (Action.HANDBACK, "bob", {"reason": " \n "}, "Say why you are handing it back."),
        (
            Action.HANDBACK,
            "bob",
            {"reason": "z" * 501},
            "Keep the reason to 500 characters or fewer.",
        ),
        (Action.REASSIGN, "alice", {}, "Choose an officer of the team to reassign to."),
        # grace is an officer of another team; alice a manager; mallory nobody.
        (
            Action.REASSIGN,
            "alice",
            {"officer": "grace"},
            "Choose an officer of the team to reassign to.",
        ),
        (
            Action.REASSIGN,
            "alice",
            {"officer": "alice"},
            "Choose an officer of the team to reassign to.",
        ),
        (
            Action.REASSIGN,
            "alice",
            {"officer": "mallory"},
            "Choose an officer of the team to reassign to.",
        ),
        (Action.REASSIGN, "alice", {"officer": "bob"}, "Already assigned to Bob Warden."),
    ]
    for action, person, inputs, notice in cases:
        result = await world.act(task.id, action, person, task.version, **inputs)
        assert (result.applied, result.notice) == (False, notice), (action, inputs)
        assert result.task == task
    assert await world.snapshot() == before
    # At the limits, accepted.
    assert (await world.act(task.id, Action.UPDATE, "bob", None, note="x" * 1000)).applied
    assert (await world.act(task.id, Action.HANDBACK, "bob", None, reason="z" * 500)).applied
    codes = {o.code for o in DEFAULT_OUTCOMES}
    assert codes == {"resolved", "no-action", "referred", "private-land"}


async def test_stale_card_is_not_applied_and_shows_the_task_as_it_is(world):
    task = await world.task_in(Status.ASSIGNED)
    accepted = await world.ok(task.id, Action.ACCEPT, "bob", task.version)
    before = await world.snapshot()
    # Alice's card still shows version 1.
    result = await world.act(task.id, Action.UPDATE, "alice", task.version, note="Any news?")
    assert (result.applied, result.notice, result.task) == (False, STALE, accepted)
    # So does Bob's, for something he has not done yet.
    result = await world.act(task.id, Action.START, "bob", task.version)
    assert (result.applied, result.notice) == (False, STALE)
    # The same click again is answered kindly, with or without the version.
    for version in (task.version, None):
        result = await world.act(task.id, Action.ACCEPT, "bob", version)
        assert (result.applied, result.notice) == (False, "You have already accepted this task.")
        assert result.task == accepted
    assert await world.snapshot() == before

    updated = await world.ok(task.id, Action.UPDATE, "bob", accepted.version, note="On my way")
    result = await world.act(task.id, Action.UPDATE, "bob", accepted.version, note="On my way")
    assert (result.applied, result.notice) == (False, "Your update has already been added.")
    assert result.task == updated
    # Without a version, a second update is a second update.
    assert (await world.act(task.id, Action.UPDATE, "bob", None, note="On my way")).applied


@pytest.mark.parametrize(
    ("status", "action", "inputs", "repeat"),
    [
        (Status.ASSIGNED, Action.ACCEPT, {}, "You have already accepted this task."),
        (
            Status.ACCEPTED,
            Action.COMPLETE,
            {"outcome": "no-action"},
            "You have already completed this task.",
        ),
    ],
    ids=["accept", "complete"],
)
async def test_the_same_click_many_times_at_once_applies_exactly_once(
    world, status, action, inputs, repeat
):
    task = await world.task_in(status)
    events_before = len(await world.events(task.id))
    outbox_before = await world.outbox(task.id)
    results = await asyncio.gather(
        *(world.act(task.id, action, "bob", task.version, **inputs) for _ in range(10))
    )
    assert sum(r.applied for r in results) == 1
    assert sorted(r.notice for r in results if not r.applied) == [repeat] * 9
    after = await world.get(task.id)
    assert after.version == task.version + 1
    events = await world.events(task.id)
    assert len(events) == events_before + 1 and events[-1].action == action.value
    new = set(await world.outbox(task.id)) - set(outbox_before)
    assert new == {f"refresh:{task.id}:{task.version + 1}"}
    assert all(r.task == after for r in results)


async def test_queue_task_first_accept_wins_and_the_other_is_told_who(world):
    task = await world.new_task("fallen-tree")
    assert (task.team, task.assignee, task.status) == ("green", None, Status.UNASSIGNED)
    before = await world.snapshot()
    # Only on-duty officers of the team may take it.
    for person in ("frank", "bob", "cllr-hughes", "mallory"):
        result = await world.act(task.id, Action.ACCEPT, person, task.version)
        assert (result.applied, result.notice) == (
            False,
            "Only an on-duty officer of the team can accept this task.",
        ), person
    assert await world.snapshot() == before

    grace, henry = await asyncio.gather(
        world.act(task.id, Action.ACCEPT, "grace", task.version),
        world.act(task.id, Action.ACCEPT, "henry", task.version),
    )
    assert [grace.applied, henry.applied].count(True) == 1
    won, lost = (grace, henry) if grace.applied else (henry, grace)
    winner = won.task.assignee
    assert winner in ("grace", "henry")
    names = {"grace": "Grace Arborist", "henry": "Henry Gardener"}
    assert lost.notice == f"{names[winner]} took this task first."
    assert (won.task.status, won.task.version) == (Status.ACCEPTED, 2)
    assert lost.task == won.task == await world.get(task.id)
    [claim] = [e for e in await world.events(task.id) if e.action == "accept"]
    assert (claim.actor, claim.from_status, claim.to_status, claim.data) == (
        winner,
        "unassigned",
        "accepted",
        {"to": winner},
    )
    # The loser clicking again without a version hears the same.
    loser = "henry" if winner == "grace" else "grace"
    again = await world.act(task.id, Action.ACCEPT, loser, None)
    assert (again.applied, again.notice) == (False, f"{names[winner]} took this task first.")
    # The winner works it like any assigned task.
    assert (await world.act(task.id, Action.START, winner, 2)).applied
    assert (await world.act(task.id, Action.UPDATE, loser, 3, note="Need help?")).notice == (
        "Only the assigned officer or a manager of the team can add an update to this task."
    )


async def test_off_duty_officer_cannot_take_a_queue_task(world):
    assert await set_duty(world.db, "henry", False, NOW) is True
    task = await world.new_task("fallen-tree")
    result = await world.act(task.id, Action.ACCEPT, "henry", task.version)
    assert (result.applied, result.notice) == (
        False,
        "Only an on-duty officer of the team can accept this task.",
    )
    assert await set_duty(world.db, "henry", True, NOW) is False
    assert (await world.act(task.id, Action.ACCEPT, "henry", task.version)).applied


async def test_queue_task_is_offered_to_every_on_duty_officer_and_the_channel(world):
    await set_duty(world.db, "henry", False, NOW)
    task = await world.new_task("fallen-tree")
    cards = await world.outbox(task.id, outbox.c.kind.like("teams.%"))
    assert cards == {
        f"card:{task.id}:grace:1": ("teams.card", {"task_id": task.id, "person": "grace"}),
        f"card:{task.id}:team:green:1": ("teams.card", {"task_id": task.id, "team": "green"}),
    }


async def test_handback_reroutes_within_the_team_excluding_the_returning_officer(world):
    task = await world.task_in(Status.ACCEPTED)
    # Carol has more open work, so least-loaded alone would pick Bob again.
    for _ in range(2):
        await world.task_in(Status.ASSIGNED, "carol")
    result = await world.act(task.id, Action.HANDBACK, "bob", task.version, reason="Needs the van")
    assert (result.applied, result.notice) == (True, "Handed back; now assigned to Carol Warden.")
    after = result.task
    assert (after.status, after.assignee, after.version) == (Status.ASSIGNED, "carol", 3)
    assert "handed back by bob" in after.routing_reasons
    assert after.routing_reasons[:2] == task.routing_reasons[:2]
    back, assign = (await world.events(task.id))[-2:]
    assert (back.actor, back.action, back.from_status, back.to_status, back.note, back.data) == (
        "bob",
        "handback",
        "accepted",
        "unassigned",
        "Needs the van",
        {"from": "bob"},
    )
    assert (assign.actor, assign.action, assign.from_status, assign.to_status) == (
        "system",
        "assign",
        "unassigned",
        "assigned",
    )
    assert assign.data["to"] == "carol" and assign.data["routing_reasons"]
    new = await world.outbox(task.id, outbox.c.idempotency_key.like(f"%:{task.id}:%:3"))
    assert new == {
        f"card:{task.id}:carol:3": ("teams.card", {"task_id": task.id, "person": "carol"})
    }
    assert f"refresh:{task.id}:3" in await world.outbox(task.id)
    # Bob's old card: he has already handed it back.
    again = await world.act(task.id, Action.HANDBACK, "bob", task.version, reason="Needs the van")
    assert (again.applied, again.notice) == (False, "You have already handed this task back.")
    # Carol must accept it now.
    assert (await world.act(task.id, Action.ACCEPT, "carol", 3)).applied


async def test_handback_in_a_round_robin_team_moves_the_cursor(world):
    first = await world.new_task(at=SOUTHMERE)
    assert (first.team, first.assignee) == ("sc-south", "dan")
    result = await world.act(first.id, Action.HANDBACK, "alice", first.version, reason="Dan is ill")
    assert result.applied and result.task.assignee == "erin"
    async with world.db.read() as conn:
        cursor = (
            await conn.execute(select(teams.c.last_assigned).where(teams.c.code == "sc-south"))
        ).scalar_one()
    assert cursor == "erin"
    after = await world.new_task(at=(SOUTHMERE[0] - 0.003, SOUTHMERE[1]))
    assert (after.team, after.assignee) == ("sc-south", "dan")


async def test_handback_waits_for_the_team_when_nobody_else_is_on_duty(world):
    task = await world.task_in(Status.ACCEPTED)
    await set_duty(world.db, "carol", False, NOW)
    result = await world.act(task.id, Action.HANDBACK, "bob", task.version, reason="Off sick")
    assert (result.applied, result.notice) == (
        True,
        "Handed back; it now waits for the team to take it.",
    )
    assert (result.task.status, result.task.assignee) == (Status.UNASSIGNED, None)
    events = await world.events(task.id)
    assert events[-1].action == "handback" and events[-1].to_status == "unassigned"
    assert events[-1].data["from"] == "bob"
    assert any("carol is off duty" in r for r in events[-1].data["routing_reasons"])
    v = result.task.version
    new = await world.outbox(task.id, outbox.c.idempotency_key.like(f"%:{task.id}:%{v}"))
    assert new == {
        f"refresh:{task.id}:{v}": ("teams.refresh", {"task_id": task.id, "version": v}),
        f"card:{task.id}:team:sc-north:{v}": (
            "teams.card",
            {"task_id": task.id, "team": "sc-north"},
        ),
    }
    # sc-north is not a queue: nobody can take it from the team; a manager assigns it.
    result = await world.act(task.id, Action.ACCEPT, "bob", v)
    assert (result.applied, result.notice) == (
        False,
        "This task has not been assigned to anyone yet.",
    )
    await set_duty(world.db, "carol", True, NOW)
    assigned = await world.ok(task.id, Action.REASSIGN, "alice", v, officer="carol")
    assert (assigned.status, assigned.assignee) == (Status.ASSIGNED, "carol")


async def test_handback_of_a_queue_task_offers_it_to_the_others(world):
    task = await world.new_task("fallen-tree")
    taken = await world.ok(task.id, Action.ACCEPT, "grace", task.version)
    result = await world.act(task.id, Action.HANDBACK, "grace", taken.version, reason="Too big")
    assert result.applied
    assert (result.task.status, result.task.assignee) == (Status.UNASSIGNED, None)
    v = result.task.version
    cards = await world.outbox(task.id, outbox.c.idempotency_key.like(f"card:%:{v}"))
    assert set(cards) == {f"card:{task.id}:henry:{v}", f"card:{task.id}:team:green:{v}"}
    assert (await world.act(task.id, Action.ACCEPT, "henry", v)).applied


async def test_reassign_by_a_manager_or_the_system(world):
    task = await world.task_in(Status.IN_PROGRESS)
    moved = await world.act(task.id, Action.REASSIGN, "alice", task.version, officer="carol")
    assert (moved.applied, moved.notice) == (True, "Reassigned to Carol Warden.")
    assert (moved.task.status, moved.task.assignee) == (Status.ASSIGNED, "carol")
    event = (await world.events(task.id))[-1]
    assert (event.actor, event.action, event.from_status, event.to_status, event.data) == (
        "alice",
        "reassign",
        "in_progress",
        "assigned",
        {"from": "bob", "to": "carol"},
    )
    v = moved.task.version
    assert (await world.outbox(task.id))[f"card:{task.id}:carol:{v}"] == (
        "teams.card",
        {"task_id": task.id, "person": "carol"},
    )
    # Bob can no longer work it; the system can move it back.
    refused = await world.act(task.id, Action.COMPLETE, "bob", v, outcome="resolved")
    assert refused.notice == "This task has not been accepted yet."
    back = await world.ok(task.id, Action.REASSIGN, None, v, officer="bob")
    assert back.assignee == "bob"
    assert (await world.events(task.id))[-1].actor == "system"
    # A queue task nobody took yet can be given to someone by its manager.
    tree = await world.new_task("fallen-tree")
    given = await world.ok(tree.id, Action.REASSIGN, "frank", tree.version, officer="henry")
    assert (given.status, given.assignee) == (Status.ASSIGNED, "henry")
    assert (await world.events(tree.id))[-1].data == {"from": None, "to": "henry"}


async def test_cancel_closes_the_task(world):
    task = await world.task_in(Status.ACCEPTED)
    result = await world.act(
        task.id, Action.CANCEL, "alice", task.version, note="Reported by phone as well"
    )
    assert result.applied
    assert (result.task.status, result.task.closed_at) == (Status.CANCELLED, LATER)
    event = (await world.events(task.id))[-1]
    assert (event.action, event.note) == ("cancel", "Reported by phone as well")
    refused = await world.act(task.id, Action.COMPLETE, "bob", None, outcome="resolved")
    assert refused.notice == "This task has been cancelled."
    again = await world.act(task.id, Action.CANCEL, "alice", task.version)
    assert again.notice == "This task has already been cancelled."


async def test_a_cancel_reason_from_the_card_is_the_events_note(world):
    task = await world.task_in(Status.ASSIGNED)
    too_long = await world.act(task.id, Action.CANCEL, "alice", task.version, reason="x" * 501)
    assert not too_long.applied and "500" in (too_long.notice or "")
    result = await world.ok(task.id, Action.CANCEL, "alice", task.version, reason=" Duplicate ")
    assert result.status is Status.CANCELLED
    assert (await world.events(task.id))[-1].note == "Duplicate"


async def test_a_manager_changes_the_priority_and_the_due_time_follows(world):
    council = world.domain.council
    task = await world.task_in(Status.ACCEPTED)
    assert task.priority == "normal"
    result = await world.act(task.id, Action.PRIORITY, "alice", task.version, priority="urgent")
    assert (result.applied, result.notice) == (True, "Now Urgent priority.")
    changed = result.task
    assert (changed.priority, changed.status, changed.assignee) == ("urgent", task.status, "bob")
    assert changed.due_at == due_at(task.created_at, council.priority_hours("urgent"), council.tz)
    assert changed.due_at < task.due_at
    assert changed.priority_reasons[-1] == "set to urgent by alice"
    event = (await world.events(task.id))[-1]
    assert (event.action, event.actor, event.data) == (
        "priority",
        "alice",
        {"from": "normal", "to": "urgent"},
    )
    before = await world.snapshot()
    for wrong, notice in (
        ("urgent", "It is already Urgent priority."),
        ("critical", "Choose a priority."),
        ("", "Choose a priority."),
        (None, "Choose a priority."),
    ):
        refused = await world.act(
            task.id, Action.PRIORITY, "alice", changed.version, priority=wrong
        )
        assert (refused.applied, refused.notice) == (False, notice), wrong
    assert await world.snapshot() == before


async def test_complete_tells_every_reporter_who_asked_for_updates(world):
    council = world.domain.council
    near = [(NORTHGATE[0] + i * 0.00003, NORTHGATE[1]) for i in range(5)]  # within 25 m
    contacts_given = [reporter("email"), reporter("email"), reporter(), None, reporter("email")]
    report_ids = []
    for i, (at, contact) in enumerate(zip(near, contacts_given, strict=True)):
        result = await create_task(
            world.db, world.domain, new_report("litter", at, contact, f"R{i}"), NOW
        )
        report_ids.append(result.task.id)
    task_id = report_ids[0]
    assert set(report_ids) == {task_id}  # all linked to the first
    async with world.db.write() as conn:
        rows = (
            (await conn.execute(select(contacts.c.report_id).order_by(contacts.c.report_id)))
            .scalars()
            .all()
        )
        assert len(rows) == 4  # the fourth reporter left no contact
        # The fifth reporter's contact has been erased since.
        await conn.execute(
            update(contacts).where(contacts.c.report_id == rows[-1]).values(erased_at=NOW)
        )
    original, duplicate = rows[0], rows[1]

    task = await world.get(task_id)
    assert task.report_count == 5
    task = await world.ok(task.id, Action.ACCEPT, task.assignee, task.version)
    before = await world.outbox(task.id, outbox.c.kind == "notify")
    done = await world.ok(task.id, Action.COMPLETE, task.assignee, task.version, outcome="referred")
    assert done.outcome == "referred"
    sent = {
        k: v
        for k, v in (await world.outbox(task.id, outbox.c.kind == "notify")).items()
        if k not in before
    }
    template = council.file.notify.events["completed"].email_template
    assert sent == {
        f"notify:{r}:completed:email": (
            "notify",
            {
                "report_id": r,
                "task_id": task.id,
                "event": "completed",
                "channel": "email",
                "template_id": template,
            },
        )
        for r in (original, duplicate)
    }
    for key, (_, payload) in sent.items():
        assert "example.com" not in str(payload) + key and "07700" not in str(payload) + key


async def test_set_duty_returns_the_previous_value_and_routing_skips_off_duty(world):
    assert await set_duty(world.db, "bob", False, NOW) is True
    assert await set_duty(world.db, "bob", False, NOW) is False
    with pytest.raises(LookupError):
        await set_duty(world.db, "mallory", False, NOW)
    async with world.db.read() as conn:
        duty = dict((await conn.execute(select(people.c.id, people.c.on_duty))).all())
    assert not duty["bob"] and duty["carol"]
    assert [(await world.new_task()).assignee for _ in range(2)] == ["carol", "carol"]
    assert await set_duty(world.db, "bob", True, LATER) is False
    assert (await world.new_task()).assignee == "bob"
    # Off duty keeps one's own work: bob can still act on his tasks.
    task = await world.task_in(Status.ASSIGNED)
    await set_duty(world.db, "bob", False, LATER)
    assert (await world.act(task.id, Action.ACCEPT, "bob", task.version)).applied


async def test_unknown_task_is_a_lookup_error(world):
    with pytest.raises(LookupError):
        await world.act(999, Action.ACCEPT, "bob", None)
