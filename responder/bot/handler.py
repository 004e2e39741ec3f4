"""The Teams activity handler: learns how to reach people, answers them, applies card clicks.

Botbuilder types stay in this package: the rest of Responder sees people, tasks, commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import aiohttp
from botbuilder.core import ActivityHandler, ConversationState, MessageFactory, TurnContext
from botbuilder.dialogs import DialogSet, DialogTurnStatus
from botbuilder.schema import (
    Activity,
    AdaptiveCardInvokeResponse,
    Attachment,
    InvokeResponse,
)
from sqlalchemy import Connection

from responder.bot.card_inputs import (
    ATTACH,
    CASE_VERBS,
    RAISE,
    VIEW_VERBS,
    BadClick,
    Click,
    read_click,
)
from responder.bot.connector import Connector, card_activity
from responder.bot.photos import PhotoInbox
from responder.bot.raise_dialog import ABANDONED_AFTER, RaiseDialog, state_key, touched_at
from responder.bot.state_storage import DatabaseStorage
from responder.bot.views import Viewer, render
from responder.cards.lists import notice_card
from responder.commands.act import ActionRequest, act
from responder.config.model import Person
from responder.dialogs.chat import STRANGER, Chat, Reply, help_for
from responder.dialogs.intents import Parser
from responder.dialogs.raising import RaiseError, raise_task
from responder.domain.context import Domain
from responder.domain.geocode import Geocoder
from responder.domain.lifecycle import Action
from responder.domain.records import TaskRecord
from responder.domain.visibility import NOT_VISIBLE
from responder.incidents import log_incident
from responder.queries.cases import find_case
from responder.store.db import Database
from responder.store.teams_state import link_channel, save_conversation, set_teams_user_id

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
    """Chat and card clicks for officers, managers and councillors.

    Most messages are one question and one answer ("status of my cases"); those take a
    short path (``quick_turn``) that answers through our own Bot Connector client. Anything
    with more to it (a dialog under way, raising a task, photos, channels) goes through
    CloudAdapter and botbuilder-dialogs.
    """

    def __init__(
        self,
        db: Database,
        domain: Domain,
        clock: Callable[[], datetime],
        geocoder: Geocoder,
    ) -> None:
        self.db = db
        self.domain = domain
        self.clock = clock
        self.geocoder = geocoder
        self.chat = Chat(db, domain, clock)
        self.parser = Parser([w.name for w in domain.council.wards], domain.prefix)
        self.connector: Connector | None = None  # set at start-up (needs the app's session)
        self.photos: PhotoInbox | None = None  # likewise: officers' photos (bot/photos.py)
        self.storage = DatabaseStorage(db, clock)
        self.conversation_state = ConversationState(self.storage)
        self.dialogs = DialogSet(self.conversation_state.create_property("dialog"))
        self.dialogs.add(RaiseDialog(domain.council, geocoder, self._raised_by_text))
        self._known: set[tuple] = set()  # conversations already stored by this process

    # -- who is this, and how do we reach them again ------------------------------------

    def person_of(self, activity: Activity) -> Person | None:
        aad = getattr(activity.from_property, "aad_object_id", None)
        return self.domain.council.person_by_aad(aad) if aad else None

    async def on_turn(self, turn_context: TurnContext) -> None:
        await self._remember(turn_context.activity)
        await super().on_turn(turn_context)
        await self.conversation_state.save_changes(turn_context)

    async def _remember(self, activity: Activity) -> None:
        conversation = activity.conversation
        if conversation is None or not activity.service_url:
            return
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
        reference = TurnContext.get_conversation_reference(activity).serialize()
        now = self.clock()

        def store(conn: Connection) -> None:
            if key is not None:
                save_conversation(conn, key, reference, now)
            if person is not None and user_id:
                set_teams_user_id(conn, person.id, user_id)

        await self.db.run(store)
        self._known.add(fingerprint)

    # -- the short path ----------------------------------------------------------------

    async def quick_turn(self, activity: Activity) -> bool:
        """Answer a one-shot personal message directly; False leaves it to CloudAdapter.

        Skipping the adapter saves most of a turn's CPU: it builds a new Bot Connector
        client for every turn, and each reply would go out through blocking ``requests``.
        """
        conversation = activity.conversation
        if (
            self.connector is None
            or activity.type != "message"
            or (conversation.conversation_type or "personal") != "personal"
            or _has_files(activity)
        ):
            return False
        person = self.person_of(activity)
        command = self.parser.parse(activity.text) if person is not None else None
        if command is not None and command.name == RAISE:
            return False
        if person is not None and await self._dialog_under_way(activity):
            return False
        await self._remember(activity)
        if person is None:
            replies = [Reply(STRANGER)]
        else:
            assert command is not None
            replies = await self.chat.answer(person, command)
        for reply in replies:
            body = await self._activity_for(reply, person)
            try:
                sent = await self.connector.send(activity.service_url, conversation.id, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("reply not delivered: %s", type(exc).__name__)
                break
            if not sent.ok:  # the person can ask again; Teams must not re-send the turn
                log.warning("reply not delivered: Teams answered %d", sent.status)
                break
        return True

    async def _dialog_under_way(self, activity: Activity) -> bool:
        """Whether a dialog awaits this conversation's answer (a stale one is dropped)."""
        key = state_key(activity.channel_id, activity.conversation.id)
        touched = await touched_at(self.db, key)
        if touched is None:
            return False
        if self.clock() - touched < ABANDONED_AFTER:
            return True
        await self.storage.delete([key])
        return False

    async def _activity_for(self, reply: Reply, person: Person | None) -> dict:
        if reply.card is not None:
            return card_activity(reply.card)
        if reply.task_card_for is not None and person is not None:
            card = await self.visible_card(person, reply.task_card_for, None)
            if card is not None:
                return card_activity(card)
            return {"type": "message", "text": NOT_VISIBLE}
        return {"type": "message", "text": reply.text or "", "textFormat": "markdown"}

    async def _send(self, turn_context: TurnContext, replies: list[Reply], person) -> None:
        for reply in replies:
            body = await self._activity_for(reply, person)
            if "attachments" in body:
                attachment = body["attachments"][0]
                await turn_context.send_activity(
                    MessageFactory.attachment(
                        Attachment(content_type=CARD, content=attachment["content"])
                    )
                )
            else:
                await turn_context.send_activity(body["text"])

    # -- chat through the adapter ---------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        TurnContext.remove_recipient_mention(turn_context.activity)
        activity = turn_context.activity
        if self.photos is not None and await self.photos.handle(activity, self.person_of(activity)):
            return
        person = self.person_of(activity)
        if person is None:
            await turn_context.send_activity(STRANGER)
            return
        command = self.parser.parse(activity.text)
        dialog = await self.dialogs.create_context(turn_context)
        if dialog.active_dialog is not None:
            touched = await touched_at(
                self.db, state_key(activity.channel_id, activity.conversation.id)
            )
            if touched is not None and self.clock() - touched >= ABANDONED_AFTER:
                await dialog.cancel_all_dialogs()
            elif command.name == "cancel":
                await dialog.cancel_all_dialogs()
                await turn_context.send_activity("OK, I've stopped. Nothing was raised.")
                return
            elif command.name == "help":
                await turn_context.send_activity(
                    "I'm asking about a task to raise: answer the question, or say **cancel**."
                )
                return
            else:
                await dialog.continue_dialog()
                return
        if command.name == "link_team":
            await self._link_team(turn_context, person, command.argument)
        elif command.name == RAISE:
            await self._send(turn_context, [Reply(card=self.chat.raise_form())], person)
            result = await dialog.begin_dialog(RAISE)
            assert result.status is DialogTurnStatus.Waiting
        else:
            await self._send(turn_context, await self.chat.answer(person, command), person)

    async def _raised_by_text(
        self, turn_context: TurnContext, answers: dict[str, str], key: str
    ) -> None:
        person = self.person_of(turn_context.activity)
        assert person is not None
        try:
            result = await raise_task(
                self.db, self.domain, self.geocoder, person, answers, key, self.clock()
            )
        except RaiseError as exc:
            await turn_context.send_activity(f"{exc.message} Nothing was raised.")
            return
        await turn_context.send_activity(self._raised_words(result))
        card = await self.chat.case_card(person, result.task.id)
        if card is not None:
            await self._send(turn_context, [Reply(card=card)], person)

    def _raised_words(self, result) -> str:
        task = result.task
        if result.duplicate_of is not None:
            return (
                f"That's already reported as {task.reference}: I've added yours to it, and "
                "you're following it."
            )
        return f"Raised {task.reference}. You're following it: I'll tell you when it moves."

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
            f"Hello {person.name.split()[0]}. {help_for(person)}" if person else STRANGER
        )

    # -- card clicks ------------------------------------------------------------------------

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        try:
            return await self._card_click(turn_context)
        except Exception as exc:  # noqa: BLE001 - a card must get an answer, not a 501
            # Type and place only: the exception may quote what was typed (SQL parameters).
            incident = log_incident(log, "card action failed", exc)
            return _error_response(
                500,
                "InternalError",
                f"Sorry, something went wrong on my side (incident {incident}). Try again?",
            )

    async def _card_click(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        person = self.person_of(activity)
        if person is None:  # the same answer whatever the click names
            return _card_response(notice_card(STRANGER))
        try:
            click = read_click(activity.value)
        except BadClick as exc:
            return _error_response(400, "BadRequest", exc.message)
        if click.verb == RAISE:
            return await self._raise_from_card(turn_context, person, click)
        assert click.task_id is not None  # read_click guarantees one for every other verb
        # Whether the person may see the task is settled before anything else is said.
        task = await self._visible_task(person, click.task_id)
        if task is None:
            return _not_visible()
        if click.verb == ATTACH and self.photos is not None:
            if click.problem is not None:
                return _card_response(notice_card(click.problem))
            data = {"taskId": click.task_id, "photos": click.fields["photos"]}
            return _card_response(await self.photos.attach_click(person, data))
        if click.problem is not None:
            return await self._card_for(person, task, click.problem)
        if click.verb in VIEW_VERBS or click.verb == "case":
            return await self._card_for(person, task, None)
        if click.verb in CASE_VERBS:
            return await self._follow_click(person, click.verb == "follow", click.task_id)
        if not self.chat.scope(person).sees_internals(task.team, task.assignee):
            # A ward's councillor or a follower outside the team: the public case card.
            return await self._card_for(person, task, OUTSIDE_THE_TEAM)
        return await self._task_click(person, click)

    async def _visible_task(self, person: Person, task_id: int) -> TaskRecord | None:
        scope = self.chat.scope(person)
        return await self.db.query(lambda conn: find_case(conn, self.domain, scope, task_id))

    async def _task_click(self, person: Person, click: Click) -> InvokeResponse:
        """Accept, start, update, complete, hand back or reassign, if this person may."""
        assert click.task_id is not None
        fields = click.fields
        request = ActionRequest(
            task_id=click.task_id,
            action=_VERBS[click.verb],
            person_id=person.id,
            expected_version=fields.get("version"),
            note=fields.get("note"),
            outcome=fields.get("outcome"),
            reason=fields.get("reason"),
            officer=fields.get("officer"),
        )
        now = self.clock()
        try:
            result = await act(self.db, self.domain, request, now)
        except LookupError:
            return _not_visible()
        rendered = await self.db.query(
            lambda conn: render(
                conn, self.domain, result.task, Viewer(person.id), now, result.notice
            )
        )
        assert rendered is not None
        return _card_response(rendered[1])

    async def _follow_click(self, person: Person, on: bool, task_id: int) -> InvokeResponse:
        if await self.chat.set_following(person, task_id, on) is None:
            return _not_visible()
        notice = (
            "You're following this case: I'll tell you when its status changes."
            if on
            else "You've stopped following this case."
        )
        card = await self.chat.case_card(person, task_id, notice)
        if card is None:  # they saw it only as its follower: now it is out of sight
            reference = self.chat.domain_reference(task_id)
            return _card_response(notice_card(f"You've stopped following {reference}."))
        return _card_response(card)

    async def _card_for(
        self, person: Person, task: TaskRecord, notice: str | None
    ) -> InvokeResponse:
        """The card for a task just read through the person's scope (not read again)."""
        if not self.chat.scope(person).sees_internals(task.team, task.assignee):
            card = await self.chat.case_card(person, task.id, notice)
            return _card_response(card) if card is not None else _not_visible()
        now = self.clock()
        rendered = await self.db.query(
            lambda conn: render(conn, self.domain, task, Viewer(person.id), now, notice)
        )
        assert rendered is not None  # render only returns None for an id it cannot load
        return _card_response(rendered[1])

    async def visible_card(self, person: Person, task_id: int, notice: str | None) -> dict | None:
        """The card this person gets for a task, or None if they may not see it.

        The team (and the assignee) get the task card with its actions; everyone else who
        may see the task (its ward's councillor, a follower) gets the public case card.
        """
        scope = self.chat.scope(person)
        now = self.clock()

        def read(conn: Connection) -> dict | bool | None:
            task = find_case(conn, self.domain, scope, task_id)
            if task is None:
                return None
            if not scope.sees_internals(task.team, task.assignee):
                return False
            rendered = render(conn, self.domain, task, Viewer(person.id), now, notice)
            return rendered[1] if rendered is not None else None

        card = await self.db.query(read)
        if card is False:
            return await self.chat.case_card(person, task_id, notice)
        return card if isinstance(card, dict) else None

    async def _raise_from_card(
        self, turn_context: TurnContext, person: Person, click: Click
    ) -> InvokeResponse:
        answers = {k: click.fields.get(k) for k in _FORM}
        if click.problem is not None:
            return _card_response(self.chat.raise_form(click.problem, _shown_again(answers)))
        key = turn_context.activity.id or ""
        try:
            result = await raise_task(
                self.db, self.domain, self.geocoder, person, answers, key, self.clock()
            )
        except RaiseError as exc:
            return _card_response(self.chat.raise_form(exc.message, _shown_again(answers)))
        # The form was used: the questions asked in chat beside it are no longer needed.
        dialog = await self.dialogs.create_context(turn_context)
        if dialog.active_dialog is not None:
            await dialog.cancel_all_dialogs()
        card = await self.chat.case_card(person, result.task.id, self._raised_words(result))
        return _card_response(card or notice_card(self._raised_words(result)))


_FORM = ("type", "location", "description")
OUTSIDE_THE_TEAM = "The team works on cases; you can follow this one to hear when it moves."


def _not_visible() -> InvokeResponse:
    """Missing, or not this person's to see: one answer for both."""
    return _error_response(404, "NotFound", NOT_VISIBLE)


def _shown_again(answers: dict[str, str | None]) -> dict[str, str]:
    """A refused form's readable answers, to show again as typed."""
    return {k: v for k, v in answers.items() if v}


def _has_files(activity: Activity) -> bool:
    """Attachments other than the HTML copy of the text Teams adds to every message."""
    return any(a.content_type != "text/html" for a in activity.attachments or ())
