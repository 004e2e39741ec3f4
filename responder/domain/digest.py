"""What a managers' digest says, as plain values (built by ``queries/digest.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from responder.domain.lifecycle import Status


class UnknownTeam(LookupError):
    """The team code is not in the council file."""


@dataclass(frozen=True)
class PriorityLine:
    priority: str  # the council's name for it
    new: int
    completed: int
    open: int
    overdue: int


@dataclass(frozen=True)
class OverdueTask:
    id: int
    reference: str
    type: str  # type code
    priority: str
    status: Status
    ward: str
    address: str | None
    assignee: str | None
    due_at: datetime


@dataclass(frozen=True)
class OfficerLine:
    person_id: str
    open: int  # the team's open tasks they hold
    overdue: int
    on_duty: bool
    in_team: bool  # False: not (or no longer) an officer of the team, but holds its tasks


@dataclass(frozen=True)
class Digest:
    team: str
    team_name: str
    since: datetime
    until: datetime
    now: datetime  # open and overdue figures are as of this moment
    new: int
    completed: int
    completed_in_time: int  # of ``completed``: closed no later than their due time
    cancelled: int
    open: int
    overdue: int
    unassigned: int  # open tasks nobody holds
    by_priority: tuple[PriorityLine, ...]  # the council's order, most urgent first
    overdue_tasks: tuple[OverdueTask, ...]  # most overdue first, up to MAX_OVERDUE
    busiest_types: tuple[tuple[str, int], ...]  # (type code, new tasks), most first
    busiest_wards: tuple[tuple[str, int], ...]  # (ward, new tasks), most first
    officers: tuple[OfficerLine, ...]  # team officers in file order, then other holders
    off_duty: tuple[str, ...]  # person ids of the team's officers who are off duty

    @property
    def in_time_percent(self) -> int | None:
        """Whole percent, rounded down (100 % only when every one was in time)."""
        if not self.completed:
            return None
        return self.completed_in_time * 100 // self.completed
