"""The council file as typed values.

The file's structure is checked by these pydantic models (so every structural error
comes with a key path); cross-references are checked afterwards in ``load.py``.
Unknown keys are refused so a typo (``routng:``) is reported, not silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt
from shapely.geometry.base import BaseGeometry

RoutingStrategy = Literal["least-loaded", "round-robin", "queue"]
Role = Literal["manager", "officer", "councillor"]
RaisedBy = Literal["resident", "councillor", "officer", "manager"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CouncilInfo(_Strict):
    name: str = Field(min_length=1)
    timezone: str = "Europe/London"
    tenant_id: str | None = None
    public_url: str | None = None
    # Prefix of human-friendly task references, e.g. RSP-1042.
    reference_prefix: str = Field(default="RSP", pattern=r"^[A-Z][A-Z0-9]{0,7}$")


class Service(_Strict):
    code: str = Field(min_length=1)
    name: str = Field(min_length=1)


class TaskType(_Strict):
    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    service: str
    priority: str


class Team(_Strict):
    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    services: list[str] = Field(min_length=1)
    wards: list[str] = Field(min_length=1)
    routing: RoutingStrategy = "least-loaded"
    managers: list[str] = Field(default_factory=list)
    officers: list[str] = Field(default_factory=list)


class Person(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    role: Role
    aad_object_id: str | None = None
    email: str | None = None
    # Councillors: the wards they represent.
    wards: list[str] = Field(default_factory=list)


class RepeatReports(_Strict):
    within_days: PositiveFloat
    within_metres: PositiveFloat
    at_least: PositiveInt


class RuleWhen(_Strict):
    raised_by: RaisedBy | None = None
    type: str | None = None
    text_matches: str | None = None
    repeat_reports: RepeatReports | None = None


class Rule(_Strict):
    when: RuleWhen
    priority: str | None = None
    at_least: str | None = None


class Duplicates(_Strict):
    within_metres: float = Field(default=25, ge=0)


class NotifyEvent(_Strict):
    email_template: str | None = None
    sms_template: str | None = None


class NotifyConfig(_Strict):
    events: dict[str, NotifyEvent] = Field(default_factory=dict)
    retention_days: PositiveInt = 90


class DigestConfig(_Strict):
    schedule: str = "0 8 * * 1-5"
    escalate_unaccepted_after_minutes: dict[str, PositiveInt] = Field(default_factory=dict)


class CouncilFile(_Strict):
    """Exactly what the YAML holds (``wards`` is still a path here)."""

    council: CouncilInfo
    # Priority name -> hours to complete, most urgent first (dict order is file order).
    priorities: dict[str, PositiveFloat] = Field(min_length=1)
    wards: str
    services: list[Service] = Field(min_length=1)
    task_types: list[TaskType] = Field(min_length=1)
    teams: list[Team] = Field(min_length=1)
    people: list[Person] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    duplicates: Duplicates = Field(default_factory=Duplicates)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)


@dataclass(frozen=True)
class Ward:
    name: str
    # Shapely (multi)polygon in lon/lat (GeoJSON axis order).
    geometry: BaseGeometry


@dataclass(frozen=True)
class Council:
    """A validated council file with its wards loaded, plus lookups the code needs."""

    file: CouncilFile
    wards: tuple[Ward, ...]
    source: Path | None = None

    @property
    def info(self) -> CouncilInfo:
        return self.file.council

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.file.council.timezone)

    @property
    def priority_names(self) -> list[str]:
        """Most urgent first, as the file lists them."""
        return list(self.file.priorities)

    @cached_property
    def _priority_rank(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.file.priorities)}

    def priority_rank(self, name: str) -> int:
        """0 is the most urgent."""
        return self._priority_rank[name]

    def priority_hours(self, name: str) -> float:
        return self.file.priorities[name]

    @cached_property
    def _types(self) -> dict[str, TaskType]:
        return {t.code: t for t in self.file.task_types}

    def task_type(self, code: str) -> TaskType | None:
        return self._types.get(code)

    @cached_property
    def _teams(self) -> dict[str, Team]:
        return {t.code: t for t in self.file.teams}

    def team(self, code: str) -> Team | None:
        return self._teams.get(code)

    def teams_for(self, ward: str, service: str) -> list[Team]:
        """Teams serving this ward and service, in file order."""
        return [t for t in self.file.teams if ward in t.wards and service in t.services]

    @cached_property
    def _people(self) -> dict[str, Person]:
        return {p.id: p for p in self.file.people}

    def person(self, person_id: str) -> Person | None:
        return self._people.get(person_id)

    @cached_property
    def _people_by_aad(self) -> dict[str, Person]:
        return {p.aad_object_id.lower(): p for p in self.file.people if p.aad_object_id}

    def person_by_aad(self, aad_object_id: str) -> Person | None:
        return self._people_by_aad.get(aad_object_id.lower())
