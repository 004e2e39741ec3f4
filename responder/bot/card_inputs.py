"""What a card click may carry, checked as strictly as intake checks a report.

Action.Execute sends back the data our card put on the button plus the values of the
card's inputs. Anything else (a wrong type, a 100 KB note, a NUL or other control
character, an id no database can hold, a field none of our cards has) did not come from a
card of ours as Teams renders it. It is refused with a sentence the person can act on and
changes nothing (Principle 4); nothing of it is logged.

Two kinds of refusal, so that a refusal never says whether a task exists:

- ``BadClick``: the click itself is unreadable (no verb, no usable task id); answered the
  same way for every task.
- ``Click.problem``: the task id is fine but an input is not; answered, once the task is
  known to be visible to the person, on that task's card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from responder.bot.photos import ATTACH, MAX_FILES
from responder.domain.visibility import MAX_TASK_ID, task_id_of
from responder.domain.vocabulary import NOTE_MAX, NOTE_TOO_LONG, REASON_MAX, REASON_TOO_LONG

# Verbs of the task card that change a task (the lifecycle's actions, by card name).
TASK_VERBS = frozenset(
    {"accept", "start", "update", "complete", "handback", "reassign", "priority", "cancel"}
)
VIEW_VERBS = frozenset({"refresh", "open"})  # show the task card as it is now
CASE_VERBS = frozenset({"case", "follow", "unfollow"})  # councillors' case card
RAISE = "raise"  # the raise-a-task form card
# and ATTACH, the photo choice card; RAISE, the raise-a-task form.
VERBS = TASK_VERBS | VIEW_VERBS | CASE_VERBS | {ATTACH, RAISE}

MAX_VERB = 32
MAX_CHOICE = 64  # an outcome code or a person id
MAX_TOKEN = 64

# C0 and C1 controls and DEL; tab, line feed and carriage return are ordinary in notes.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

UNREADABLE = "This card sent something I couldn't read, so nothing was changed."
NO_TASK_ID = "This card has no task id."
UNKNOWN_VERB = "This card's button isn't one I know, so nothing was changed."
UNKNOWN_FIELDS = "This card sent something I don't recognise, so nothing was changed."

# The task card's forms give each input its own id (two forms in one card must not share
# one); each is read as the field it fills. Cards sent before keep working: ``note``,
# which both the update and the completion form used, is still accepted.
FORM_FIELDS = {"updateNote": "note", "completeNote": "note", "cancelReason": "reason"}

# Words for each input, in refusals ("The note can't contain control characters.").
_WORDS = {
    "note": "note",
    "updateNote": "note",
    "completeNote": "note",
    "reason": "reason",
    "cancelReason": "reason",
    "priority": "priority choice",
    "outcome": "outcome",
    "officer": "officer choice",
    "version": "card version",
    "type": "type",
    "location": "location",
    "description": "description",
    "photos": "photo list",
}
_TOO_LONG = {
    "note": NOTE_TOO_LONG,
    "updateNote": NOTE_TOO_LONG,
    "completeNote": NOTE_TOO_LONG,
    "reason": REASON_TOO_LONG,
    "cancelReason": REASON_TOO_LONG,
}


class BadClick(Exception):
    """A click that cannot be read at all; ``message`` is the whole answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Click:
    verb: str
    task_id: int | None  # None only for ``raise``
    # The validated inputs (with a problem: those still readable, to show a form again).
    fields: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # a refused input, in words; nothing may change then


def text_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be kept as text, in words; None when it can. (Lone surrogates
    never get here: pydantic refuses them as unreadable strings.)"""
    if _CONTROL.search(value):
        return f"The {_WORDS.get(name, name)} can't contain control characters."
    return None


class _Data(BaseModel):
    # Strict: "5" is not a task id and true is not a version; extra: a field none of
    # our cards sends.
    model_config = ConfigDict(extra="forbid", strict=True)


class _TaskData(_Data):
    taskId: int  # checked by task_id_of before this model sees it
    version: int | None = Field(default=None, ge=0, le=MAX_TASK_ID)
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    updateNote: str | None = Field(default=None, max_length=NOTE_MAX)
    completeNote: str | None = Field(default=None, max_length=NOTE_MAX)
    outcome: str | None = Field(default=None, max_length=MAX_CHOICE)
    reason: str | None = Field(default=None, max_length=REASON_MAX)
    officer: str | None = Field(default=None, max_length=MAX_CHOICE)
    priority: str | None = Field(default=None, max_length=MAX_CHOICE)
    cancelReason: str | None = Field(default=None, max_length=REASON_MAX)


class _ViewData(_Data):
    taskId: int
    version: int | None = Field(default=None, ge=0, le=MAX_TASK_ID)


class _AttachData(_Data):
    taskId: int
    photos: list[str] = Field(min_length=1, max_length=MAX_FILES)


class _RaiseData(_Data):
    type: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=5000)


def _model_for(verb: str) -> type[_Data]:
    if verb in TASK_VERBS:
        return _TaskData
    if verb == ATTACH:
        return _AttachData
    if verb == RAISE:
        return _RaiseData
    return _ViewData


def _problem(error: ValidationError) -> str:
    """The first refused input, in words."""
    first = error.errors(include_input=False, include_url=False)[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    words = _WORDS.get(name)
    if first["type"] == "extra_forbidden" or words is None:
        return UNKNOWN_FIELDS
    if first["type"] == "string_too_long":
        return _TOO_LONG.get(name, f"The {words} is too long, so nothing was changed.")
    return f"This card sent a {words} I couldn't read, so nothing was changed."


def read_click(value: object) -> Click:
    """The click in an ``adaptiveCard/action`` invoke's ``value``; BadClick if unreadable."""
    action = value.get("action") if isinstance(value, dict) else None
    if not isinstance(action, dict):
        raise BadClick(UNREADABLE)
    verb = action.get("verb")
    if not isinstance(verb, str) or len(verb) > MAX_VERB or verb not in VERBS:
        raise BadClick(UNKNOWN_VERB)
    data = action.get("data", {})
    if not isinstance(data, dict):
        raise BadClick(UNREADABLE)
    task_id = None
    if verb != RAISE:
        task_id = task_id_of(data.get("taskId"))
        if task_id is None:
            raise BadClick(NO_TASK_ID)
    try:
        fields = _model_for(verb).model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        return Click(verb, task_id, problem=_problem(exc))
    fields.pop("taskId", None)
    for form_id, name in FORM_FIELDS.items():
        value = fields.pop(form_id, None)
        if value is not None and not fields.get(name):
            fields[name] = value  # a new card's own id; an old card's ``note`` as before
    for name, item in fields.items():
        texts = item if isinstance(item, list) else [item]
        if name == "photos" and not all(0 < len(t) <= MAX_TOKEN for t in texts):
            return Click(verb, task_id, problem=f"This card sent a {_WORDS[name]} I couldn't read.")
        for value in texts:
            problem = text_problem(name, value) if isinstance(value, str) else None
            if problem is not None:  # the other inputs are kept, to show a form again
                readable = {k: v for k, v in fields.items() if k != name}
                return Click(verb, task_id, readable, problem)
    return Click(verb, task_id, fields)
