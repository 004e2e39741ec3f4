"""Where a report goes: its ward, the team serving it, and (maybe) an officer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from responder.config.model import Council, Team, Ward


class WardLocator:
    """Point-in-ward lookups for one council; build once, reuse for every report."""

    def __init__(self, wards: Sequence[Ward]) -> None:
        self._names = [w.name for w in wards]
        # Prepared shapes tested all at once: a council has tens of wards, and one
        # vectorised call (~3 us) beats building a Point for a tree query (~30 us).
        self._shapes = np.array([w.geometry for w in wards], dtype=object)
        shapely.prepare(self._shapes)

    def locate(self, lat: float, lon: float) -> str | None:
        """The ward containing the point, or None. Boundary points count as inside;
        on an edge shared by wards, the first ward in file order wins."""
        if not len(self._shapes):
            return None
        hits = np.flatnonzero(shapely.intersects_xy(self._shapes, lon, lat))  # lon, lat
        return self._names[int(hits[0])] if len(hits) else None


@dataclass(frozen=True)
class OfficerLoad:
    person_id: str
    on_duty: bool
    open_tasks: int


@dataclass(frozen=True)
class RoutingDecision:
    ward: str
    team: str
    strategy: str
    # None: offered to the whole team (queue strategy, or nobody available).
    assignee: str | None
    reasons: tuple[str, ...]


class RoutingError(Exception):
    """A report that cannot be routed; ``field`` names the input to correct."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _service(council: Council, type_code: str) -> str:
    task_type = council.task_type(type_code)
    if task_type is None:
        raise RoutingError("type", f"'{type_code}' is not one of the council's task types")
    return task_type.service


def choose_team(council: Council, ward: str, type_code: str) -> Team:
    """The first team in file order serving ``ward`` and the type's service."""
    service = _service(council, type_code)
    teams = council.teams_for(ward, service)
    if not teams:
        raise RoutingError("type", f"no team serves '{service}' in ward '{ward}'")
    return teams[0]


def _tasks(n: int) -> str:
    return f"{n} open task" if n == 1 else f"{n} open tasks"


def _available(
    team: Team, loads: Sequence[OfficerLoad], exclude: frozenset[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """Open-task counts of officers who can take work, and why the others cannot."""
    by_id = {load.person_id: load for load in loads}
    free: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for officer in team.officers:
        # Officers missing from ``loads`` are on duty with nothing open.
        load = by_id.get(officer, OfficerLoad(officer, True, 0))
        if officer in exclude:
            skipped[officer] = f"{officer} is excluded from this task"
        elif not load.on_duty:
            skipped[officer] = f"{officer} is off duty"
        else:
            free[officer] = load.open_tasks
    return free, skipped


def _nobody(team: Team, exclude: frozenset[str]) -> str:
    if not team.officers:
        who = f"team {team.code} has no officers"
    elif exclude.intersection(team.officers):
        who = f"no officer of {team.code} is available"
    else:
        who = f"no officer of {team.code} is on duty"
    return f"{who}; waiting in the team queue"


def _least_loaded(free: dict[str, int]) -> tuple[str, str]:
    # min() keeps the first of equals, and ``free`` is in team.officers order.
    chosen = min(free, key=lambda o: free[o])
    fewest = _tasks(free[chosen])
    others = {o: n for o, n in free.items() if o != chosen}
    if not others:
        return chosen, f"least-loaded: {chosen} has {fewest}, the only officer available"
    listed = ", ".join(f"{o} {n}" for o, n in others.items())
    tied = "; tied, so the first listed" if free[chosen] in others.values() else ""
    return chosen, f"least-loaded: {chosen} has {fewest}, the fewest ({listed}){tied}"


def _round_robin(
    team: Team, free: dict[str, int], skipped: dict[str, str], last: str | None
) -> tuple[str | None, list[str]]:
    officers = team.officers
    start = officers.index(last) + 1 if last in officers else 0
    passed: list[str] = []
    for step in range(len(officers)):
        officer = officers[(start + step) % len(officers)]
        if officer in free:
            if last not in officers:
                why = "is first in the rota"
            elif officer == last:
                why = "gets it again, as nobody else is available"
            else:
                why = f"is next after {last}"
            return officer, [*passed, f"round-robin: {officer} {why}"]
        passed.append(skipped[officer])
    return None, passed


def choose_officer(
    team: Team,
    loads: Sequence[OfficerLoad],
    last_assigned: str | None,
    exclude: frozenset[str] = frozenset(),
) -> tuple[str | None, tuple[str, ...]]:
    """The officer to assign under the team's strategy (None: leave it to the team).

    ``exclude`` holds officers who must not get it this time, e.g. the one who just
    handed it back; off-duty officers are skipped too.
    """
    if team.routing == "queue":
        return None, (f"{team.code} works from a queue: the first officer to accept takes it",)
    free, skipped = _available(team, loads, exclude)
    if not free:
        return None, (*skipped.values(), _nobody(team, exclude))
    if team.routing == "round-robin":
        chosen, reasons = _round_robin(team, free, skipped, last_assigned)
        return chosen, tuple(reasons)
    chosen, reason = _least_loaded(free)
    return chosen, (*skipped.values(), reason)


def route(
    council: Council,
    locator: WardLocator,
    type_code: str,
    lat: float,
    lon: float,
    loads: Sequence[OfficerLoad],
    last_assigned: str | None,
    exclude: frozenset[str] = frozenset(),
) -> RoutingDecision:
    """Locate the report, pick the team, then the officer; RoutingError if impossible."""
    ward = locator.locate(lat, lon)
    if ward is None:
        raise RoutingError(
            "location", f"the point {lat}, {lon} is not inside any of the council's wards"
        )
    service = _service(council, type_code)
    team = choose_team(council, ward, type_code)
    assignee, officer_reasons = choose_officer(team, loads, last_assigned, exclude)
    return RoutingDecision(
        ward=ward,
        team=team.code,
        strategy=team.routing,
        assignee=assignee,
        reasons=(
            f"in ward {ward}",
            f"team {team.code} serves {service} in {ward}",
            *officer_reasons,
        ),
    )
