"""Load the council file and check it thoroughly.

Every problem is one line, ``<key path>: <what is wrong> <offending value>``, and all of
them are collected, so whoever edits the file can fix it in one pass instead of meeting
the errors one run at a time.

Order of work: read the YAML (refusing duplicate keys), check the structure with the
pydantic models in ``model.py``, load the ward boundaries, then check cross-references.
The cross-reference checks also run when the structure is broken, on the sections and
list items that did pass, so one typo does not hide every other problem.
"""

from __future__ import annotations

import contextlib
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import BaseModel, TypeAdapter, ValidationError

from responder.config.model import (
    NOTIFY_EVENTS,
    Council,
    CouncilFile,
    CouncilInfo,
    DigestConfig,
    NotifyConfig,
    Outcome,
    Person,
    Rule,
    RuleWhen,
    Service,
    TaskType,
    Team,
    Ward,
    WardFile,
)
from responder.config.open311 import Open311Config, check_open311
from responder.config.sources import Source, check_sources
from responder.config.subscribers import Subscriber, check_subscribers
from responder.config.wards import load_wards
from responder.config.wording import duplicates, hint, nearest, shown
from responder.domain.vocabulary import DEFAULT_OUTCOMES

M = TypeVar("M", bound=BaseModel)

_A_ROLE = {"manager": "a manager", "officer": "an officer", "councillor": "a councillor"}
# Outcome codes are stored on tasks and sent back by cards: plain, lower-case words.
_OUTCOME_CODE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


class ConfigError(Exception):
    """The council file is invalid; .problems lists every problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def load_council(path: str | Path) -> Council:
    """Load and check the council file, or raise ConfigError listing every problem."""
    council, problems = validate_council_file(path)
    if council is None:
        raise ConfigError(problems)
    return council


def validate_council_file(path: str | Path) -> tuple[Council | None, list[str]]:
    """Load and check everything; return (council, []) or (None, problems).

    Never raises for bad content: an unreadable or broken file is a problem line too.
    """
    source = Path(path)
    data, problems = _read_yaml(source)
    if not isinstance(data, dict):
        return None, problems

    council_file, structural = _validate_structure(data)
    problems += structural
    parts = _salvage(data)

    wards: list[Ward] = []
    ward_names: list[str] | None = None  # None: unknown, so ward references go unchecked
    if parts.wards is not None:
        at = "wards.file" if isinstance(data.get("wards"), dict) else "wards"
        wards, ward_names, ward_problems = load_wards(parts.wards, source.parent, at)
        problems += ward_problems

    problems += _cross_checks(parts, _known_names(data, ward_names))
    if problems or council_file is None:
        return None, problems
    return Council(file=council_file, wards=tuple(wards), source=source.resolve()), []


# --- Reading the YAML ----------------------------------------------------------------


def _read_yaml(path: Path) -> tuple[Any, list[str]]:
    """The parsed document plus problems; the document is None when it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"{path}: file not found"]
    except UnicodeDecodeError:
        return None, [f"{path}: not UTF-8 text"]
    except OSError as exc:
        return None, [f"{path}: cannot read the file ({exc.strerror or exc})"]

    # Compose the node tree first: duplicate keys are only visible there, because
    # PyYAML silently keeps the last value when it builds the dict.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        problems = [] if node is None else list(_duplicate_keys(node, "", set()))
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        return None, [f"{path}: not valid YAML{_yaml_where(exc)}"]
    finally:
        loader.dispose()

    if data is None:
        return None, [f"{path}: the file is empty"]
    if not isinstance(data, dict):
        expected = "the top level should be a mapping (council:, priorities:, ...)"
        return None, [f"{path}: {expected}, got {shown(data)}"]
    return data, problems


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        problem = getattr(exc, "problem", None) or "syntax error"
        return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return ": " + " ".join(str(exc).split())


def _duplicate_keys(node: yaml.Node, path: str, seen: set[int]) -> Iterator[str]:
    if id(node) in seen:  # an alias to a node already walked (or a recursive one)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            child, line = _join(path, key), key_node.start_mark.line + 1
            if key in first_line:
                first = first_line[key]
                yield f"{child}: duplicate key {key!r} at line {line} (first at line {first})"
            else:
                first_line[key] = line
            yield from _duplicate_keys(value_node, child, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]", seen)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


# --- Structure (pydantic) ------------------------------------------------------------


