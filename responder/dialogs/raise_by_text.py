"""Raising a task by text: one question at a time, as a small state machine.

Pure: the state is a plain JSON document the bot keeps in the database between messages
(``bot/state_storage.py``), so a restart or another instance takes the next answer, and
any Teams runtime reads what another wrote. The checks are the form card's
(``dialogs/raising.py``), so both refuse the same things with the same words.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from responder.config.model import Council
from responder.dialogs.raising import RaiseError, check_description, check_location, check_type
from responder.domain.geocode import Geocoder

# An unanswered question older than this is dropped: the next message starts afresh.
ABANDONED_AFTER = timedelta(minutes=30)

TYPE_QUESTION = "What kind of problem is it? For example: {examples}."
LOCATION_QUESTION = (
    "Where is it? Give the ward and the place (**Northgate, by the park gates**) "
    "or coordinates (**51.9051, 0.8873**)."
)
DESCRIPTION_QUESTION = "What is wrong? A sentence or two is plenty."
STEPS = ("type", "location", "description")
KIND = "raise"  # the document's kind: anything else in the store is not this dialog's


@dataclass(frozen=True)
class Step:
    """What one answer leads to: the state to keep (None: the dialog is over), what to say,
    and, on the last answer, the three answers to raise the task with."""

    state: dict[str, Any] | None
    say: str | None
    answers: dict[str, str] | None = None


class RaiseByText:
    def __init__(self, council: Council, geocoder: Geocoder) -> None:
        self.council = council
        self.geocoder = geocoder

    def _examples(self) -> str:
        names = [t.name for t in self.council.file.task_types]
        return ", ".join(names[:6]) + (", …" if len(names) > 6 else "")

    def _question(self, step: str) -> str:
        if step == "type":
            return TYPE_QUESTION.format(examples=self._examples())
        return LOCATION_QUESTION if step == "location" else DESCRIPTION_QUESTION

    def start(self) -> Step:
        # The key makes the final answer idempotent: raising twice with it raises once.
        state = {"kind": KIND, "step": "type", "answers": {}, "key": uuid.uuid4().hex}
        return Step(state, "Or answer here. " + self._question("type"))

    @staticmethod
    def readable(document: object) -> bool:
        """Whether a stored document is this dialog's state (older rows may be anything)."""
        return (
            isinstance(document, dict)
            and document.get("kind") == KIND
            and document.get("step") in STEPS
            and isinstance(document.get("answers"), dict)
            and isinstance(document.get("key"), str)
        )

    def answer(self, state: dict[str, Any], text: str | None) -> Step:
        step = state["step"]
        checks: dict[str, Callable[[str | None], object]] = {
            "type": lambda v: check_type(self.council, v),
            "location": lambda v: check_location(self.geocoder, v),
            "description": check_description,
        }
        try:
            checks[step](text)
        except RaiseError as exc:
            question = self._question(step)
            return Step(state, f"{exc.message} {question} (Or say **cancel**.)")
        answers = {**state["answers"], step: (text or "").strip()}
        following = STEPS.index(step) + 1
        if following == len(STEPS):
            return Step(None, None, answers)
        next_step = STEPS[following]
        return Step({**state, "step": next_step, "answers": answers}, self._question(next_step))
