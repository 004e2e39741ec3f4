"""What each Notify message says: the personalisation fields every event needs.

A council's templates use ``((reference))``, ``((type))``, ``((address))``, ``((status))``,
``((outcome))`` and ``((report_date))``, and a 'completed' template may use
``((feedback_link))``: the resident's signed link to rate the work (``/feedback/{token}``,
made by the sender for each report, never for 'received'). ``EVENT_FIELDS`` says which of
them an event must fill; a message missing one is not sent half-filled but parked with the
reason, where a manager can see it. Every field known is sent (Notify ignores the ones a
template does not use), so a council may use, say, ``((status))`` in its 'received'
template too.

No personal data goes into personalisation: nothing here reads the contacts table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from responder.config.model import Council
from responder.domain.reference import format_reference
from responder.domain.vocabulary import RESIDENT_STATUS_WORDS, outcome_words

# The fields each event's templates may rely on. Adding an event means adding it here.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "received": ("reference", "type", "address", "report_date"),
    "completed": ("reference", "type", "address", "status", "outcome", "report_date"),
}

# The events whose messages carry ``((feedback_link))`` (when the sender can sign one).
FEEDBACK_EVENTS = frozenset({"completed"})

# Where the reporter gave no address, only a point on a map.
NO_ADDRESS = "the location you gave"

# English whatever the process locale (strftime's %B follows it).
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class TaskFacts:
    """What a message may say about the task and the report behind it."""

    task_id: int
    type: str  # the task type code
    address: str | None
    status: str
    outcome: str | None
    report_received_at: datetime | None


@dataclass(frozen=True)
class Personalisation:
    values: dict[str, str]
    missing: tuple[str, ...]  # required fields with no value: do not send

    @property
    def problem(self) -> str | None:
        if not self.missing:
            return None
        return "missing personalisation: " + ", ".join(self.missing)


class UnknownEvent(LookupError):
    pass


def report_date(when: datetime, council: Council) -> str:
    """'23 November 2026', in the council's timezone (GOV.UK style: no leading zero)."""
    local = when.astimezone(council.tz)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def words(mapping: dict[str, str], code: str | None) -> str | None:
    if code is None:
        return None
    return mapping.get(code, code.replace("_", " ").replace("-", " "))


def personalise(
    council: Council, event: str, facts: TaskFacts, *, feedback_link: str | None = None
) -> Personalisation:
    """The fields for ``event``'s templates; ``missing`` names required fields left empty.

    ``feedback_link`` goes only into 'completed' messages (FEEDBACK_EVENTS).

    UnknownEvent when no fields are registered for ``event``.
    """
    required = EVENT_FIELDS.get(event)
    if required is None:
        raise UnknownEvent(f"no personalisation is registered for the event '{event}'")
    task_type = council.task_type(facts.type)
    found: dict[str, str | None] = {
        "reference": format_reference(council.info.reference_prefix, facts.task_id),
        "type": task_type.name if task_type else facts.type,
        "address": (facts.address or "").strip() or NO_ADDRESS,
        "status": words(RESIDENT_STATUS_WORDS, facts.status),
        # The council's words for residents, for the task's service's outcome.
        "outcome": outcome_words(council.outcomes_for(facts.type), facts.outcome, "resident"),
        "report_date": (
            report_date(facts.report_received_at, council) if facts.report_received_at else None
        ),
        "feedback_link": feedback_link if event in FEEDBACK_EVENTS else None,
    }
    values = {name: value for name, value in found.items() if value}
    missing = tuple(name for name in required if name not in values)
    return Personalisation(values, missing)


__all__ = [
    "EVENT_FIELDS",
    "FEEDBACK_EVENTS",
    "NO_ADDRESS",
    "Personalisation",
    "TaskFacts",
    "UnknownEvent",
    "personalise",
    "report_date",
]
