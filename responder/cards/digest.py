"""The managers' digest card: a team's period at a glance, phone first.

Top to bottom: the team and period, the headline numbers (a FactSet), the most overdue
tasks (each row opens that task's card: Action.Execute "open"), then open work by
priority, the busiest types and wards among the new tasks, and each officer's load with
who is off duty. Each list says how many it leaves out, so the numbers add up:
the officers' loads plus "Waiting for an officer" equal "Open now".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from microsoft_teams.cards import (
    AdaptiveCard,
    CardElement,
    Column,
    ColumnSet,
    Container,
    Fact,
    FactSet,
    TextBlock,
)

from responder.cards.common import (
    WARNING_SIGN,
    duration,
    execute,
    line,
    priority_label,
    to_dict,
    when,
)
from responder.cards.escape import text
from responder.config.model import Council
from responder.domain.digest import Digest


@dataclass(frozen=True)
class OverdueRow:
    task_id: int
    reference: str  # "RSP-1042"
    type_name: str  # "Fly-tipping"
    priority: str  # the council's name for it
    priority_label: str  # "🔴 Urgent priority" (cards.common.priority_label)
    late_text: str  # "2 days 3 h overdue"
    holder: str  # "Bob Warden" or "No officer yet"
    place: str  # "1 High Street, Northgate"


@dataclass(frozen=True)
class PriorityRow:
    name: str
    new: int
    completed: int
    open: int
    overdue: int


@dataclass(frozen=True)
class DigestView:
    """Everything the card shows, in words (see ``digest_view``)."""

    title: str  # "Street Care North — digest"
    period: str  # "Sun 22 Nov, 08:00 to Mon 23 Nov, 08:00"
    as_of: str  # "Mon 23 Nov, 08:00": when the open figures were counted
    facts: tuple[tuple[str, str], ...]  # the headline numbers
    overdue_total: int
    overdue: tuple[OverdueRow, ...]
    by_priority: tuple[PriorityRow, ...]
    new_total: int
    busiest_types: tuple[tuple[str, int], ...]
    busiest_wards: tuple[tuple[str, int], ...]
    officers: tuple[tuple[str, str], ...]  # ("Carol Warden (off duty)", "7 open, 2 overdue")
    off_duty: tuple[str, ...]  # names


def in_time_text(completed_in_time: int, completed: int) -> str:
    """'18 of 20 (90 %)': whole percent, rounded down, so 100 % means every one."""
    if not completed:
        return "none completed"
    return f"{completed_in_time} of {completed} ({completed_in_time * 100 // completed} %)"


def late_text(due_at: datetime, now: datetime) -> str:
    """How long past its due time: '3 days 4 h', '5 h 10 min', '25 min' (+ ' overdue')."""
    return f"{duration(int((now - due_at).total_seconds() // 60))} overdue"


def _capitalised(name: str) -> str:
    return name[:1].upper() + name[1:]


def digest_view(digest: Digest, council: Council) -> DigestView:
    """Names, local times and sentences for ``digest``, from the council file."""
    tz = council.tz
    now_local = digest.now.astimezone(tz)

    def person(person_id: str) -> str:
        found = council.person(person_id)
        return found.name if found else person_id

    def type_name(code: str) -> str:
        found = council.task_type(code)
        return found.name if found else code

    def label(priority: str) -> str:
        count = len(council.priority_names)
        try:
            return priority_label(priority, council.priority_rank(priority), count)
        except KeyError:  # a priority since dropped from the file: the least urgent
            return priority_label(priority, count, count)

    facts: list[tuple[str, str]] = [
        ("New", str(digest.new)),
        ("Completed", str(digest.completed)),
        ("Completed in time", in_time_text(digest.completed_in_time, digest.completed)),
    ]
    if digest.cancelled:
        facts.append(("Cancelled", str(digest.cancelled)))
    facts += [
        ("Open now", str(digest.open)),
        ("Overdue now", str(digest.overdue)),
        ("Waiting for an officer", str(digest.unassigned)),
    ]
    overdue = tuple(
        OverdueRow(
            task_id=t.id,
            reference=t.reference,
            type_name=type_name(t.type),
            priority=t.priority,
            priority_label=label(t.priority),
            late_text=late_text(t.due_at, digest.now),
            holder=person(t.assignee) if t.assignee else "No officer yet",
            place=", ".join(p for p in (t.address, t.ward) if p),
        )
        for t in digest.overdue_tasks
    )
    officers = []
    for o in digest.officers:
        name = person(o.person_id)
        if not o.on_duty:
            name += " (off duty)"
        elif not o.in_team:
            name += " (not in the team)"
        load = f"{o.open} open" + (f", {o.overdue} overdue" if o.overdue else "")
        officers.append((name, load))
    if digest.unassigned:
        officers.append(("Waiting for an officer", f"{digest.unassigned} open"))
    return DigestView(
        title=f"{digest.team_name} — digest",
        period=(
            f"{when(digest.since.astimezone(tz), now_local)} to "
            f"{when(digest.until.astimezone(tz), now_local)}"
        ),
        as_of=when(now_local, now_local),
        facts=tuple(facts),
        overdue_total=digest.overdue,
        overdue=overdue,
        by_priority=tuple(
            PriorityRow(_capitalised(p.priority), p.new, p.completed, p.open, p.overdue)
            for p in digest.by_priority
        ),
        new_total=digest.new,
        busiest_types=tuple((type_name(code), n) for code, n in digest.busiest_types),
        busiest_wards=digest.busiest_wards,
        officers=tuple(officers),
        off_duty=tuple(person(p) for p in digest.off_duty),
    )


def digest_card(view: DigestView) -> dict[str, Any]:
    """The digest as an Adaptive Card 1.5 (plain JSON-ready data)."""
    body: list[CardElement] = [
        line(view.title, size="Medium", weight="Bolder", style="heading"),
        line(view.period, is_subtle=True, size="Small", spacing="None"),
        _facts(view.facts),
        line(f"Open and overdue as of {view.as_of}.", is_subtle=True, size="Small"),
    ]
    if view.overdue_total:
        heading = f"Overdue: {view.overdue_total}, most overdue first"
        body.append(_heading(f"{WARNING_SIGN} {heading}"))
        body += [_overdue_row(row) for row in view.overdue]
        if view.overdue_total > len(view.overdue):
            rest = f"…and {view.overdue_total - len(view.overdue)} more overdue."
            body.append(line(rest, is_subtle=True, size="Small"))
    if view.by_priority:
        body.append(_heading("By priority"))
        body.append(_priority_table(view.by_priority))
    if view.new_total:
        body.append(_heading("Busiest types (new tasks)"))
        body.append(_counts(view.busiest_types, view.new_total, "Other types"))
        body.append(_heading("Busiest wards (new tasks)"))
        body.append(_counts(view.busiest_wards, view.new_total, "Other wards"))
    if view.officers:
        body.append(_heading("Officers (open tasks)"))
        body.append(_facts(tuple(view.officers)))
    if view.off_duty:
        body.append(line(f"Off duty: {', '.join(view.off_duty)}.", size="Small"))
    return to_dict(AdaptiveCard(body=body))


def _heading(words: str, **style: Any) -> TextBlock:
    return line(words, weight="Bolder", separator=True, **style)


def _facts(pairs: Sequence[tuple[str, str]]) -> FactSet:
    return FactSet(facts=[Fact(title=text(title), value=text(value)) for title, value in pairs])


def _counts(pairs: Sequence[tuple[str, int]], total: int, others: str) -> FactSet:
    rest = total - sum(n for _, n in pairs)
    shown = [(name, str(n)) for name, n in pairs]
    if rest > 0:
        shown.append((others, str(rest)))
    return _facts(shown)


def _overdue_row(row: OverdueRow) -> Container:
    """Type · reference / priority · 2 days overdue / holder · place; tap to open."""
    return Container(
        separator=True,
        select_action=execute("open", {"taskId": row.task_id}, f"Open {row.reference}"),
        items=[
            line(f"{row.type_name} · {row.reference}", weight="Bolder"),
            ColumnSet(
                spacing="None",
                columns=[
                    Column(
                        width="auto",
                        items=[line(row.priority_label, size="Small", weight="Bolder")],
                    ),
                    Column(
                        width="stretch",
                        items=[line(row.late_text, size="Small", weight="Bolder")],
                    ),
                ],
            ),
            line(f"{row.holder} · {row.place}", size="Small", is_subtle=True, spacing="None"),
        ],
    )


def _cell(value: str, *, header: bool = False, first: bool = False) -> TextBlock:
    # One line per cell (no wrap) so the stacked columns stay aligned row by row.
    return TextBlock(
        text=text(value),
        wrap=False,
        spacing="Small",
        weight="Bolder" if header else None,
        is_subtle=header or None,
        size="Small" if header else None,
        horizontal_alignment=None if first else "Right",
    )


def _priority_table(rows: Sequence[PriorityRow]) -> ColumnSet:
    """Priority | New | Done | Open | Overdue: a column of cells each, read across."""
    headers = ("Priority", "New", "Done", "Open", "Overdue")
    cells = [
        [r.name for r in rows],
        [str(r.new) for r in rows],
        [str(r.completed) for r in rows],
        [str(r.open) for r in rows],
        [str(r.overdue) for r in rows],
    ]
    columns = []
    for i, (header, values) in enumerate(zip(headers, cells, strict=True)):
        first = i == 0
        items: list[CardElement] = [_cell(header, header=True, first=first)]
        items += [_cell(v, first=first) for v in values]
        columns.append(Column(width="stretch" if first else "auto", items=items))
    return ColumnSet(columns=columns)
