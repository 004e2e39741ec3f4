"""What the bot says back: one command from one known person in, replies out.

Not Teams-shaped: replies are text or card JSON, and the bot edge sends them. Everything
a person sees is read through their ``Scope`` (tasks/visibility.py), so the reply is built
from their permissions rather than filtered afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from responder.cards.cases import (
    CaseRow,
    CaseView,
    WardView,
    case_card,
    case_list_card,
    raise_form_card,
    ward_summary_card,
)
from responder.cards.common import due_relative, when
from responder.cards.lists import TaskListRow, task_list_card
from responder.cards.task_card import place_words
from responder.commands.act import set_duty
from responder.commands.follows import set_following
from responder.config.model import Person
from responder.dialogs.commands import Command
from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES, Status
from responder.domain.records import TaskRecord
from responder.domain.reference import parse_reference
from responder.domain.visibility import Scope, scope_of
from responder.domain.vocabulary import (
    STATUS_WORDS,
    WARD_STATUS_WORDS,
    outcome_words,
    priority_words,
    status_line,
)
from responder.queries import cases
from responder.queries.tasks import nearest_address, open_tasks_for
from responder.store.db import Database


@dataclass(frozen=True)
class Reply:
    """Text, a card, or (staff only) "show this task's own card for the viewer"."""

    text: str | None = None
    card: dict | None = None
    task_card_for: int | None = None


COUNCILLOR_HELP = (
    "You can ask me:\n\n"
    "- **status of my cases**: cases you raised or follow\n"
    "- **what's open in** *ward* (or *ward* **summary**): a ward at a glance\n"
    "- **case** *RSP-1042*: one case and its history\n"
    "- **raise a task**: report something for the team to sort out\n"
    "- **follow** / **unfollow** *RSP-1042*: hear when a case moves, or stop\n"
    "- **help**: this list"
)
STAFF_HELP = (
    "I send you street-care tasks as cards you can work from here. You can say:\n\n"
    "- **my tasks**: your open tasks\n"
    "- **off duty** / **on duty**: stop or start getting new tasks\n"
    "- **case** *RSP-1042*: one task's card\n"
    "- **what's open in** *ward*: your teams' open work there\n"
    "- **raise a task**, **follow** / **unfollow** *RSP-1042*\n"
    "- send a **photo** to add it to the task you're working on\n"
    "- **link team** *code*: (managers, in a team channel) post that team's tasks here\n"
    "- **help**: this list"
)
STRANGER = (
    "Sorry, I don't know you yet: Responder is for the council's street-care staff and "
    "councillors. Ask your manager to add you."
)


def help_for(person: Person) -> str:
    return COUNCILLOR_HELP if person.role == "councillor" else STAFF_HELP


class Chat:
    def __init__(self, db: Database, domain: Domain, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.domain = domain
        self.clock = clock
        council = domain.council
        self._scopes = {p.id: scope_of(council, p) for p in council.file.people}
        self.ward_names = tuple(w.name for w in council.wards)

    def scope(self, person: Person | None) -> Scope:
        if person is None:
            return scope_of(self.domain.council, None)
        return self._scopes.get(person.id) or scope_of(self.domain.council, person)

    async def answer(self, person: Person, command: Command) -> list[Reply]:
        name = command.name
        if name == "my_cases":
            return [await self.my_cases(person)]
        if name == "ward_summary":
            return [await self.ward_summary(person, command.argument)]
        if name == "case":
            return [await self.case(person, command.argument)]
        if name in ("follow", "unfollow"):
            return [await self.follow(person, command.argument, name == "follow")]
        if name == "raise":
            return [Reply(card=self.raise_form())]
        if name == "my_tasks":
            return [await self.my_tasks(person)]
        if name in ("on_duty", "off_duty"):
            return [await self.duty(person, name == "on_duty")]
        if name == "cancel":
            return [Reply("There's nothing to cancel.")]
        if name == "unknown":
            return [Reply(f"Sorry, I didn't understand that.\n\n{help_for(person)}")]
        return [Reply(help_for(person))]

    # -- councillors' questions -----------------------------------------------------------

    async def my_cases(self, person: Person) -> Reply:
        now = self.clock()
        found = await self.db.query(lambda c: cases.my_cases(c, self.domain, person.id))
        rows = [
            self._row(line.task, now, line.last_event, line.last_event_at) for line in found.cases
        ]
        card = case_list_card(
            "Your cases",
            rows,
            found.total,
            "You don't follow any cases yet. Say 'raise a task', or 'follow' and a reference.",
            hint="Tap a case for its history.",
        )
        return Reply(card=card)

    async def ward_summary(self, person: Person, ward_text: str) -> Reply:
        council = self.domain.council
        if not ward_text.strip():
            return Reply(f"Which ward? For example: what's open in {self.ward_names[0]}.")
        ward = next((w for w in self.ward_names if w.lower() == ward_text.lower()), None)
        scope = self.scope(person)
        if ward is None:
            known = ", ".join(self.ward_names)
            return Reply(f"I don't know a ward called '{ward_text}'. The wards are {known}.")
        if not scope.ward_allowed(council, ward):
            mine = sorted(scope.wards)
            if mine:
                return Reply(f"Sorry, I can only show you wards you represent: {', '.join(mine)}.")
            return Reply(f"Sorry, {ward} is not covered by your teams.")
        now = self.clock()
        summary = await self.db.query(
            lambda c: cases.ward_summary(c, self.domain, scope, ward, now)
        )
        return Reply(card=ward_summary_card(ward_view(self.domain, scope, summary, now)))

    async def case(self, person: Person, reference: str, notice: str | None = None) -> Reply:
        if not reference.strip():
            return Reply("Which case? Say case and its reference, like case RSP-1042.")
        task_id = parse_reference(reference, self.domain.prefix)
        if task_id is None:
            return Reply(f"'{reference}' doesn't look like a case reference (like RSP-1042).")
        scope = self.scope(person)
        if person.role != "councillor":
            found = await self.db.query(lambda c: cases.find_case(c, self.domain, scope, task_id))
            if found is None:
                return self._not_found(reference)
            return Reply(task_card_for=task_id)
        card = await self.case_card(person, task_id, notice)
        return Reply(card=card) if card is not None else self._not_found(reference)

    async def case_card(
        self, person: Person, task_id: int, notice: str | None = None
    ) -> dict | None:
        """The public case card for this person, or None if they may not see the case."""
        scope = self.scope(person)
        now = self.clock()

        def read(conn):
            task = cases.find_case(conn, self.domain, scope, task_id)
            if task is None:
                return None
            following = cases.is_following(conn, person.id, task_id)
            outcomes = self.domain.council.outcomes_for(task.type)
            history = cases.public_history(conn, task_id, outcomes=outcomes)
            near = (
                None if (task.address or "").strip() else nearest_address(conn, task.lat, task.lon)
            )
            return task, following, history, near

        found = await self.db.query(read)
        if found is None:
            return None
        task, following, history, near = found
        return case_card(self._case_view(task, following, history, now, notice, near))

    def _not_found(self, reference: str) -> Reply:
        return Reply(f"I can't find a case {reference.upper()} that you can see.")

    async def follow(self, person: Person, reference: str, on: bool) -> Reply:
        if not reference.strip():
            verb = "follow" if on else "unfollow"
            return Reply(f"Which case? Say {verb} and its reference, like {verb} RSP-1042.")
        task_id = parse_reference(reference, self.domain.prefix)
        if task_id is None:
            return Reply(f"'{reference}' doesn't look like a case reference (like RSP-1042).")
        outcome = await self.set_following(person, task_id, on)
        if outcome is None:
            return self._not_found(reference)
        ref = self.domain_reference(task_id)
        if on:
            return Reply(
                f"You're following {ref}: I'll tell you when its status changes."
                if outcome
                else f"You were already following {ref}."
            )
        return Reply(
            f"You've stopped following {ref}." if outcome else f"You weren't following {ref}."
        )

    async def set_following(self, person: Person, task_id: int, on: bool) -> bool | None:
        """Follow or unfollow a case the person may see; None if they may not see it."""
        scope = self.scope(person)
        return await set_following(self.db, self.domain, scope, task_id, on, self.clock())

    def domain_reference(self, task_id: int) -> str:
        from responder.domain.reference import format_reference

        return format_reference(self.domain.prefix, task_id)

    def raise_form(self, error: str | None = None, values: dict[str, str] | None = None) -> dict:
        types = [(t.code, t.name) for t in self.domain.council.file.task_types]
        return raise_form_card(types, error, values)

    # -- officers ------------------------------------------------------------------------

    async def my_tasks(self, person: Person) -> Reply:
        council = self.domain.council
        now = self.clock()
        found = await open_tasks_for(self.db, self.domain, person.id)
        places = await self._places(found)
        rows = [
            TaskListRow(
                reference=t.reference,
                type_name=self._type_name(t.type),
                priority=t.priority,
                status_text=status_line(t.status.value, "you"),
                due_text=f"Due {when(t.due_at.astimezone(council.tz), now)}",
                due_soon=due_relative(t.due_at, now),
                overdue=t.due_at < now,
                address=places[t.id],
                task_id=t.id,
            )
            for t in found
        ]
        return Reply(card=task_list_card("Your open tasks", rows, "You have no open tasks."))

    async def duty(self, person: Person, on_duty: bool) -> Reply:
        if person.role != "officer":
            return Reply("Only officers go on and off duty.")
        before = await set_duty(self.db, person.id, on_duty, self.clock())
        if on_duty:
            return Reply(
                "You were already on duty."
                if before
                else "You're on duty: new tasks can come to you."
            )
        if not before:
            return Reply("You were already off duty.")
        return Reply(
            "You're off duty: new tasks go to others in your team. Your open tasks stay with you."
        )

    async def _places(self, found: list[TaskRecord]) -> dict[int, str]:
        """Where each task is, in words: its address, else the nearest one known from
        other reports (looked up only for tasks without one), else coordinates."""
        bare = [t for t in found if not (t.address or "").strip()]
        near: dict[int, tuple[str, float] | None] = {}
        if bare:

            def read(conn) -> dict[int, tuple[str, float] | None]:
                return {t.id: nearest_address(conn, t.lat, t.lon) for t in bare}

            near = await self.db.query(read)
        return {t.id: place_words(t.address, t.lat, t.lon, near.get(t.id)) for t in found}

    # -- words ---------------------------------------------------------------------------

    def _type_name(self, code: str) -> str:
        return type_name(self.domain, code)

    def _row(
        self,
        task: TaskRecord,
        now: datetime,
        last: str | None = None,
        last_at: datetime | None = None,
    ) -> CaseRow:
        return case_row(self.domain, task, now, last, last_at)

    def _case_view(
        self,
        task: TaskRecord,
        following: bool,
        history: list[cases.PublicEvent],
        now: datetime,
        notice: str | None,
        near: tuple[str, float] | None = None,
    ) -> CaseView:
        council = self.domain.council
        tz = council.tz
        team = council.team(task.team)
        is_open = task.status in OPEN_STATUSES
        status = STATUS_WORDS[task.status]
        place = place_words(task.address, task.lat, task.lon, near)
        if task.status is Status.COMPLETED and task.outcome:
            outcomes = council.outcomes_for(task.type)
            status += f" ({outcome_words(outcomes, task.outcome, 'councillor')})"
        facts = [
            ("Where", place),
            ("Ward", task.ward),
            ("Team", team.name if team else task.team),
            ("Priority", priority_words(task.priority)),
            ("Reported", when(task.created_at.astimezone(tz), now)),
        ]
        if is_open:
            facts.append(("Due", when(task.due_at.astimezone(tz), now)))
        elif task.closed_at:
            facts.append(("Closed", when(task.closed_at.astimezone(tz), now)))
        if task.report_count > 1:
            facts.append(("Reports", str(task.report_count)))
        return CaseView(
            task_id=task.id,
            reference=task.reference,
            type_name=self._type_name(task.type),
            status_text=status,
            overdue=is_open and task.due_at < now,
            facts=tuple(facts),
            description=task.description,
            lat=task.lat,
            lon=task.lon,
            photos=task.photos,
            place=place,
            history=tuple((when(e.at.astimezone(tz), now), e.words) for e in history),
            following=following,
            notice=notice,
        )


# -- shared with the web's ward page (responder/web/wards.py) --------------------------------


def type_name(domain: Domain, code: str) -> str:
    task_type = domain.council.task_type(code)
    return task_type.name if task_type else code


def case_row(
    domain: Domain,
    task: TaskRecord,
    now: datetime,
    last: str | None = None,
    last_at: datetime | None = None,
) -> CaseRow:
    """One case in a list, in the councillor's words."""
    tz = domain.council.tz
    is_open = task.status in OPEN_STATUSES
    if is_open:
        due = f"Due {when(task.due_at.astimezone(tz), now)} · {due_relative(task.due_at, now)}"
    else:
        due = f"Closed {when((task.closed_at or task.updated_at).astimezone(tz), now)}"
    return CaseRow(
        task_id=task.id,
        reference=task.reference,
        type_name=type_name(domain, task.type),
        status_text=STATUS_WORDS[task.status],
        due_text=due,
        overdue=is_open and task.due_at < now,
        address=task.address or f"{task.lat:.5f}, {task.lon:.5f}",
        last_text=f"{last} · {when(last_at.astimezone(tz), now)}" if last and last_at else None,
    )


def ward_view(domain: Domain, scope: Scope, summary: cases.WardSummary, now: datetime) -> WardView:
    """A ward's summary in words: the chat's card and the web's ward page show this."""
    return WardView(
        ward=summary.ward,
        open_total=summary.open_total,
        by_status=tuple((WARD_STATUS_WORDS[s], n) for s, n in summary.by_status),
        by_type=tuple((type_name(domain, t), n) for t, n in summary.by_type),
        overdue_total=summary.overdue_total,
        overdue=tuple(case_row(domain, t, now) for t in summary.overdue),
        newest=tuple(case_row(domain, t, now) for t in summary.newest),
        restricted_to=None if summary.ward in scope.wards else "your teams' work",
    )