def _validate_structure(data: dict[str, Any]) -> tuple[CouncilFile | None, list[str]]:
    try:
        return CouncilFile.model_validate(data), []
    except ValidationError as exc:
        return None, [_describe(error) for error in exc.errors(include_url=False)]


def _describe(error: Any) -> str:
    """One pydantic error as a problem line, in words a council admin can act on."""
    loc = error["loc"]
    path = _key_path(loc) or "(top level)"
    kind = error["type"]
    if kind == "missing":
        return f"{path}: required but missing"
    if kind == "extra_forbidden":
        return f"{path}: unknown key{_key_hint(loc)}"
    if kind in ("model_type", "dict_type"):
        message = "should be a mapping (key: value)"
    else:
        # "Input should be ..." / "List should have ..." -> "should be ..." after the path.
        message = re.sub(r"^\w+ should", "should", error["msg"]).replace(" after validation", "")
    if kind in ("too_short", "too_long"):  # the message already gives the count
        return f"{path}: {message}"
    if loc[-1:] == ("[key]",):  # the mapping key itself is wrong, e.g. a number
        message = f"the key {message}"
    value = error.get("input")
    if kind == "literal_error" and isinstance(value, str):  # e.g. routing: least-loded
        close = nearest(value, _choices_at(loc))
        if close is not None:
            return f"{path}: {message}, got {value!r} (did you mean {close!r}?)"
    return f"{path}: {message}, got {shown(value)}"


def _key_path(loc: tuple[str | int, ...]) -> str:
    path = ""
    for i, part in enumerate(loc):
        if part == "[key]":  # pydantic's marker: the mapping key before it is itself wrong
            continue
        is_dict_key = loc[i + 1 : i + 2] == ("[key]",)
        path = f"{path}[{part}]" if isinstance(part, int) and not is_dict_key else _join(path, part)
    return path


def _key_hint(loc: tuple[str | int, ...]) -> str:
    """Suggest the key that was probably meant (``routng`` -> ``routing``)."""
    known = _keys_at(loc[:-1])
    return hint(str(loc[-1]), known) if known else ""


def _keys_at(loc: Iterable[str | int]) -> list[str]:
    """The keys allowed at ``loc``, found by following the model's type annotations."""
    annotation = _annotation_at(loc)
    return list(annotation.model_fields) if _is_model(annotation) else []


def _choices_at(loc: Iterable[str | int]) -> list[str]:
    """The words a Literal field at ``loc`` allows (``routing``: least-loaded, ...)."""
    annotation = _annotation_at(loc)
    is_union = typing.get_origin(annotation) in (types.UnionType, typing.Union)
    options = typing.get_args(annotation) if is_union else (annotation,)
    return [
        choice
        for option in options
        if typing.get_origin(option) is typing.Literal
        for choice in typing.get_args(option)
        if isinstance(choice, str)
    ]


def _annotation_at(loc: Iterable[str | int]) -> Any:
    annotation: Any = CouncilFile
    for part in loc:
        annotation = _step_into(annotation, part)
        if annotation is None:
            return None
    return annotation


def _step_into(annotation: Any, part: str | int) -> Any:
    is_union = typing.get_origin(annotation) in (types.UnionType, typing.Union)
    for option in typing.get_args(annotation) if is_union else (annotation,):
        origin = typing.get_origin(option)
        if _is_model(option) and part in option.model_fields:
            return option.model_fields[part].annotation
        if origin is list and isinstance(part, int):
            return typing.get_args(option)[0]
        if origin is dict and isinstance(part, str):
            return typing.get_args(option)[1]
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@dataclass
class _Parts:
    """The sections and list items that passed the structural check on their own.

    List items keep their index so problem paths still point at the right entry.
    """

    council: CouncilInfo | None
    priorities: dict[str, float] | None
    wards: WardFile | None
    services: list[tuple[int, Service]]
    task_types: list[tuple[int, TaskType]]
    teams: list[tuple[int, Team]]
    people: list[tuple[int, Person]]
    rules: list[tuple[int, Rule]]
    notify: NotifyConfig | None
    digest: DigestConfig | None
    sources: dict[str, Source] | None
    open311: Open311Config | None
    subscribers: list[Subscriber] | None
    # (services[i].outcomes key path, the outcomes there that passed on their own)
    outcomes: list[tuple[str, list[tuple[int, Outcome]]]]
    # Only when every team passed can "no team serves X" be trusted.
    teams_complete: bool


