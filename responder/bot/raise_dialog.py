"""Raising a task by text: the bot asks for each answer in turn (botbuilder-dialogs).

The dialog's state lives in the database (store/bot_storage.py), so a restart or another
instance can take the next answer. The checks are the form card's (dialogs/raising.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.dialogs import (
    ComponentDialog,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.dialogs.prompts import PromptOptions, PromptValidatorContext, TextPrompt
from sqlalchemy import select

from responder.config.model import Council
from responder.dialogs.raising import RaiseError, check_description, check_location, check_type
from responder.domain.geocode import Geocoder
from responder.store.db import Database
from responder.store.schema import bot_state

RAISE = "raise"
# An unanswered question older than this is dropped: the next message starts afresh.
ABANDONED_AFTER = timedelta(minutes=30)

TYPE_QUESTION = "What kind of problem is it? For example: {examples}."
LOCATION_QUESTION = (
    "Where is it? Give the ward and the place (**Northgate, by the park gates**) "
    "or coordinates (**51.9051, 0.8873**)."
)
DESCRIPTION_QUESTION = "What is wrong? A sentence or two is plenty."

# (person id, answers, dialog key) -> the words to send back once raised.
Finish = Callable[[TurnContext, dict[str, str], str], Awaitable[None]]


def state_key(channel_id: str | None, conversation_id: str) -> str:
    """ConversationState's storage key for a conversation (botbuilder's own format)."""
    return f"{channel_id or 'msteams'}/conversations/{conversation_id}"


async def touched_at(db: Database, key: str) -> datetime | None:
    """When this conversation's dialog state was last written, or None if it has none."""
    return await db.query(
        lambda conn: conn.execute(
            select(bot_state.c.updated_at).where(bot_state.c.key == key)
        ).scalar_one_or_none()
    )


class RaiseDialog(ComponentDialog):
    def __init__(self, council: Council, geocoder: Geocoder, finish: Finish) -> None:
        super().__init__(RAISE)
        self.council = council
        self.geocoder = geocoder
        self.finish = finish
        self.add_dialog(TextPrompt("type", self._valid_type))
        self.add_dialog(TextPrompt("location", self._valid_location))
        self.add_dialog(TextPrompt("description", self._valid_description))
        self.add_dialog(
            WaterfallDialog(
                "steps", [self._ask_type, self._ask_location, self._ask_description, self._done]
            )
        )
        self.initial_dialog_id = "steps"

    def _examples(self) -> str:
        names = [t.name for t in self.council.file.task_types]
        return ", ".join(names[:6]) + (", …" if len(names) > 6 else "")

    async def _ask_type(self, step: WaterfallStepContext) -> DialogTurnResult:
        step.values["key"] = uuid.uuid4().hex  # makes a replayed final step harmless
        question = "Or answer here. " + TYPE_QUESTION.format(examples=self._examples())
        return await step.prompt("type", PromptOptions(prompt=MessageFactory.text(question)))

    async def _ask_location(self, step: WaterfallStepContext) -> DialogTurnResult:
        step.values["type"] = step.result
        return await step.prompt(
            "location", PromptOptions(prompt=MessageFactory.text(LOCATION_QUESTION))
        )

    async def _ask_description(self, step: WaterfallStepContext) -> DialogTurnResult:
        step.values["location"] = step.result
        return await step.prompt(
            "description", PromptOptions(prompt=MessageFactory.text(DESCRIPTION_QUESTION))
        )

    async def _done(self, step: WaterfallStepContext) -> DialogTurnResult:
        step.values["description"] = step.result
        answers = {k: step.values[k] for k in ("type", "location", "description")}
        await self.finish(step.context, answers, step.values["key"])
        return await step.end_dialog()

    # Validators answer with the specific problem and the question again; when they have
    # replied, the prompt does not repeat itself.

    async def _valid_type(self, prompt: PromptValidatorContext) -> bool:
        return await self._check(
            prompt,
            lambda v: check_type(self.council, v),
            TYPE_QUESTION.format(examples=self._examples()),
        )

    async def _valid_location(self, prompt: PromptValidatorContext) -> bool:
        return await self._check(
            prompt, lambda v: check_location(self.geocoder, v), LOCATION_QUESTION
        )

    async def _valid_description(self, prompt: PromptValidatorContext) -> bool:
        return await self._check(prompt, check_description, DESCRIPTION_QUESTION)

    @staticmethod
    async def _check(prompt: PromptValidatorContext, check, question: str) -> bool:
        value = prompt.recognized.value if prompt.recognized.succeeded else None
        try:
            check(value)
        except RaiseError as exc:
            await prompt.context.send_activity(f"{exc.message} {question} (Or say **cancel**.)")
            return False
        return True
