"""Responder's words and limits, each defined once: what a status, an event and an outcome
are called for each audience, and how long what people type may be.

Pure values (no I/O, no imports from the rest of Responder), so the council model, the
domain, the cards, the chat and Notify can all take their words from here.

Audiences: officers and managers (staff) work the task card and its history;
councillors see the public case card and case history; residents read Notify messages.

Outcomes are the council's: each service of the council file may name its own
(``services[].outcomes``, see ``config/model.py``). ``DEFAULT_OUTCOMES`` are the four a
service has when its file names none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Audience = Literal["officer", "manager", "councillor", "resident"]

# -- limits --------------------------------------------------------------------------------

NOTE_MAX = 1000  # an update, or the note with any other action
REASON_MAX = 500  # why an officer hands a task back
OUTCOME_CODE_MAX = 64  # an outcome's code: the tasks.outcome column holds 64
OUTCOME_NAME_MAX = 80  # an outcome's name, as offered on a phone's choice list
OUTCOME_RESIDENT_MAX = 200  # an outcome's words for residents, inside a Notify message
RAISE_LOCATION_MAX = 300  # "Where?" on the raise-a-task form
RAISE_DESCRIPTION_MAX = 2000  # "What is wrong?" on the raise-a-task form

NOTE_TOO_LONG = f"Keep the note to {NOTE_MAX} characters or fewer."
REASON_TOO_LONG = f"Keep the reason to {REASON_MAX} characters or fewer."

# -- priorities and lateness ---------------------------------------------------------------


def priority_words(name: str) -> str:
    """A council's priority name as words on a card: 'high' -> 'High priority', 'P1' ->
    'P1 priority'; a name that already says so is left alone ('Top priority')."""
    name = name.strip()
    words = name[:1].upper() + name[1:]
    return words if words.lower().endswith("priority") else f"{words} priority"


OVERDUE_WORDS = "Overdue"

# -- statuses ------------------------------------------------------------------------------

# People in Teams (staff and councillors): chat lists, case cards, ward summaries, notices.
STATUS_WORDS: dict[str, str] = {
    "unassigned": "Waiting for the team",
    "assigned": "With an officer",
    "accepted": "Accepted",
    "in_progress": "In progress",
    "completed": "Done",
    "cancelled": "Cancelled",
}

# A ward at a glance: each open task counted once, so the counts add up to the open total.
WARD_STATUS_WORDS: dict[str, str] = {
    "unassigned": "Waiting for an officer",
    "assigned": "Assigned, not yet accepted",
    "accepted": "Accepted, not yet started",
    "in_progress": "Being worked on",
}


def status_line(
    status: str,
    who: str | None = None,
    team: str | None = None,
    outcome: str | None = None,
) -> str:
    """Where a task stands, for staff: 'Assigned to Bob Warden', 'Done (Cleared / fixed)'.

    ``who``: the assignee's name (or "you"); ``team``: the team's name; ``outcome``: the
    completion's outcome in the council's words.
    """
    person = who or "an officer"
    if status == "unassigned":
        return f"Waiting for someone in {team} to accept" if team else STATUS_WORDS[status]
    if status == "assigned":
        return f"Assigned to {person}"
    if status == "accepted":
        return f"Accepted by {person}"
    if status == "in_progress":
        return f"In progress – {person}"
    if status == "completed":
        return f"Done ({outcome})" if outcome else "Done"
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


# Residents: Notify's ((status)), inside a sentence.
RESIDENT_STATUS_WORDS: dict[str, str] = {
    "unassigned": "waiting for an officer",
    "assigned": "with an officer",
    "accepted": "accepted by an officer",
    "in_progress": "being dealt with",
    "completed": "completed",
    "cancelled": "closed",
}

# -- events --------------------------------------------------------------------------------

# Officers and managers: the task card's recent history (followed by "by <name>").
EVENT_WORDS: dict[str, str] = {
    "created": "Reported",
    "duplicate_linked": "Reported again",
    "accept": "Accepted",
    "start": "Started",
    "update": "Update",
    "complete": "Done",
    "handback": "Handed back",
    "reassign": "Reassigned",
    "assign": "Assigned",
    "cancel": "Cancelled",
    "priority": "Priority changed",
    "undelivered": "Card not delivered",
    "photo": "Photo added",
    "photo_failed": "Photo could not be fetched",
    "citizen_update": "Resident's update",
    "feedback": "Resident's rating",
}

# What people did: the only events an officer's card lists (no routing, delivery or
# Notify lines; those are the system's, and problems among them are for managers).
PEOPLE_EVENTS: frozenset[str] = frozenset(
    {
        "created",
        "duplicate_linked",
        "accept",
        "start",
        "update",
        "complete",
        "handback",
        "reassign",
        "assign",
        "cancel",
        "priority",
        "photo",
        "citizen_update",
    }
)
# Delivery lines: a task card not delivered, a resident's email or text not sent, a photo
# a source linked to not fetched (responder/fetching/photos.py).
DELIVERY_EVENTS: frozenset[str] = frozenset(
    {"undelivered", "notify", "notify_status", "photo_failed"}
)

_MESSAGE_WORDS = {"email": "email", "sms": "text message"}
_NOT_SET_UP = (
    "GOV.UK Notify is not set up for Responder yet: ask whoever runs Responder to add "
    "the council's Notify API key"
)


def delivery_problem(action: str, note: str | None, data: object) -> str | None:
    """A delivery problem in words a manager can act on; None for a delivery that worked.

    ``note`` and ``data`` are the history event's (commands/notify_records.py,
    commands/receipts.py, commands/delivery_log.py).
    """
    note = (note or "").strip()
    if action == "undelivered":
        return f"{note.rstrip('.')}. Ask them to add the Responder app in Teams."
    if action == "photo_failed":  # the note says why, without the link
        return f"{EVENT_WORDS[action]}: {note.rstrip('.')}." if note else f"{EVENT_WORDS[action]}."
    if action not in ("notify", "notify_status") or not isinstance(data, dict):
        return None
    status = str(data.get("status") or "")
    message = _MESSAGE_WORDS.get(str(data.get("channel")), "message")
    event = str(data.get("event") or "").replace("_", " ").replace("-", " ")
    what = f"The reporter's {message}" + (f" ('{event}')" if event else "")
    if action == "notify" and status == "not-sent":
        detail = note.partition(" not sent: ")[2] or note
        if "NOTIFY_API_KEY" in detail:
            why = _NOT_SET_UP
        elif detail.startswith("the reporter gave no"):
            why = f"{detail}, so there is nothing to do"
        else:
            why = detail
        return f"{what} was not sent: {why}."
    if action == "notify_status" and status.endswith("failure"):
        after = note.partition("; ")[2]
        words = f"{what} could not be delivered ({status.replace('-', ' ')})"
        return f"{words}; {after}." if after else f"{words}."
    return None


# Councillors: the events a case's history shows, in words. The rest (hand-back reasons,
# reassignments, routing, delivery) is internal detail. Officers' names are left out.
PUBLIC_EVENT_WORDS: dict[str, str] = {
    "created": "Reported",
    "duplicate_linked": "Reported again",
    "accept": "Accepted by the team",
    "start": "Work started",
    "update": "Update",
    "photo": "Photo added",
    "complete": "Done",
    "cancel": "Cancelled",
}

# -- outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeWords:
    """One way a task can end, as each audience reads it."""

    code: str  # stored on the task and in its history; sent back by the card
    name: str  # officers, managers and councillors: "Cleared / fixed"
    resident: str  # residents, inside a sentence: "dealt with"

    def words(self, audience: Audience) -> str:
        return self.resident if audience == "resident" else self.name


DEFAULT_OUTCOMES: tuple[OutcomeWords, ...] = (
    OutcomeWords("resolved", "Cleared / fixed", "dealt with"),
    OutcomeWords("no-action", "Nothing found", "no action was needed"),
    OutcomeWords("referred", "Referred elsewhere", "passed to the organisation responsible"),
    OutcomeWords(
        "private-land",
        "On private land",
        "on private land, so it is for the landowner to deal with",
    ),
)


def resident_words(name: str) -> str:
    """A staff name as words inside a resident's sentence: 'Cleared' -> 'cleared'.

    An initialism keeps its capitals ('CCTV checked' stays as it is).
    """
    if len(name) > 1 and name[1].isupper():
        return name
    return name[:1].lower() + name[1:]


def outcome_words(
    outcomes: Iterable[OutcomeWords], code: str | None, audience: Audience
) -> str | None:
    """What ``audience`` reads for the outcome ``code``; an unknown code (one the council
    file has dropped since) reads as itself, in words ('passed-on' -> 'passed on')."""
    if code is None:
        return None
    for outcome in outcomes:
        if outcome.code == code:
            return outcome.words(audience)
    return code.replace("_", " ").replace("-", " ")


def outcome_list(outcomes: Iterable[OutcomeWords]) -> str:
    """'Cleared, Nothing found or Referred elsewhere' (staff names)."""
    names = [o.name for o in outcomes]
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


__all__ = [
    "DEFAULT_OUTCOMES",
    "DELIVERY_EVENTS",
    "EVENT_WORDS",
    "NOTE_MAX",
    "NOTE_TOO_LONG",
    "OUTCOME_CODE_MAX",
    "OUTCOME_NAME_MAX",
    "OUTCOME_RESIDENT_MAX",
    "OVERDUE_WORDS",
    "PEOPLE_EVENTS",
    "PUBLIC_EVENT_WORDS",
    "RAISE_DESCRIPTION_MAX",
    "RAISE_LOCATION_MAX",
    "REASON_MAX",
    "REASON_TOO_LONG",
    "RESIDENT_STATUS_WORDS",
    "STATUS_WORDS",
    "WARD_STATUS_WORDS",
    "Audience",
    "delivery_problem",
    "OutcomeWords",
    "outcome_list",
    "outcome_words",
    "priority_words",
    "resident_words",
    "status_line",
]