def _salvage(data: dict[str, Any]) -> _Parts:
    teams, teams_complete = _valid_items(data, "teams", Team)
    return _Parts(
        council=_valid_section(data, "council"),
        priorities=_valid_section(data, "priorities"),
        wards=_valid_section(data, "wards"),
        services=_valid_items(data, "services", Service)[0],
        task_types=_valid_items(data, "task_types", TaskType)[0],
        teams=teams,
        people=_valid_items(data, "people", Person)[0],
        rules=_valid_items(data, "rules", Rule)[0],
        notify=_valid_section(data, "notify"),
        digest=_valid_section(data, "digest"),
        sources=_valid_section(data, "sources"),
        open311=_valid_section(data, "open311"),
        subscribers=_valid_section(data, "subscribers"),
        outcomes=_valid_outcomes(data),
        teams_complete=teams_complete,
    )


def _valid_outcomes(data: dict[str, Any]) -> list[tuple[str, list[tuple[int, Outcome]]]]:
    """Each service's outcomes that validate, even where a sibling (or the service) did not."""
    services = data.get("services")
    found = []
    for i, service in enumerate(services if isinstance(services, list) else []):
        if isinstance(service, dict):
            at = f"services[{i}].outcomes"
            valid, _ = _valid_items(service, "outcomes", Outcome)
            found.append((at, valid))
    return found


def _valid_section(data: dict[str, Any], name: str) -> Any:
    """The section validated on its own (or its default), or None if it is broken."""
    field = CouncilFile.model_fields[name]
    if name not in data:
        return None if field.is_required() else field.get_default(call_default_factory=True)
    assert field.annotation is not None  # every CouncilFile field is annotated
    try:
        return TypeAdapter(field.annotation).validate_python(data[name])
    except ValidationError:
        return None


def _valid_items(
    data: dict[str, Any], name: str, model: type[M]
) -> tuple[list[tuple[int, M]], bool]:
    """(index, item) for each list item that validates, and whether all of them did."""
    raw = data.get(name, [])
    if not isinstance(raw, list):
        return [], False
    valid = []
    for i, item in enumerate(raw):
        with contextlib.suppress(ValidationError):  # reported by the whole-file check
            valid.append((i, model.model_validate(item)))
    return valid, name in data and len(valid) == len(raw)


# --- Cross-reference checks ----------------------------------------------------------


@dataclass
class _Known:
    """Names other sections may refer to; None when a section is too broken to tell."""

    priorities: list[str] | None
    services: list[str] | None
    task_types: list[str] | None
    people: list[str] | None
    wards: list[str] | None


def _known_names(data: dict[str, Any], ward_names: list[str] | None) -> _Known:
    # Taken from the raw data, so an item that failed the structural check still counts
    # as known: a typo in one service must not make every reference to it "unknown".
    priorities = data.get("priorities")
    return _Known(
        priorities=[k for k in priorities if isinstance(k, str)]
        if isinstance(priorities, dict)
        else None,
        services=_raw_names(data.get("services"), "code"),
        task_types=_raw_names(data.get("task_types"), "code"),
        people=_raw_names(data.get("people", []), "id"),
        wards=ward_names,
    )


def _raw_names(items: Any, key: str) -> list[str] | None:
    if not isinstance(items, list):
        return None
    names = (item.get(key) for item in items if isinstance(item, dict))
    return list(dict.fromkeys(name for name in names if isinstance(name, str)))


def _cross_checks(parts: _Parts, known: _Known) -> list[str]:
    return [
        *_check_council(parts.council),
        *_check_priorities(parts.priorities),
        *_check_services(parts),
        *_check_task_types(parts, known),
        *_check_teams(parts, known),
        *_check_people(parts, known),
        *_check_rules(parts, known),
        *_check_notify(parts.notify),
        *_check_digest(parts.digest, known),
        *_check_coverage(parts, known),
        *check_sources(parts.sources, known.task_types),
        *check_open311(parts.open311, known.task_types, _outcome_codes(parts)),
        *check_subscribers(parts.subscribers),
    ]


def _outcome_codes(parts: _Parts) -> list[str]:
    """Every outcome code a task can end with (the defaults' too: a service may use them)."""
    codes = [o.code for o in DEFAULT_OUTCOMES]
    codes += [o.code for _, outcomes in parts.outcomes for _, o in outcomes]
    return list(dict.fromkeys(codes))


def _unknown(
    path: str, what: str, value: str, known: list[str] | None, list_known: bool = False
) -> list[str]:
    """A problem if ``value`` is not among ``known``, suggesting the name probably meant;
    short lists are spelled out when nothing is close."""
    if known is None or value in known:
        return []
    return [f"{path}: unknown {what} {value!r}{hint(value, known, list_known)}"]


