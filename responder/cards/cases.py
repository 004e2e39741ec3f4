"""Councillors' cards: their cases, a ward at a glance, one case, raising a task, news.

A case card is the public view of a task: status, team, due time, place, the report, its
photos and public history. No officer names, hand-back reasons or contact details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from microsoft_teams.cards import (
    AdaptiveCard,
    CardElement,
    Choice,
    ChoiceSetInput,
    Column,
    ColumnSet,
    Container,
    Fact,
    FactSet,
    OpenUrlAction,
    TextInput,
)

from responder.cards.common import (
    WARNING_SIGN,
    due_relative,
    execute,
    line,
    priority_label,
    to_dict,
    when,
)
from responder.cards.escape import text
from responder.cards.task_card import map_url, photos_element
from responder.domain.vocabulary import OVERDUE_WORDS, RAISE_DESCRIPTION_MAX, RAISE_LOCATION_MAX

# Input ids of the raise form; the bot reads these names from the action's data.
TYPE, LOCATION, DESCRIPTION = "type", "location", "description"


@dataclass(frozen=True)
class CaseRow:
    """One case in a list, already in words (the caller knows the council and timezone)."""

    task_id: int
    reference: str
    type_name: str
    status_text: str  # "In progress"
    due_text: str  # "Due Mon 23 Nov, 09:00" or "Closed Tue 24 Nov, 10:00"
    overdue: bool
    address: str
    last_text: str | None = None  # "Work started · Mon 23 Nov, 10:12"


def case_list_card(
    title: str, rows: Sequence[CaseRow], total: int, empty_text: str, hint: str | None = None
) -> dict[str, Any]:
    """Cases to tap into (verb "case" opens one), then how many more there are."""
    body: list[CardElement] = [_title(title)]
    if not rows:
        body.append(line(empty_text))
    body += [_row(row) for row in rows]
    if total > len(rows):
        more = f"…and {total - len(rows)} older."
        body.append(line(more, is_subtle=True, size="Small", separator=True))
    if hint:
        body.append(line(hint, is_subtle=True, size="Small", separator=True))
    return to_dict(AdaptiveCard(body=body))


def _title(title: str) -> CardElement:
    return line(title, size="Medium", weight="Bolder", style="heading")


def _row(row: CaseRow) -> Container:
    """Type · reference / status · due [OVERDUE] / latest public event / address."""
    columns = [Column(width="stretch", items=[line(f"{row.status_text} · {row.due_text}")])]
    if row.overdue:
        overdue = line(f"{WARNING_SIGN} {OVERDUE_WORDS}", weight="Bolder")
        columns.append(Column(width="auto", items=[overdue]))
    items: list[CardElement] = [
        line(f"{row.type_name} · {row.reference}", weight="Bolder"),
        ColumnSet(columns=columns, spacing="None"),
    ]
    if row.last_text:
        items.append(line(row.last_text, size="Small", spacing="None"))
    items.append(line(row.address, size="Small", is_subtle=True, spacing="None"))
    return Container(
        separator=True,
        select_action=execute("case", {"taskId": row.task_id}, f"Open {row.reference}"),
        items=items,
    )


@dataclass(frozen=True)
class WardView:
    ward: str
    open_total: int
    by_status: tuple[tuple[str, int], ...]  # ("Waiting for the team", 3)
    by_type: tuple[tuple[str, int], ...]  # ("Fly-tipping", 12), most first
    overdue_total: int
    overdue: tuple[CaseRow, ...]
    newest: tuple[CaseRow, ...]
    restricted_to: str | None = None  # "your teams' work" when the viewer sees part of it


MAX_TYPES = 6


NOTHING_OPEN = "Nothing is open here just now."


def ward_title(view: WardView) -> str:
    """'Northgate: 3 open cases' (the card's title; the ward page's heading too)."""
    return f"{view.ward}: {view.open_total} open case{'s' if view.open_total != 1 else ''}"


def ward_restricted(view: WardView) -> str | None:
    return f"Showing {view.restricted_to}." if view.restricted_to else None


def ward_overdue_heading(view: WardView) -> str:
    return f"{WARNING_SIGN} {OVERDUE_WORDS}: {view.overdue_total}"


def ward_more_overdue(view: WardView) -> str | None:
    hidden = view.overdue_total - len(view.overdue)
    return f"…and {hidden} more overdue." if hidden > 0 else None


def ward_types(view: WardView) -> tuple[tuple[str, int], ...]:
    """The busiest types, the rest summed as 'Other types'."""
    shown = view.by_type[:MAX_TYPES]
    others = sum(n for _, n in view.by_type[MAX_TYPES:])
    return shown + ((("Other types", others),) if others else ())


def ward_summary_card(view: WardView) -> dict[str, Any]:
    """Open cases in one ward: overdue ones first, then counts by status and type.

    The web's ward page (``/wards/{ward}``) shows the same view in the same words (the
    ``ward_*`` functions above)."""
    body: list[CardElement] = [_title(ward_title(view))]
    restricted = ward_restricted(view)
    if restricted:
        body.append(line(restricted, is_subtle=True, size="Small"))
    if view.overdue_total:
        body.append(line(ward_overdue_heading(view), weight="Bolder", separator=True))
        body += [_row(row) for row in view.overdue]
        more = ward_more_overdue(view)
        if more:
            body.append(line(more, is_subtle=True, size="Small"))
    if view.by_status:
        body.append(line("By status", weight="Bolder", separator=True))
        body.append(_facts(view.by_status))
    if view.by_type:
        body.append(line("By type", weight="Bolder", separator=True))
        body.append(_facts(ward_types(view)))
    if view.newest:
        body.append(line("Newest", weight="Bolder", separator=True))
        body += [_row(row) for row in view.newest]
    if not view.open_total:
        body.append(line(NOTHING_OPEN))
    return to_dict(AdaptiveCard(body=body))


def _facts(pairs: Sequence[tuple[str, int]]) -> FactSet:
    return FactSet(facts=[Fact(title=text(name), value=str(n)) for name, n in pairs])


@dataclass(frozen=True)
class CaseView:
    task_id: int
    reference: str
    type_name: str
    status_text: str
    overdue: bool
    facts: tuple[tuple[str, str], ...]  # ("Team", "Street Care North"), ("Due", ...)
    description: str
    lat: float
    lon: float
    photos: tuple[str, ...]
    history: tuple[tuple[str, str], ...]  # (when, what), newest first
    following: bool
    notice: str | None = None
    place: str = ""  # the address (or coordinates), for the photos' descriptions


def case_card(view: CaseView) -> dict[str, Any]:
    """One case, public view, with Follow/Unfollow and a map link."""
    body: list[CardElement] = []
    if view.notice:
        body.append(Container(style="emphasis", items=[line(view.notice, weight="Bolder")]))
    body.append(
        line(f"{view.type_name} · {view.reference}", size="Large", weight="Bolder", style="heading")
    )
    status = [Column(width="stretch", items=[line(view.status_text, weight="Bolder")])]
    if view.overdue:
        status.append(
            Column(width="auto", items=[line(f"{WARNING_SIGN} {OVERDUE_WORDS}", weight="Bolder")])
        )
    body.append(ColumnSet(columns=status))
    body.append(FactSet(facts=[Fact(title=text(t), value=text(v)) for t, v in view.facts]))
    if view.description.strip():
        body.append(line(view.description, separator=True))
    photos = photos_element(view.photos, f"{view.type_name} at {view.place}")
    if photos is not None:
        body.append(photos)
    if view.history:
        body.append(line("History", weight="Bolder", size="Small", separator=True))
        body += [line(f"{at} · {what}", size="Small", is_subtle=True) for at, what in view.history]
    data = {"taskId": view.task_id}
    follow = (
        execute("unfollow", data, "Unfollow")
        if view.following
        else execute("follow", data, "Follow")
    )
    actions = [
        follow,
        execute("case", data, "Refresh"),
        OpenUrlAction(title="Open map", url=map_url(view.lat, view.lon)),
    ]
    return to_dict(AdaptiveCard(body=body, actions=actions))


def raise_form_card(
    types: Sequence[tuple[str, str]],
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The raise-a-task form: type, where, what. ``error``/``values`` re-show a refused form."""
    values = values or {}
    body: list[CardElement] = [_title("Raise a task")]
    if error:
        body.append(line(f"{WARNING_SIGN} {error}", weight="Bolder"))
    body += [
        ChoiceSetInput(
            id=TYPE,
            label="What is it?",
            style="compact",
            placeholder="Choose a type",
            value=values.get(TYPE) or None,
            choices=[Choice(title=name, value=code) for code, name in types],
        ),
        TextInput(
            id=LOCATION,
            label="Where?",
            placeholder="A ward and place (Northgate, by the park gates) or 51.9051, 0.8873",
            max_length=RAISE_LOCATION_MAX,
            value=values.get(LOCATION) or None,
        ),
        TextInput(
            id=DESCRIPTION,
            label="What is wrong?",
            placeholder="What you or a resident saw",
            is_multiline=True,
            max_length=RAISE_DESCRIPTION_MAX,
            value=values.get(DESCRIPTION) or None,
        ),
    ]
    submit = execute("raise", {}, "Raise task")
    submit.style = "positive"
    return to_dict(AdaptiveCard(body=body, actions=[submit]))


def reminder_words(priority: str, rank: int, count: int, due_local: datetime, now: datetime) -> str:
    """'Reminder: 🔴 Urgent priority, due in 59 min (Sat 5 Dec, 10:00)'."""
    label = priority_label(priority, rank, count)
    return f"Reminder: {label}, {due_relative(due_local, now)} ({when(due_local, now)})"


def status_notice_card(
    reference: str, type_name: str, status_text: str, address: str, task_id: int
) -> dict[str, Any]:
    """A short proactive message: a case you follow has moved on."""
    body: list[CardElement] = [
        line(f"{type_name} · {reference}", weight="Bolder"),
        line(status_text),
        line(address, size="Small", is_subtle=True, spacing="None"),
    ]
    view = execute("case", {"taskId": task_id}, "View case")
    return to_dict(AdaptiveCard(body=body, actions=[view]))
