"""How a forms package's payload becomes a report: ``sources.<name>.form``.

A mapping says where each part of a report is found in the package's own payload, as a
JMESPath expression (https://jmespath.org): ``data.category``, ``contact.emailaddress1``,
``photos[].url``. A path that is only a field id (Gravity Forms' ``'3'`` or ``'1.3'``) is
read as that key. A list of paths (``'["1.3", "1.6"]'``) joins the answers it finds.

```yaml
sources:
  govservice:
    auth: hmac
    photo_hosts: [sample-borough.govservice.uk]
    form:
      preset: govservice             # a shipped mapping (responder/config/form_presets.py)
      fields:                        # where this council's form differs from the preset
        description: data.whatIsTheProblem
        phone: null                  # the preset's phone path, not wanted here
      types:                         # the form's category answers -> task type codes
        Fly-tipping: fly-tipping
        Dumped rubbish: fly-tipping
        Graffiti: graffiti
      fixed:                         # values every report from this form gets
        updates: [email]
      attributes:                    # extra answers kept with the report (never contacts)
        waste_type: data.whatWasDumped
```

docs/intake-forms.md explains every key, the presets and how to set up each sender.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import (
    IncompleteExpressionError,
    JMESPathError,
    LexerError,
    ParseError,
)
from pydantic import Field

from responder.config.base import Strict
from responder.config.wording import hint

Preset = Literal["govservice", "power-automate", "gravity-forms"]
Path = Annotated[str, Field(min_length=1, max_length=500)]

# What a mapping can find in a payload, in the order problems are reported.
FIELD_NAMES: tuple[str, ...] = (
    "type",
    "description",
    "lat",
    "lon",
    "easting",
    "northing",
    "address",
    "photos",
    "external_id",
    "name",
    "email",
    "phone",
    "updates",
)
# A bare field id (Gravity Forms '3', '1.3'): never a JMESPath expression on its own.
_FIELD_ID = re.compile(r"\d+(?:\.\d+)*")
# Attribute names that would keep contact details with the report for good.
_CONTACT_WORDS = ("email", "phone", "mobile", "telephone", "surname", "firstname", "lastname")
_CONTACT_NAMES = {"name", "fullname", "full_name", "first_name", "last_name", "contact", "tel"}
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class FormFields(Strict):
    """Where each part of a report is in the payload (a path), or null to drop a preset's."""

    type: Path | None = None
    description: Path | None = None
    lat: Path | None = None
    lon: Path | None = None
    easting: Path | None = None  # British National Grid, when the form has no lat/lon
    northing: Path | None = None
    address: Path | None = None
    photos: Path | None = None  # one https URL, a list of them, or a JSON list in text
    external_id: Path | None = None  # the form's case reference: a resend is the same report
    name: Path | None = None
    email: Path | None = None
    phone: Path | None = None
    updates: Path | None = None  # yes/no, or the channels: email, sms (text)


class FormFixed(Strict):
    """Values every report from the form gets (e.g. the one task type a form is for)."""

    type: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=5000)
    address: str | None = Field(default=None, max_length=500)
    updates: list[Literal["email", "sms"]] | None = Field(default=None, max_length=2)


class FormMapping(Strict):
    """A field mapping (see docs/intake-forms.md)."""

    preset: Preset | None = None
    fields: FormFields = Field(default_factory=FormFields)
    # The form's category answers (as it sends them) -> the file's task type codes.
    types: dict[str, str] = Field(default_factory=dict)
    fixed: FormFixed = Field(default_factory=FormFixed)
    # Extra answers kept with the report as text: attribute name -> path (null drops one).
    attributes: dict[str, Path | None] = Field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """A mapping with its preset applied: what ``intake/form_mapping`` reads."""

    paths: dict[str, str]  # field name -> path, for the fields read from the payload
    fixed: dict[str, Any]  # field name -> value
    types: dict[str, str]  # folded category answer -> task type code
    type_labels: tuple[str, ...]  # the category answers as the file spells them
    attributes: dict[str, str] = field(default_factory=dict)  # attribute name -> path


def fold(answer: str) -> str:
    """A category answer as it is matched: case and spacing do not matter."""
    return " ".join(answer.split()).casefold()


