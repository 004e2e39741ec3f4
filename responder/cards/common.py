"""Pieces every card uses: serialising to JSON, dates in words, the Action.Execute shape."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from microsoft_teams.cards import AdaptiveCard, ExecuteAction, TextBlock

from responder.cards.escape import text
from responder.domain.vocabulary import priority_words

# Spelled out here rather than with strftime("%a"), which follows the process locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when(moment: datetime, now: datetime | None = None) -> str:
    """``moment`` in words, like "Mon 23 Nov, 09:00", in its own timezone.

    The year is added when it is not ``now``'s year.
    """
    words = f"{_DAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]}"
    if now is not None and now.astimezone(moment.tzinfo).year != moment.year:
        words += f" {moment.year}"
    return f"{words}, {moment:%H:%M}"


# Words and signs, never colour alone: Teams' Warning yellow and Good green are unreadable
# on white (1.5:1, 2:1) and its Attention red is too dark on its dark theme (3.2:1), so
# every text here is the default colour (WCAG 4.5:1 in both themes), weight carrying emphasis.
WARNING_SIGN = "\u26a0\ufe0f"  # ⚠️
DONE_SIGN = "\u2705"  # ✅
_PRIORITY_SIGNS = ("\U0001f534", "\U0001f7e0")  # 🔴 the most urgent, 🟠 the next


def priority_label(name: str, rank: int, count: int) -> str:
    """'🔴 Urgent priority': the words, with a sign for the two most urgent ranks.

    In a council with only two priorities the second is its routine one: no sign.
    """
    sign = ""
    if rank == 0:
        sign = _PRIORITY_SIGNS[0]
    elif rank == 1 and count > 2:
        sign = _PRIORITY_SIGNS[1]
    words = priority_words(name)
    return f"{sign} {words}" if sign else words


def duration(minutes: int) -> str:
    """'3 days 4 h', '5 h 10 min', '25 min'."""
    days, rest = divmod(max(0, minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {mins} min" if mins else "")
    return f"{mins} min"


def due_relative(due: datetime, now: datetime) -> str:
    """How the due time stands from ``now``: 'due in 3 h' or '2 h 10 min late'.

    Cards are rendered afresh when opened (refresh), so this is current when read.
    """
    seconds = (due - now).total_seconds()
    if seconds >= 0:
        minutes = int(seconds // 60)
        return f"due in {duration(minutes)}" if minutes else "due in under a minute"
    minutes = int(-seconds // 60)
    return f"{duration(minutes)} late" if minutes else "under a minute late"


def execute(verb: str, data: dict[str, Any], title: str | None = None) -> ExecuteAction:
    """An Action.Execute: Teams sends ``verb`` and ``data`` (plus any inputs) to the bot."""
    return ExecuteAction(verb=verb, data=dict(data), title=title)


def line(value: str, **style: Any) -> TextBlock:
    """A wrapping TextBlock showing ``value`` literally (escaped)."""
    return TextBlock(text=text(value), wrap=True, **style)


def to_dict(card: AdaptiveCard) -> dict[str, Any]:
    """The card as plain JSON-ready data, without the properties left unset.

    microsoft-teams-cards also models Adaptive Card 1.6 and Teams-only features, so
    cards here use only what the 1.5 schema allows (tests validate every card). It never
    sets ``$schema``: the library's field would serialise as "schema", which 1.5 rejects.

    Serialised in pydantic's Rust core and read back with the C json parser: walking the
    dumped dict in Python to fix numbers cost about a millisecond per list card.
    """
    return json.loads(
        card.model_dump_json(by_alias=True, exclude_none=True), parse_float=_whole_number
    )


def _whole_number(literal: str) -> float | int:
    """The library types counts such as maxLength as float; send 1000, not 1000.0."""
    value = float(literal)
    return int(value) if value.is_integer() else value