def _check_council(info: CouncilInfo | None) -> Iterator[str]:
    if info is None:
        return
    try:
        ZoneInfo(info.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: e.g. "Europe" is a folder
        yield (
            f"council.timezone: unknown time zone {info.timezone!r} "
            "(use an IANA name such as 'Europe/London')"
        )
    if info.public_url is not None and not _acceptable_url(info.public_url):
        yield (
            "council.public_url: should start with https:// (http:// only for localhost "
            f"or 127.0.0.1), got {info.public_url!r}"
        )


def _acceptable_url(url: str) -> bool:
    # Links in cards and messages go to residents and staff: plain http only for local use.
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")


def _check_priorities(priorities: dict[str, float] | None) -> Iterator[str]:
    # The file lists priorities most urgent first; rank comes from that order, so a
    # slower target listed before a quicker one would rank the wrong way round.
    slowest: tuple[str, float] | None = None
    for name, hours in (priorities or {}).items():
        if slowest is not None and hours < slowest[1]:
            yield (
                f"priorities.{name}: {hours:g} hours is quicker than {slowest[0]!r} "
                f"({slowest[1]:g} hours) listed before it; list priorities most urgent first"
            )
        else:
            slowest = (name, hours)


def _check_services(parts: _Parts) -> Iterator[str]:
    codes = ((f"services[{i}].code", service.code) for i, service in parts.services)
    yield from duplicates(codes, "service code")
    for at, outcomes in parts.outcomes:
        for j, outcome in outcomes:
            if not _OUTCOME_CODE.fullmatch(outcome.code):
                yield (
                    f"{at}[{j}].code: use lower-case letters, digits and hyphens "
                    f"(like 'passed-to-highways'), got {outcome.code!r}"
                )
            for key in ("name", "resident"):
                value = getattr(outcome, key)
                if value is not None and (not value.strip() or _CONTROL.search(value)):
                    yield f"{at}[{j}].{key}: should be words on one line, got {value!r}"
        yield from duplicates(((f"{at}[{j}].code", o.code) for j, o in outcomes), "outcome code")
        # Two choices reading the same on the card could not be told apart.
        yield from duplicates(
            ((f"{at}[{j}].name", o.name) for j, o in outcomes), "outcome name", casefold=True
        )


def _check_task_types(parts: _Parts, known: _Known) -> Iterator[str]:
    yield from duplicates(
        ((f"task_types[{i}].code", t.code) for i, t in parts.task_types), "task type code"
    )
    for i, task_type in parts.task_types:
        at = f"task_types[{i}]"
        yield from _unknown(f"{at}.service", "service", task_type.service, known.services, True)
        yield from _unknown(
            f"{at}.priority", "priority", task_type.priority, known.priorities, True
        )


def _check_teams(parts: _Parts, known: _Known) -> Iterator[str]:
    yield from duplicates(((f"teams[{i}].code", t.code) for i, t in parts.teams), "team code")
    roles = {person.id: person.role for _, person in parts.people}
    for i, team in parts.teams:
        at = f"teams[{i}]"
        for j, service in enumerate(team.services):
            yield from _unknown(f"{at}.services[{j}]", "service", service, known.services, True)
        for j, ward in enumerate(team.wards):
            yield from _unknown(f"{at}.wards[{j}]", "ward", ward, known.wards)
        for role, members in (("manager", team.managers), ("officer", team.officers)):
            for j, person_id in enumerate(members):
                path = f"{at}.{role}s[{j}]"
                unknown = _unknown(path, "person", person_id, known.people)
                yield from unknown
                actual = roles.get(person_id)
                if not unknown and actual is not None and actual != role:
                    yield f"{path}: {person_id!r} is {_A_ROLE[actual]}, not {_A_ROLE[role]}"
        if not team.officers:
            yield f"{at}.officers: a team needs at least one officer"


def _check_people(parts: _Parts, known: _Known) -> Iterator[str]:
    yield from duplicates(((f"people[{i}].id", p.id) for i, p in parts.people), "person id")
    # Entra object ids are GUIDs, whose case varies between sources.
    yield from duplicates(
        (
            (f"people[{i}].aad_object_id", p.aad_object_id)
            for i, p in parts.people
            if p.aad_object_id is not None
        ),
        "aad_object_id",
        casefold=True,
    )
    for i, person in parts.people:
        if person.role != "councillor":
            if person.wards:
                yield (
                    f"people[{i}].wards: only councillors have wards; "
                    f"{person.id!r} is {_A_ROLE[person.role]}"
                )
            continue
        for j, ward in enumerate(person.wards):
            yield from _unknown(f"people[{i}].wards[{j}]", "ward", ward, known.wards)


def _check_rules(parts: _Parts, known: _Known) -> Iterator[str]:
    conditions = list(RuleWhen.model_fields)
    for i, rule in parts.rules:
        at, when = f"rules[{i}]", rule.when
        if all(getattr(when, name) is None for name in conditions):
            yield f"{at}.when: a rule needs at least one condition ({', '.join(conditions)})"
        if when.type is not None:
            yield from _unknown(f"{at}.when.type", "task type", when.type, known.task_types)
        if when.text_matches is not None:
            try:
                re.compile(when.text_matches)
            except re.error as exc:
                pattern = when.text_matches
                yield f"{at}.when.text_matches: invalid regular expression ({exc}) {pattern!r}"
        pairs = (("priority", rule.priority), ("at_least", rule.at_least))
        actions = {key: value for key, value in pairs if value is not None}
        if not actions:
            yield f"{at}: a rule needs priority or at_least"
        elif len(actions) > 1:
            yield f"{at}: set priority or at_least, not both"
        for key, value in actions.items():
            yield from _unknown(f"{at}.{key}", "priority", value, known.priorities, True)


def _check_notify(notify: NotifyConfig | None) -> Iterator[str]:
    known = list(NOTIFY_EVENTS)
    for name, event in (notify.events if notify else {}).items():
        at = f"notify.events.{name}"
        if name not in known:  # a misspelt event is never sent: its residents hear nothing
            yield f"{at}: unknown Notify event {name!r}{hint(name, known)}"
            continue
        if event.email_template is None and event.sms_template is None:
            yield f"{at}: set email_template or sms_template (or both)"
        for key in ("email_template", "sms_template"):
            value = getattr(event, key)
            if value is not None and not _UUID.fullmatch(value):
                yield f"{at}.{key}: should be a GOV.UK Notify template id (a UUID), got {value!r}"


def _check_digest(digest: DigestConfig | None, known: _Known) -> Iterator[str]:
    if digest is None:
        return
    if not _valid_cron(digest.schedule):
        yield (
            f"digest.schedule: invalid cron expression {digest.schedule!r} "
            f"({_cron_fault(digest.schedule)}); {_CRON_HELP}"
        )
    for name in digest.escalate_unaccepted_after_minutes:
        path = f"digest.escalate_unaccepted_after_minutes.{name}"
        yield from _unknown(path, "priority", name, known.priorities, True)


_CRON_HELP = (
    "a cron expression has five fields, minute hour day-of-month month day-of-week, "
    "e.g. '0 7 * * 1-5' for 07:00 on weekdays"
)
_CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-6 from Sunday, or sun-sat"),
)


