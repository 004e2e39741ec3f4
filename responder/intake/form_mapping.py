"""A forms package's payload, read through a mapping, as the JSON API's intake body.

Pure: a payload (a JSON object, or a form post's fields as a flat dict) and a resolved
mapping (``config.forms.resolve``) in; an ``IntakeBody``-shaped dict out, with where each
of its fields came from, or the problems, each naming the form's own path. The dict is then
validated by ``intake.schema.IntakeBody`` exactly as a JSON API report is, so a form's
report is held to the same rules; ``translate`` names the form's path in those problems too.

Values are not echoed back (some carry personal data), except a category answer that is not
mapped: that one the council needs to see to add it to ``types:``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jmespath.exceptions import JMESPathError

from responder.config.forms import Resolved, compiled, fold
from responder.domain.grid import GridError, to_lat_lon

Problem = dict[str, str]

MAX_ATTRIBUTE = 1000  # characters of one attribute's value
MAX_SHOWN = 64  # characters of a category answer quoted in a problem

# How a list of answers is joined into one text, per field.
_JOIN = {"name": " ", "address": ", ", "description": "\n\n"}
_YES = {"yes", "y", "true", "1", "on", "ok", "please"}
_NO = {"no", "n", "false", "0", "off", "none", "never", ""}
_CHANNELS = {
    "email": "email",
    "e-mail": "email",
    "by email": "email",
    "sms": "sms",
    "text": "sms",
    "texts": "sms",
    "text message": "sms",
    "by text": "sms",
    "by text message": "sms",
    "mobile": "sms",
}


@dataclass(frozen=True)
class Mapped:
    body: dict[str, Any]  # IntakeBody-shaped
    where: dict[str, str]  # body field ("location.lat", "reporter.email") -> form path
    attributes: tuple[tuple[str, str], ...]


class _Wrong(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _shown(answer: str) -> str:
    return repr(answer if len(answer) <= MAX_SHOWN else answer[:MAX_SHOWN] + "…")


def _text(value: Any, joiner: str = " ") -> str | None:
    """One text from an answer: None when it is empty or absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Wrong("must be text, not true or false")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise _Wrong("must be text")
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        parts = [_text(item, joiner) for item in value]
        return joiner.join(p for p in parts if p) or None
    raise _Wrong("must be text, not an object")


