"""Compact cards: a list of tasks to tap into, and a plain message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from microsoft_teams.cards import AdaptiveCard, CardElement, Column, ColumnSet, Container

from responder.cards.common import WARNING_SIGN, execute, line, to_dict
from responder.domain.vocabulary import OVERDUE_WORDS, priority_words

MAX_ROWS = 25


@dataclass(frozen=True)
class TaskListRow:
    """One task in a list, already in words (the caller knows the council and timezone)."""

    reference: str  # "RSP-1042"
    type_name: str  # "Fly-tipping"
    priority: str  # the council's name for it
    status_text: str  # "assigned"
    due_text: str  # "due Mon 23 Nov 09:00"
    overdue: bool
    address: str
    task_id: int
    due_soon: str | None = None  # "due in 3 h" / "2 h 10 min late" (cards.common.due_relative)


def task_list_card(title: str, rows: Sequence[TaskListRow], empty_text: str) -> dict[str, Any]:
    """Up to 25 tasks, one tappable block each (verb "open"), then "and N more"."""
    body: list[CardElement] = [_title(title)]
    if not rows:
        body.append(line(empty_text))
    body += [_row(row) for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        body.append(line(f"…and {len(rows) - MAX_ROWS} more.", is_subtle=True, separator=True))
    return to_dict(AdaptiveCard(body=body))


def notice_card(text: str, title: str | None = None) -> dict[str, Any]:
    """A simple message card."""
    body: list[CardElement] = [_title(title)] if title else []
    body.append(line(text))
    return to_dict(AdaptiveCard(body=body))


def _title(title: str) -> CardElement:
    return line(title, size="Medium", weight="Bolder", style="heading")


def _row(row: TaskListRow) -> Container:
    """Type · reference / priority · status · due [OVERDUE] / address; tap to open."""
    summary = f"{priority_words(row.priority)} · {row.status_text} · {row.due_text}"
    if row.due_soon:
        summary += f" · {row.due_soon}"
    columns = [Column(width="stretch", items=[line(summary, size="Small")])]
    if row.overdue:
        overdue = line(f"{WARNING_SIGN} {OVERDUE_WORDS}", size="Small", weight="Bolder")
        columns.append(Column(width="auto", items=[overdue]))
    return Container(
        separator=True,
        select_action=execute("open", {"taskId": row.task_id}, f"Open {row.reference}"),
        items=[
            line(f"{row.type_name} · {row.reference}", weight="Bolder"),
            ColumnSet(columns=columns, spacing="None"),
            line(row.address, size="Small", is_subtle=True, spacing="None"),
        ],
    )
