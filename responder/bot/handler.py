"""Responder's Teams turns: learns how to reach people, answers them, applies card clicks.

No SDK here: the runtime (``bot/runtime.py``) has authenticated the activity and read it
into a ``Turn``; replies go out through the one Bot Connector client (``bot/connector.py``),
and a card click's answer is returned as the invoke response. Every activity takes this one
way in, whichever runtime received it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
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
from responder.bot.state_storage import EtagConflict, Saved, StateStore, state_key
from responder.bot.turn import Turn
from responder.bot.views import Viewer, render
from responder.cards.lists import notice_card
from responder.commands.act import ActionRequest, act
from responder.config.model import Person
from responder.dialogs.chat import STRANGER, Chat, Reply, help_for
from responder.dialogs.intents import Parser
from responder.dialogs.raise_by_text import ABANDONED_AFTER, RaiseByText
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
    "priority": Action.PRIORITY,
    "cancel": Action.CANCEL,
}
NEED_CANCEL_REASON = "Say why you are cancelling it, so the team and the councillors know."
STILL_BUSY = "I'm still taking your last answer. Send that one again in a moment?"
_MEMBER_CACHE = 1000  # Teams user ids whose profile was looked up (see _person)


@dataclass(frozen=True)
class InvokeReply:
    """The HTTP answer to an invoke: Teams reads ``body`` (the card or error) at status 200."""

    status: int
    body: dict[str, Any] | None


def _card_response(card: dict, status: int = 200) -> InvokeReply:
    return InvokeReply(200, {"statusCode": status, "type": CARD, "value": card})


def _error_response(status: int, code: str, message: str) -> InvokeReply:
    return InvokeReply(
        200,
        {
            "statusCode": status,
            "type": "application/vnd.microsoft.error",
            "value": {"code": code, "message": message},
        },
    )


class ResponderBot:
    """Chat and card clicks for officers, managers and councillors."""

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
        self.state = StateStore(db, clock)
        self.raising = RaiseByText(domain.council, geocoder)
        self._known: set[tuple] = set()  # conversations already stored by this process
        self._members: OrderedDict[str, str | None] = OrderedDict()  # Teams id -> aadObjectId

    # -- one way in --------------------------------------------------------------------------

    async def turn(self, turn: Turn) -> InvokeReply | None:
        """Handle one authenticated activity; an invoke's answer, or None."""
        person = await self._person(turn)
        await self._remember(turn, person)
        if turn.type == "invoke":
            if turn.name != "adaptiveCard/action":
                return InvokeReply(501, None)  # not an invoke this bot offers
            return await self._card_click_answered(turn, person)
        try:
            if turn.type == "message":
                await self._on_message(turn, person)
            elif turn.type == "conversationUpdate":
                await self._on_members_added(turn, person)
        except Exception as exc:  # noqa: BLE001 - the person hears; Teams must not resend
            # The exception text may quote what the person typed: type, place and id only.
            incident = log_incident(log, "turn failed", exc)
            await self._say(
                turn, f"Sorry, something went wrong on my side (incident {incident}). Try again?"
            )
        return None

    # -- who is this, and how do we reach them again ------------------------------------

    async def _person(self, turn: Turn) -> Person | None:
        """The council's person behind the sender, by their Entra object id.

        Teams leaves ``aadObjectId`` out of some activities; then the member's profile is
        looked up once through the Bot Connector (and remembered by this process).
        """
        aad = turn.from_aad
        if aad is None and turn.from_id and self.connector is not None:
            if turn.from_id in self._members:
                aad = self._members[turn.from_id]
            else:
                aad = await self._look_up(turn)
        return self.domain.council.person_by_aad(aad) if aad else None

    async def _look_up(self, turn: Turn) -> str | None:
        assert self.connector is not None and turn.from_id is not None
        try:
            member = await self.connector.member(
                turn.service_url, turn.conversation_id, turn.from_id
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("member look-up failed: %s", type(exc).__name__)
            return None  # not remembered: the next activity asks again
        aad = member.get("aadObjectId") if member else None
        aad = aad if isinstance(aad, str) else None
        self._members[turn.from_id] = aad
        if len(self._members) > _MEMBER_CACHE:
            self._members.popitem(last=False)
        return aad

    async def _remember(self, turn: Turn, person: Person | None) -> None:
        key = None
        if turn.conversation_type == "personal" and person is not None:
            key = f"person:{person.id}"
        elif turn.conversation_type == "channel":
            key = f"channel:{turn.conversation_id.split(';')[0]}"
        user_id = turn.from_id if person is not None else None
        # Write only what changed: most turns come from a conversation we already know.
        fingerprint = (key, turn.conversation_id, turn.service_url, person and person.id, user_id)
        if fingerprint in self._known:
            return
        reference = turn.reference()
        now = self.clock()

        def store(conn: Connection) -> None:
            if key is not None:
                save_conversation(conn, key, reference, now)
            if person is not None and user_id:
                set_teams_user_id(conn, person.id, user_id)

        await self.db.run(store)
        self._known.add(fingerprint)

    # -- one way out ---------------------------------------------------------------------------

    async def _say(
        self, turn: Turn, reply: str | Reply | dict, person: Person | None = None
    ) -> bool:
        """Send one reply into the turn's conversation; False if Teams did not take it (the
        person can ask again; Teams must not re-send the turn, so it is not an error)."""
        if isinstance(reply, str):
            body = {"type": "message", "text": reply, "textFormat": "markdown"}
        elif isinstance(reply, Reply):
            body = await self._activity_for(reply, person)
        else:
            body = reply
        assert self.connector is not None  # set when the app starts
        try:
            sent = await self.connector.send(turn.service_url, turn.conversation_id, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("reply not delivered: %s", type(exc).__name__)
            return False
        if not sent.ok:
            log.warning("reply not delivered: Teams answered %d", sent.status)
            return False
        return True

    async def _say_all(self, turn: Turn, replies: list[Reply], person: Person | None) -> None:
        for reply in replies:
            if not await self._say(turn, reply, person):
                break

    async def _activity_for(self, reply: Reply, person: Person | None) -> dict:
        if reply.card is not None:
            return card_activity(reply.card)
        if reply.task_card_for is not None and person is not None:
            card = await self.visible_card(person, reply.task_card_for, None)
            if card is not None:
                return card_activity(card)
            return {"type": "message", "text": NOT_VISIBLE}
        return {"type": "message", "text": reply.text or "", "textFormat": "markdown"}

    # -- chat ------------------------------------------------------------------------------

    async def _on_message(self, turn: Turn, person: Person | None) -> None:
        if self.photos is not None and await self.photos.handle(turn, person):
            return
        if person is None:
            await self._say(turn, STRANGER)
            return
        text = turn.without_mention()
        command = self.parser.parse(text)
        key = state_key(turn.channel_id, turn.conversation_id)
        dialog = await self._dialog(key)
        if dialog is not None:
            if command.name == "cancel":
                await self.state.delete(key)
                await self._say(turn, "OK, I've stopped. Nothing was raised.")
            elif command.name == "help":
                await self._say(
                    turn,
                    "I'm asking about a task to raise: answer the question, or say **cancel**.",
                )
            else:
                await self._next_answer(turn, person, key, dialog, text)
            return
        if command.name == "link_team":
            await self._link_team(turn, person, command.argument)
        elif command.name == RAISE:
            await self._say(turn, Reply(card=self.chat.raise_form()), person)
            step = self.raising.start()
            await self.state.write(key, step.state, None)
            await self._say(turn, step.say or "")
        else:
            await self._say_all(turn, await self.chat.answer(person, command), person)

    async def _dialog(self, key: str) -> Saved | None:
        """The raise dialog awaiting this conversation's answer; a stale one is dropped."""
        saved = await self.state.read(key)
        if saved is None:
            return None
        if self.clock() - saved.updated_at < ABANDONED_AFTER and self.raising.readable(
            saved.document
        ):
            return saved
        await self.state.delete(key, saved.etag)
        return None

    async def _next_answer(
        self, turn: Turn, person: Person, key: str, dialog: Saved, text: str
    ) -> None:
        step = self.raising.answer(dialog.document, text)
        try:
            if step.state is None:
                if not await self.state.delete(key, dialog.etag):
                    raise EtagConflict(key)
            else:
                await self.state.write(key, step.state, dialog.etag)
        except EtagConflict:  # two answers at once: the other one moved the dialog on
            await self._say(turn, STILL_BUSY)
            return
        if step.say:
            await self._say(turn, step.say)
        if step.answers is not None:
            await self._raised_by_text(turn, person, step.answers, dialog.document["key"])

    async def _raised_by_text(
        self, turn: Turn, person: Person, answers: dict[str, str], key: str
    ) -> None:
        try:
            result = await raise_task(
                self.db, self.domain, self.geocoder, person, answers, key, self.clock()
            )
        except RaiseError as exc:
            await self._say(turn, f"{exc.message} Nothing was raised.")
            return
        await self._say(turn, self._raised_words(result))
        card = await self.chat.case_card(person, result.task.id)
        if card is not None:
            await self._say(turn, Reply(card=card), person)

    def _raised_words(self, result) -> str:
        task = result.task
        if result.duplicate_of is not None:
            return (
                f"That's already reported as {task.reference}: I've added yours to it, and "
                "you're following it."
            )
        return f"Raised {task.reference}. You're following it: I'll tell you when it moves."

    async def _link_team(self, turn: Turn, person: Person, code: str) -> None:
        if turn.conversation_type != "channel":
            await self._say(turn, "Say **link team** *code* in the team's channel.")
            return
        team = self.domain.council.team(code)
        if team is None:
            codes = ", ".join(t.code for t in self.domain.council.file.teams)
            await self._say(turn, f"There is no team '{code}'. Teams: {codes}.")
            return
        if person.id not in team.managers:
            await self._say(turn, f"Only a manager of {team.name} can link it.")
            return
        channel = f"channel:{turn.conversation_id.split(';')[0]}"
        await self.db.run(lambda conn: link_channel(conn, team.code, channel))
        await self._say(turn, f"This channel now gets {team.name}'s task cards.")

    async def _on_members_added(self, turn: Turn, person: Person | None) -> None:
        """Installed in personal scope: say hello (the reference is already stored)."""
        if turn.conversation_type != "personal":
            return
        if not any(member != turn.recipient_id for member in turn.members_added):
            return
        await self._say(
            turn, f"Hello {person.name.split()[0]}. {help_for(person)}" if person else STRANGER
        )

    # -- card clicks ------------------------------------------------------------------------

    async def _card_click_answered(self, turn: Turn, person: Person | None) -> InvokeReply:
        try:
            return await self._card_click(turn, person)
        except Exception as exc:  # noqa: BLE001 - a card must get an answer, not a 501
            # Type and place only: the exception may quote what was typed (SQL parameters).
            incident = log_incident(log, "card action failed", exc)
            return _error_response(
                500,
                "InternalError",
                f"Sorry, something went wrong on my side (incident {incident}). Try again?",
            )

    async def _card_click(self, turn: Turn, person: Person | None) -> InvokeReply:
        if person is None:  # the same answer whatever the click names
            return _card_response(notice_card(STRANGER))
        try:
            click = read_click(turn.value)
        except BadClick as exc:
            return _error_response(400, "BadRequest", exc.message)
        if click.verb == RAISE:
            return await self._raise_from_card(turn, person, click)
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
        if click.verb == "cancel" and not (click.fields.get("reason") or "").strip():
            return await self._card_for(person, task, NEED_CANCEL_REASON)
        return await self._task_click(person, click)

    async def _visible_task(self, person: Person, task_id: int) -> TaskRecord | None:
        scope = self.chat.scope(person)
        return await self.db.query(lambda conn: find_case(conn, self.domain, scope, task_id))

    async def _task_click(self, person: Person, click: Click) -> InvokeReply:
        """Accept, start, update, complete, hand back or reassign, if this person may."""
        assert click.task_id is not None
        fields = click.fields
        if click.verb == "cancel" and not (fields.get("reason") or "").strip():
            task = await self._visible_task(person, click.task_id)
            return (
                await self._card_for(person, task, NEED_CANCEL_REASON) if task else _not_visible()
            )
        request = ActionRequest(
            task_id=click.task_id,
            action=_VERBS[click.verb],
            person_id=person.id,
            expected_version=fields.get("version"),
            note=fields.get("note"),
            outcome=fields.get("outcome"),
            reason=fields.get("reason"),
            officer=fields.get("officer"),
            priority=fields.get("priority"),
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

    async def _follow_click(self, person: Person, on: bool, task_id: int) -> InvokeReply:
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

    async def _card_for(self, person: Person, task: TaskRecord, notice: str | None) -> InvokeReply:
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

    async def _raise_from_card(self, turn: Turn, person: Person, click: Click) -> InvokeReply:
        answers = {k: click.fields.get(k) for k in _FORM}
        if click.problem is not None:
            return _card_response(self.chat.raise_form(click.problem, _shown_again(answers)))
        key = turn.id or ""
        try:
            result = await raise_task(
                self.db, self.domain, self.geocoder, person, answers, key, self.clock()
            )
        except RaiseError as exc:
            return _card_response(self.chat.raise_form(exc.message, _shown_again(answers)))
        # The form was used: the questions asked in chat beside it are no longer needed.
        await self.state.delete(state_key(turn.channel_id, turn.conversation_id))
        card = await self.chat.case_card(person, result.task.id, self._raised_words(result))
        return _card_response(card or notice_card(self._raised_words(result)))


_FORM = ("type", "location", "description")
OUTSIDE_THE_TEAM = "The team works on cases; you can follow this one to hear when it moves."


def _not_visible() -> InvokeReply:
    """Missing, or not this person's to see: one answer for both."""
    return _error_response(404, "NotFound", NOT_VISIBLE)


def _shown_again(answers: dict[str, str | None]) -> dict[str, str]:
    """A refused form's readable answers, to show again as typed."""
    return {k: v for k, v in answers.items() if v}