def resolve(form: FormMapping) -> Resolved:
    """The preset's paths, overridden field by field by the file's own."""
    from responder.config.form_presets import PRESETS

    base = PRESETS[form.preset] if form.preset is not None else FormMapping()
    paths: dict[str, str] = {}
    for mapping in (base, form):
        for name in mapping.fields.model_fields_set:
            value = getattr(mapping.fields, name)
            if value is None:
                paths.pop(name, None)
            else:
                paths[name] = value
    fixed = {
        name: getattr(form.fixed, name)
        for name in form.fixed.model_fields_set
        if getattr(form.fixed, name) is not None
    }
    for name in fixed:  # a fixed value replaces the preset's path
        paths.pop(name, None)
    attributes: dict[str, str] = {}
    for mapping in (base, form):
        for name, path in mapping.attributes.items():
            if path is None:
                attributes.pop(name, None)
            else:
                attributes[name] = path
    types = {**base.types, **form.types}
    return Resolved(
        paths={n: paths[n] for n in FIELD_NAMES if n in paths},
        fixed=fixed,
        types={fold(answer): code for answer, code in types.items()},
        type_labels=tuple(types),
        attributes=attributes,
    )


@lru_cache(maxsize=1024)
def compiled(path: str) -> Any:
    """The compiled expression for ``path`` (JMESPathError when it is not one)."""
    if _FIELD_ID.fullmatch(path):
        path = f'"{path}"'
    return jmespath.compile(path)


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a usable expression, in one line; None when it is."""
    try:
        compiled(path)
    except IncompleteExpressionError:
        msg, where = "it ends too soon", None
    except ParseError as exc:
        value = getattr(exc, "token_value", None)
        msg = f"unexpected {str(value)!r}" if value not in (None, "") else "not understood"
        where = getattr(exc, "lex_position", None)
    except LexerError as exc:
        msg = f"unexpected {getattr(exc, 'lexer_value', '?')!r}"
        where = getattr(exc, "lexer_position", None)
    except JMESPathError:
        msg, where = "not understood", None
    else:
        return None
    at = f" at character {where + 1}" if isinstance(where, int) else ""
    advice = ""
    if re.search(r"(^|\.)\d", path):
        advice = "; a key that starts with a digit needs double quotes, e.g. '\"3.3\"'"
    return f"not a valid path ({msg}{at}{advice}), got {path!r}"


def check_form(at: str, form: FormMapping, task_types: list[str] | None) -> Iterator[str]:
    """Cross-reference problems of one mapping, one line each (``config/load.py``)."""
    for name in FIELD_NAMES:
        path = getattr(form.fields, name)
        if path is not None:
            problem = path_problem(path)
            if problem is not None:
                yield f"{at}.fields.{name}: {problem}"
            if name in form.fixed.model_fields_set and getattr(form.fixed, name) is not None:
                yield f"{at}.fixed.{name}: also given in fields.{name}; keep one of the two"
    for name, path in form.attributes.items():
        where = f"{at}.attributes.{name}"
        if not _ATTRIBUTE_NAME.fullmatch(name):
            yield (
                f"{where}: an attribute name is a word of letters, digits, '_', '.' or '-'"
                f" (at most 64), got {name!r}"
            )
        lower = name.casefold()
        if lower in _CONTACT_NAMES or any(word in lower for word in _CONTACT_WORDS):
            yield (
                f"{where}: attributes are kept with the report for good, so never contact"
                " details; map the reporter's name, email and phone in fields: (kept only"
                " while updates are wanted)"
            )
        if path is not None:
            problem = path_problem(path)
            if problem is not None:
                yield f"{where}: {problem}"
    for answer, code in form.types.items():
        if task_types is not None and code not in task_types:
            yield f"{at}.types.{answer}: unknown task type {code!r}{hint(code, task_types)}"
    folded: dict[str, str] = {}
    for answer in form.types:
        if fold(answer) in folded:
            yield (
                f"{at}.types.{answer}: the same answer as {folded[fold(answer)]!r}"
                " (case and spacing do not count)"
            )
        folded.setdefault(fold(answer), answer)
    fixed_type = form.fixed.type
    if fixed_type is not None and task_types is not None and fixed_type not in task_types:
        yield f"{at}.fixed.type: unknown task type {fixed_type!r}{hint(fixed_type, task_types)}"

    resolved = resolve(form)
    paths = resolved.paths
    if "type" not in paths and "type" not in resolved.fixed:
        yield (
            f"{at}: say where the task type comes from: fields.type (with types: for the"
            " form's answers) or fixed.type"
        )
    if form.types and "type" not in paths:
        yield f"{at}.types: the form's answers are mapped, but no fields.type says where they are"
    has_latlon = "lat" in paths and "lon" in paths
    has_grid = "easting" in paths and "northing" in paths
    pairs = (("lat", "lon"), ("lon", "lat"), ("easting", "northing"), ("northing", "easting"))
    for one, other in pairs:
        if one in paths and other not in paths:
            yield f"{at}.fields: {one} is mapped but {other} is not; map both"
    if not has_latlon and not has_grid:
        yield f"{at}.fields: say where the place is: lat and lon, or easting and northing"
