"""Who may see a task: the one rule that every path showing a task or a case asks.

Card clicks (every verb, ``refresh`` included), chat questions, the case card, follows,
photos, the task API, and whatever shows tasks later (web pages, exports) all decide
through a ``Scope``: as a pure test over a task's facts (``may_see``) or, for reads, as
the same rule in SQL (``queries/scope.py``), so a reply is built only from what the
viewer may see.

- Officers and managers see their teams' tasks, and any task assigned to them.
- Councillors see their wards' cases, and any case they follow (raising a case follows it).
- A whole-council key (intake, a whole-council read key) sees everything.
- A read key scoped in the council file (``Scope(person_id=None, wards=..., teams=...)``)
  sees exactly its wards' and teams' tasks: it follows nothing and is assigned nothing.
- Nobody else sees anything: a person not in the council file has no scope at all.

Someone not allowed to see a task is told exactly what they would be told if it did not
exist (``NOT_VISIBLE``), so ids cannot be walked to learn which tasks exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.config.model import Council, Person

# The largest id a task can have: both databases store ids as signed 64-bit integers, and
# a larger value in a query overflows the driver instead of matching nothing.
MAX_TASK_ID = 2**63 - 1

# The one refusal, the same for "no such task" and "not yours to see".
NOT_VISIBLE = "I can't find that task among the ones you can see."


def task_id_of(value: object) -> int | None:
    """``value`` as a task id if it could be one (a JSON integer in range), else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_TASK_ID else None


@dataclass(frozen=True)
class Scope:
    """What one person (or key) may see, worked out once from the council file."""

    person_id: str | None
    wards: frozenset[str] = frozenset()  # wards a councillor represents
    teams: frozenset[str] = frozenset()  # teams an officer works in or a manager runs
    everything: bool = False  # a whole-council key

    def may_see(self, ward: str, team: str, assignee: str | None, following: bool) -> bool:
        """The rule over plain values; ``queries.scope.visible`` is the same rule as SQL."""
        if self.everything:
            return True
        if self.person_id is None:  # a read key scoped to wards or teams (or nobody)
            return ward in self.wards or team in self.teams
        return (
            following
            or ward in self.wards
            or team in self.teams
            or (assignee is not None and assignee == self.person_id)
        )

    def sees_internals(self, team: str, assignee: str | None) -> bool:
        """Whether the task card (officers' names, internal history) is theirs to see, rather
        than the public case card: the team's own people and the assignee only."""
        if self.everything:
            return True
        return team in self.teams or (assignee is not None and assignee == self.person_id)

    def ward_allowed(self, council: Council, ward: str) -> bool:
        """Whether a ward summary may be shown at all (own wards, or the teams' wards)."""
        if self.everything:
            return True
        teams = (council.team(code) for code in self.teams)
        return ward in self.wards or any(team and ward in team.wards for team in teams)


# Intake keys (and, later, whole-council read keys) see every task.
COUNCIL_WIDE = Scope(person_id=None, everything=True)
# Someone the council file does not know.
NOBODY = Scope(person_id=None)


def scope_of(council: Council, person: Person | None) -> Scope:
    if person is None:
        return NOBODY
    teams = frozenset(
        t.code for t in council.file.teams if person.id in t.officers or person.id in t.managers
    )
    wards = frozenset(person.wards) if person.role == "councillor" else frozenset()
    return Scope(person.id, wards, teams)