def _one(value: Any) -> str | None:
    """One answer as text: a list may hold one (a form post's repeated key), not several."""
    if isinstance(value, list):
        answers = [t for t in (_text(item) for item in value) if t]
        if len(answers) > 1:
            raise _Wrong("must be one answer, not several")
        return answers[0] if answers else None
    return _text(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Wrong("must be a number")
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = float(value.strip())
        except ValueError:
            raise _Wrong("must be a number") from None
    number = float(value)
    if not math.isfinite(number):
        raise _Wrong("must be a finite number")
    return number


def _urls(value: Any) -> list[str]:
    """Photo links: one URL, a list of them, or a JSON list in text (Gravity Forms)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                raise _Wrong("must be a link or a list of links") from None
            if not isinstance(value, list):
                raise _Wrong("must be a link or a list of links")
        else:
            return text.replace(",", " ").split()
    if isinstance(value, list):
        urls = []
        for item in value:
            if item is None or item == "":
                continue
            if not isinstance(item, str):
                raise _Wrong("must be a link or a list of links")
            urls.append(item.strip())
        return urls
    raise _Wrong("must be a link or a list of links")


def _channel(answer: str) -> str:
    channel = _CHANNELS.get(fold(answer))
    if channel is None:
        raise _Wrong(
            "must say yes or no, or name the channels (email, text); got an answer that is neither"
        )
    return channel


def _updates(value: Any) -> list[str] | None:
    """None: the JSON API's rule (the channels whose details were given); [] for none."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None if value else []
    if isinstance(value, int | float):
        return None if value else []
    if isinstance(value, str):
        answer = fold(value)
        if answer in _YES:
            return None
        if answer in _NO:
            return []
        return list(dict.fromkeys(_channel(a) for a in answer.replace(";", ",").split(",")))
    if isinstance(value, list):
        channels = []
        for item in value:
            if item is None or (isinstance(item, str) and not item.strip()) or item is False:
                continue
            if not isinstance(item, str):
                raise _Wrong("must say yes or no, or name the channels (email, text)")
            channels.append(_channel(item))
        return list(dict.fromkeys(channels))
    raise _Wrong("must say yes or no, or name the channels (email, text)")


class _Reader:
    def __init__(self, payload: dict[str, Any], mapping: Resolved) -> None:
        self.payload = payload
        self.mapping = mapping
        self.problems: list[Problem] = []
        self.where: dict[str, str] = {}

    def path(self, name: str) -> str | None:
        return self.mapping.paths.get(name)

    def raw(self, name: str) -> Any:
        path = self.mapping.paths.get(name)
        if path is None:
            return None
        try:
            return compiled(path).search(self.payload)
        except JMESPathError as exc:  # e.g. join() over an answer that is not text
            msg = str(getattr(exc, "msg", "") or type(exc).__name__).splitlines()[0]
            self.fail(name, f"could not be read from this payload ({msg})")
            return None

    def fail(self, name: str, problem: str, report_field: str | None = None) -> None:
        field = self.mapping.paths.get(name) or f"fixed.{name}"
        self.problems.append(
            {"field": field, "problem": problem, "report_field": report_field or name}
        )

    def read(self, name: str, convert: Any, *args: Any) -> Any:
        if name in self.mapping.fixed:
            return self.mapping.fixed[name]
        try:
            return convert(self.raw(name), *args)
        except _Wrong as wrong:
            self.fail(name, wrong.problem)
            return None

    def origin(self, name: str) -> str:
        return self.mapping.paths.get(name) or f"fixed.{name}"


def map_payload(
    payload: dict[str, Any], mapping: Resolved, task_types: Sequence[str]
) -> Mapped | list[Problem]:
    """The intake body the payload says, or every problem found (each naming its path)."""
    r = _Reader(payload, mapping)
    body: dict[str, Any] = {}
    where = r.where

    before = len(r.problems)
    answer = r.read("type", _one)
    if answer is not None:
        code = _task_type(answer, mapping, task_types)
        if code is None:
            r.fail("type", _not_mapped(answer, mapping, task_types))
        else:
            body["type"] = code
            where["type"] = r.origin("type")
    elif len(r.problems) == before:
        r.fail("type", "is missing: a report needs its kind of problem (the task type)")

    description = r.read("description", _text, _JOIN["description"])
    if description is not None:
        body["description"] = description
        where["description"] = r.origin("description")

    location = _location(r)
    address = r.read("address", _text, _JOIN["address"])
    if location is not None:
        if address is not None:
            location["address"] = address
            where["location.address"] = r.origin("address")
        body["location"] = location

    photos = r.read("photos", _urls)
    if photos:
        body["photos"] = photos
        where["photos"] = r.origin("photos")

    external_id = r.read("external_id", _one)
    if external_id is not None:
        body["external_id"] = external_id
        where["external_id"] = r.origin("external_id")

    reporter: dict[str, Any] = {}
    for name, convert in (("name", _text), ("email", _one), ("phone", _one)):
        value = r.read(name, convert)
        if value is not None:
            reporter[name] = value
            where[f"reporter.{name}"] = r.origin(name)
    updates = r.read("updates", _updates)
    if updates is not None:
        reporter["updates"] = updates
        where["reporter.updates"] = r.origin("updates")
        where["reporter"] = r.origin("updates")  # "updates asks for sms but no phone"
    if reporter:
        body["reporter"] = reporter

    attributes = _attributes(r)
    if r.problems:
        return r.problems
    return Mapped(body=body, where=dict(where), attributes=attributes)


def _task_type(answer: str, mapping: Resolved, task_types: Sequence[str]) -> str | None:
    code = mapping.types.get(fold(answer))
    if code is not None:
        return code
    # An answer that is itself a task type code (a form whose values are the codes).
    by_code = {fold(c): c for c in task_types}
    return by_code.get(fold(answer))


def _not_mapped(answer: str, mapping: Resolved, task_types: Sequence[str]) -> str:
    if mapping.type_labels:
        return (
            f"{_shown(answer)} is not mapped to a task type; mapped:"
            f" {', '.join(mapping.type_labels)}"
        )
    return f"{_shown(answer)} is not a task type; known: {', '.join(task_types)}"


def _location(r: _Reader) -> dict[str, Any] | None:
    lat = r.read("lat", _number)
    lon = r.read("lon", _number)
    if lat is not None and lon is not None:
        r.where["location.lat"] = r.origin("lat")
        r.where["location.lon"] = r.origin("lon")
        return {"lat": lat, "lon": lon}
    easting = r.read("easting", _number)
    northing = r.read("northing", _number)
    if easting is not None and northing is not None:
        try:
            lat, lon = to_lat_lon(easting, northing)
        except GridError as exc:
            r.fail("easting", f"with northing, {exc}", "location")
            return None
        grid = f"{r.origin('easting')}, {r.origin('northing')}"
        r.where["location.lat"] = r.where["location.lon"] = grid
        return {"lat": lat, "lon": lon}
    if any(p["report_field"] in ("lat", "lon", "easting", "northing") for p in r.problems):
        return None  # a value that is there but wrong is already named
    # Name the first missing value of a pair the mapping has.
    for first, got_first, second in (("lat", lat, "lon"), ("easting", easting, "northing")):
        if r.path(first) is not None or r.path(second) is not None:
            missing = first if got_first is None else second
            needed = "a report needs its place (lat and lon, or easting and northing)"
            r.fail(missing, f"is missing: {needed}", "location")
            return None
    r.problems.append(
        {
            "field": "location",
            "problem": "is missing: the mapping names no place",
            "report_field": "location",
        }
    )
    return None


def _attributes(r: _Reader) -> tuple[tuple[str, str], ...]:
    found = []
    for name, path in r.mapping.attributes.items():
        try:
            value = compiled(path).search(r.payload)
        except JMESPathError:
            value = None  # an extra answer that is not there is not a reason to refuse
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, str):
            text = value.strip()
        elif isinstance(value, list) and all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
        ):
            text = ", ".join(str(v).strip() for v in value if str(v).strip())
        else:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if not text:
            continue
        if len(text) > MAX_ATTRIBUTE or "\x00" in text:
            problem = (
                f"is too long to keep as attribute {name!r} (at most {MAX_ATTRIBUTE} characters)"
                if len(text) > MAX_ATTRIBUTE
                else "must not contain NUL characters"
            )
            r.problems.append(
                {"field": path, "problem": problem, "report_field": f"attributes.{name}"}
            )
            continue
        found.append((name, text))
    return tuple(found)


def translate(problems: list[Problem], mapped: Mapped) -> list[Problem]:
    """The intake body's problems (``schema.problems_of``) named by the form's paths."""
    out = []
    for problem in problems:
        field = problem["field"]
        source = None
        for key in sorted(mapped.where, key=len, reverse=True):
            if field == key or field.startswith((key + ".", key + "[")):
                source = mapped.where[key]
                break
        out.append(
            {
                "field": source or field,
                "problem": problem["problem"],
                "report_field": field,
            }
        )
    return out