def _valid_cron(expression: str) -> bool:
    # croniter also takes a sixth field, for seconds: '0 8 * * 1-5 *' would send a digest
    # every second from 08:00:00 to 08:00:59. Five fields, or a nickname such as @daily.
    fields = expression.split()
    standard = len(fields) == len(_CRON_FIELDS) or expression.strip().startswith("@")
    return standard and croniter.is_valid(expression)


def _cron_fault(expression: str) -> str:
    """Which part of a cron expression croniter refused, in words."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        return f"it has {len(fields)} field{'' if len(fields) == 1 else 's'}"
    for i, (name, allowed) in enumerate(_CRON_FIELDS):
        alone = " ".join(field if j == i else "*" for j, field in enumerate(fields))
        if not croniter.is_valid(alone):
            return f"the {name} field {fields[i]!r} should be {allowed}"
    return "the fields do not make a valid schedule together"


def _check_coverage(parts: _Parts, known: _Known) -> Iterator[str]:
    # Every report has a type and lands in a ward; if no team serves that pair the task
    # could not be routed to anyone, so the file must cover every pair up front.
    if known.wards is None or not parts.teams_complete:
        return
    served = {(w, s) for _, team in parts.teams for w in team.wards for s in team.services}
    for i, task_type in parts.task_types:
        if known.services is not None and task_type.service not in known.services:
            continue  # already reported as an unknown service
        for ward in known.wards:
            if (ward, task_type.service) not in served:
                yield f"task_types[{i}]: no team serves {task_type.service!r} in ward {ward!r}"
