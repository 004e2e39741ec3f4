"""The council file as typed values.

The file's structure is checked by these pydantic models (so every structural error
comes with a key path); cross-references are checked afterwards in ``load.py``.
Unknown keys are refused so a typo (``routng:``) is reported, not silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, PositiveFloat, PositiveInt, model_validator
from pydantic_core import PydanticCustomError
from shapely.geometry.base import BaseGeometry

from responder.config.base import Strict as _Strict
from responder.config.map import MapConfig
from responder.config.open311 import Open311Config
from responder.config.read_keys import ReadKey
from responder.config.sources import Source
from responder.config.subscribers import Subscriber
from responder.domain.vocabulary import (
    DEFAULT_OUTCOMES,
    OUTCOME_CODE_MAX,
    OUTCOME_NAME_MAX,
    OUTCOME_RESIDENT_MAX,
    OutcomeWords,
    resident_words,
)

RoutingStrategy = Literal["least-loaded", "round-robin", "queue"]
Role = Literal["manager", "officer", "councillor"]
RaisedBy = Literal["resident", "councillor", "officer", "manager"]


class CouncilInfo(_Strict):
    name: str = Field(min_length=1)
    timezone: str = "Europe/London"
    tenant_id: str | None = None
    public_url: str | None = None
    # Prefix of human-friendly task references, e.g. RSP-1042.
    reference_prefix: str = Field(default="RSP", pattern=r"^[A-Z][A-Z0-9]{0,7}$")
    # Optional, for the Teams app package and the /privacy and /terms pages:
    # who residents and staff contact about their data (an email address or a web page),
    contact: str | None = Field(default=None, min_length=1, max_length=200)
    # the council's own privacy notice and terms of use (https:// addresses), which the
    # manifest then links to instead of Responder's /privacy and /terms,
    privacy_url: str | None = Field(default=None, min_length=1, max_length=2048)
    terms_url: str | None = Field(default=None, min_length=1, max_length=2048)
    # or the text Responder's /privacy and /terms show (blank lines separate paragraphs),
    privacy_text: str | None = Field(default=None, min_length=1, max_length=20000)
    terms_text: str | None = Field(default=None, min_length=1, max_length=20000)
    # and the app's description in Teams (default: one made from the name and task types).
    app_description: str | None = Field(default=None, min_length=1, max_length=4000)


class Outcome(_Strict):
    """One way a task of the service can end, as the council names it."""

    code: str = Field(min_length=1, max_length=OUTCOME_CODE_MAX)  # stored on the task
    name: str = Field(min_length=1, max_length=OUTCOME_NAME_MAX)  # staff and councillors
    # Residents' words inside a Notify sentence; by default the name, lower-cased.
    resident: str | None = Field(default=None, min_length=1, max_length=OUTCOME_RESIDENT_MAX)

    @property
    def words(self) -> OutcomeWords:
        return OutcomeWords(self.code, self.name, self.resident or resident_words(self.name))


class Service(_Strict):
    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    # How its tasks may be completed; None: vocabulary.DEFAULT_OUTCOMES.
    outcomes: list[Outcome] | None = Field(default=None, min_length=1)


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


# The events Responder sends Notify messages for (notify/personalisation.py's EVENT_FIELDS
# says what each fills in). Any other name under notify.events would never be sent.
NOTIFY_EVENTS = ("received", "completed")


class NotifyEvent(_Strict):
    email_template: str | None = None
    sms_template: str | None = None


class NotifyConfig(_Strict):
    events: dict[str, NotifyEvent] = Field(default_factory=dict)
    retention_days: PositiveInt = 90


class DigestConfig(_Strict):
    schedule: str = "0 8 * * 1-5"
    escalate_unaccepted_after_minutes: dict[str, PositiveInt] = Field(default_factory=dict)


class WardFile(_Strict):
    """Where the ward boundaries are: a GeoJSON file, and the property naming each ward.

    ``wards: wards.geojson`` is short for ``wards: {file: wards.geojson}``; boundary files
    from the ONS name wards in a property such as ``WD23NM``, hence ``name_property``.
    """

    file: str = Field(min_length=1)
    name_property: str = Field(default="name", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"file": value}
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "ward_file",
                "should be the ward file's path (like wards.geojson) or a mapping "
                "with file: and name_property:",
            )
        return value


class CouncilFile(_Strict):
    """Exactly what the YAML holds (``wards`` names the boundary file; it is read later)."""

    council: CouncilInfo
    # Priority name -> hours to complete, most urgent first (dict order is file order).
    priorities: dict[str, PositiveFloat] = Field(min_length=1)
    wards: WardFile
    services: list[Service] = Field(min_length=1)
    task_types: list[TaskType] = Field(min_length=1)
    teams: list[Team] = Field(min_length=1)
    people: list[Person] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    duplicates: Duplicates = Field(default_factory=Duplicates)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    # Reports from FixMyStreet (Open311) and forms packages, by source name (the source's
    # intake key in RESPONDER_INTAKE_KEYS); see config/sources.py.
    sources: dict[str, Source] = Field(default_factory=dict)
    # What the Open311 server says of the council's services; see config/open311.py.
    open311: Open311Config = Field(default_factory=Open311Config)
    # Systems told of every status change by signed webhook; see config/subscribers.py.
    subscribers: list[Subscriber] = Field(default_factory=list)
    # The web map's tiles (through Responder's tile proxy); see config/map.py.
    map: MapConfig = Field(default_factory=MapConfig)
    # Read keys scoped to wards or teams (API, CSV, OData); see config/read_keys.py.
    read_keys: list[ReadKey] = Field(default_factory=list)


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
    def _outcomes(self) -> dict[str, tuple[OutcomeWords, ...]]:
        return {
            s.code: tuple(o.words for o in s.outcomes) if s.outcomes else DEFAULT_OUTCOMES
            for s in self.file.services
        }

    def service_outcomes(self, service: str) -> tuple[OutcomeWords, ...]:
        """How a task of ``service`` may be completed (the defaults if the file names none)."""
        return self._outcomes.get(service, DEFAULT_OUTCOMES)

    def outcomes_for(self, type_code: str) -> tuple[OutcomeWords, ...]:
        """How a task of this type may be completed: its service's outcomes."""
        task_type = self.task_type(type_code)
        return self.service_outcomes(task_type.service) if task_type else DEFAULT_OUTCOMES

    @cached_property
    def _services(self) -> dict[str, Service]:
        return {s.code: s for s in self.file.services}

    def service(self, code: str) -> Service | None:
        return self._services.get(code)

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
