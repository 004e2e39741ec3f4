"""The Teams activity handler: learns how to reach people, answers them, applies card clicks.

Botbuilder types stay in this package: the rest of Responder sees people, tasks, commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.schema import (
    Activity,
    AdaptiveCardInvokeResponse,
    Attachment,
    InvokeResponse,
)
from sqlalchemy import Connection

from responder.bot.views import Viewer, render
from responder.cards.lists import TaskListRow, task_list_card
from responder.config.model import Person
from responder.dialogs.commands import parse
from responder.store.db import Database
from responder.store.teams_state import link_channel, save_conversation, set_teams_user_id
from responder.tasks.actions import ActionRequest, act, set_duty
from responder.tasks.commands import Domain
from responder.tasks.lifecycle import Action
from responder.tasks.queries import open_tasks_for

log = logging.getLogger("responder.bot")

CARD = "application/vnd.microsoft.card.adaptive"
_VERBS = {
    "accept": Action.ACCEPT,
    "start": Action.START,
    "update": Action.UPDATE,
    "complete": Action.COMPLETE,
    "handback": Action.HANDBACK,
    "reassign": Action.REASSIGN,
}
HELP = (
    "I send you street-care tasks as cards you can work from here. You can say:\n\n"
    "- **my tasks**: your open tasks\n"
    "- **off duty** / **on duty**: stop or start getting new tasks\n"
    "- **link team** *code*: (managers, in a team channel) post that team's tasks here\n"
    "- **help**: this list"
)
STRANGER = (
    "Sorry, I don't know you yet: Responder is for the council's street-care staff and "
    "councillors. Ask your manager to add you."
)


def _card_response(card: dict, status: int = 200) -> InvokeResponse:
    # Under CloudAdapter the body must be the model object: a pre-serialised dict is
    # serialised twice and Teams gets a 500.
    return InvokeResponse(
        status=200,
        body=AdaptiveCardInvokeResponse(status_code=status, type=CARD, value=card),
    )


def _error_response(status: int, code: str, message: str) -> InvokeResponse:
    return InvokeResponse(
        status=200,
        body=AdaptiveCardInvokeResponse(
            status_code=status,
            type="application/vnd.microsoft.error",
            value={"code": code, "message": message},
        ),
    )


class ResponderBot(ActivityHandler):
    def __init__(self, db: Database, domain: Domain, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.domain = domain
        self.clock = clock
        self._known: set[tuple] = set()  # conversations already stored by this process

    # -- who is this, and how do we reach them again ------------------------------------

    def person_of(self, activity: Activity) -> Person | None:
        aad = getattr(activity.from_property, "aad_object_id", None)
        return self.domain.council.person_by_aad(aad) if aad else None

    async def on_turn(self, turn_context: TurnContext) -> None:
        await self._remember(turn_context.activity)
        await super().on_turn(turn_context)

    async def _remember(self, activity: Activity) -> None:
        conversation = activity.conversation
        if conversation is None or not activity.service_url:
            return
        reference = TurnContext.get_conversation_reference(activity).serialize()
        person = self.person_of(activity)
        kind = conversation.conversation_type or "personal"
        key = None
        if kind == "personal" and person is not None:
            key = f"person:{person.id}"
        elif kind == "channel":
            key = f"channel:{conversation.id.split(';')[0]}"
        user_id = activity.from_property.id if person is not None else None
        # Write only what changed: most turns come from a conversation we already know.
        fingerprint = (key, conversation.id, activity.service_url, person and person.id, user_id)
        if fingerprint in self._known:
            return
        now = self.clock()

        def store(conn: Connection) -> None:
            if key is not None:
                save_conversation(conn, key, reference, now)
            if person is not None and user_id:
                set_teams_user_id(conn, person.id, user_id)

        await self.db.run(store)
        self._known.add(fingerprint)

    # -- chat ------------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        TurnContext.remove_recipient_mention(turn_context.activity)
        person = self.person_of(turn_context.activity)
        if person is None:
            await turn_context.send_activity(STRANGER)
            return
        command = parse(turn_context.activity.text)
        if command.name == "my_tasks":
            await self._my_tasks(turn_context, person)
        elif command.name in ("on_duty", "off_duty"):
            await self._duty(turn_context, person, command.name == "on_duty")
        elif command.name == "link_team":
            await self._link_team(turn_context, person, command.argument)
        elif command.name == "unknown":
            await turn_context.send_activity(f"Sorry, I didn't understand that.\n\n{HELP}")
        else:
            await turn_context.send_activity(HELP)

    async def _send_card(self, turn_context: TurnContext, card: dict) -> None:
        await turn_context.send_activity(
            MessageFactory.attachment(Attachment(content_type=CARD, content=card))
        )

    async def _my_tasks(self, turn_context: TurnContext, person: Person) -> None:
        council = self.domain.council
        now = self.clock()
        tasks = await open_tasks_for(self.db, self.domain, person.id)
        rows = [
            TaskListRow(
                reference=t.reference,
                type_name=(council.task_type(t.type).name if council.task_type(t.type) else t.type),
                priority=t.priority,
                status_text=t.status.value.replace("_", " "),
                due_text=t.due_at.astimezone(council.tz).strftime("due %a %d %b %H:%M"),
                overdue=t.due_at < now,
                address=t.address or f"{t.lat:.5f}, {t.lon:.5f}",
                task_id=t.id,
            )
            for t in tasks
        ]
        card = task_list_card("Your open tasks", rows, "You have no open tasks.")
        await self._send_card(turn_context, card)

    async def _duty(self, turn_context: TurnContext, person: Person, on_duty: bool) -> None:
        if person.role != "officer":
            await turn_context.send_activity("Only officers go on and off duty.")
            return
        before = await set_duty(self.db, person.id, on_duty, self.clock())
        if on_duty:
            text = (
                "You're on duty: new tasks can come to you."
                if not before
                else ("You were already on duty.")
            )
        else:
            text = (
                "You're off duty: new tasks go to others in your team. Your open tasks "
                "stay with you."
                if before
                else "You were already off duty."
            )
        await turn_context.send_activity(text)

    async def _link_team(self, turn_context: TurnContext, person: Person, code: str) -> None:
        conversation = turn_context.activity.conversation
        if conversation.conversation_type != "channel":
            await turn_context.send_activity("Say **link team** *code* in the team's channel.")
            return
        team = self.domain.council.team(code)
        if team is None:
            codes = ", ".join(t.code for t in self.domain.council.file.teams)
            await turn_context.send_activity(f"There is no team '{code}'. Teams: {codes}.")
            return
        if person.id not in team.managers:
            await turn_context.send_activity(f"Only a manager of {team.name} can link it.")
            return
        channel = f"channel:{conversation.id.split(';')[0]}"
        await self.db.run(lambda conn: link_channel(conn, team.code, channel))
        await turn_context.send_activity(f"This channel now gets {team.name}'s task cards.")

    async def on_members_added_activity(self, members_added, turn_context: TurnContext) -> None:
        """Installed in personal scope: say hello (the reference was stored in on_turn)."""
        activity = turn_context.activity
        if activity.conversation.conversation_type not in (None, "personal"):
            return
        person = self.person_of(activity)
        await turn_context.send_activity(
            f"Hello {person.name.split()[0]}. {HELP}" if person else STRANGER
        )

    # -- card clicks ------------------------------------------------------------------------

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        value: Any = activity.value if isinstance(activity.value, dict) else {}
        action = value.get("action") if isinstance(value.get("action"), dict) else {}
        verb = action.get("verb")
        data = action.get("data") if isinstance(action.get("data"), dict) else {}
        task_id = data.get("taskId")
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            return _error_response(400, "BadRequest", "This card has no task id.")
        version = data.get("version")
        version = version if isinstance(version, int) and not isinstance(version, bool) else None
        person = self.person_of(activity)
        now = self.clock()

        if verb in ("refresh", "open"):
            return await self._current_card(person, task_id, now, None)
        if verb not in _VERBS:
            return _error_response(400, "BadRequest", f"Unknown action '{verb}'.")
        if person is None:
            return await self._current_card(None, task_id, now, STRANGER)

        def text(name: str) -> str | None:
            v = data.get(name)
            return v if isinstance(v, str) else None

        request = ActionRequest(
            task_id=task_id,
            action=_VERBS[verb],
            person_id=person.id,
            expected_version=version,
            note=text("note"),
            outcome=text("outcome"),
            reason=text("reason"),
            officer=text("officer"),
        )
        try:
            result = await act(self.db, self.domain, request, now)
        except LookupError:
            return _error_response(404, "NotFound", "That task no longer exists.")
        rendered = await self.db.query(
            lambda conn: render(
                conn, self.domain, result.task, Viewer(person.id), now, result.notice
            )
        )
        assert rendered is not None
        return _card_response(rendered[1])

    async def _current_card(
        self, person: Person | None, task_id: int, now: datetime, notice: str | None
    ) -> InvokeResponse:
        viewer = Viewer(person_id=person.id if person else "?")
        rendered = await self.db.query(
            lambda conn: render(conn, self.domain, task_id, viewer, now, notice)
        )
        if rendered is None:
            return _error_response(404, "NotFound", "That task no longer exists.")
        return _card_response(rendered[1])
