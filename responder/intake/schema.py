"""The intake body (DESIGN.md's public surface), validated into a ``NewReport``.

Every problem is reported with the field it concerns. Values are not echoed back: some
fields carry personal data, and the sender already has what it sent. A field the body
does not know (a misspelling, ``lng`` for ``lon``) is a problem too, named with the field
it probably meant: silently dropping it would accept a report without what was sent.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from responder.domain.records import NewReport, ReporterContact

MAX_PHOTOS = 20

_Text = Annotated[str, Field(max_length=200)]


def _https_url(value: str) -> str:
    if not value.lower().startswith("https://") or len(value) <= len("https://"):
        raise ValueError("must be an https:// URL")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    return value


_PHONE_JUNK = re.compile(r"[\s().-]")


def normalise_phone(value: str) -> str:
    """UK mobiles as GOV.UK Notify accepts them (07…, +447…); other numbers in +E.164 form."""
    digits = _PHONE_JUNK.sub("", value)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+44"):
        digits = "0" + digits[3:]
    elif digits.startswith("44") and len(digits) == 12:
        digits = "0" + digits[2:]
    if digits.startswith("0"):
        if not re.fullmatch(r"07\d{9}", digits, re.ASCII):
            raise ValueError("must be a UK mobile number (07… with 11 digits) for text messages")
        return digits
    if re.fullmatch(r"\+[1-9]\d{7,14}", digits, re.ASCII):
        return digits
    raise ValueError("must be a mobile number, e.g. 07700 900123 or +447700900123")


class _NoNul(BaseModel):
    """Refuses NUL characters in any text field: PostgreSQL cannot store them in text."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        items = value if isinstance(value, list) else (value,)
        if any(isinstance(v, str) and "\x00" in v for v in items):
            raise ValueError("must not contain NUL characters")
        return value


class Location(_NoNul):
    model_config = ConfigDict(extra="forbid")
    # Strict: a JSON number only. Lax mode would read true as 1.0 and "51.9" as 51.9.
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, strict=True)
    address: str | None = Field(default=None, max_length=500)


class Reporter(_NoNul):
    model_config = ConfigDict(extra="forbid")
    name: _Text | None = None
    email: EmailStr | None = Field(default=None, max_length=320)
    phone: Annotated[str, Field(max_length=32), AfterValidator(normalise_phone)] | None = None
    # Omitted: the channels whose details were given. An empty list: no updates wanted.
    updates: list[Literal["email", "sms"]] | None = Field(default=None, max_length=2)

    @model_validator(mode="after")
    def _channels_have_details(self) -> Reporter:
        for channel in self.updates or ():
            if channel == "email" and not self.email:
                raise ValueError("updates asks for email but no email was given")
            if channel == "sms" and not self.phone:
                raise ValueError("updates asks for sms but no phone was given")
        return self

    def channels(self) -> tuple[str, ...]:
        if self.updates is not None:
            return tuple(dict.fromkeys(self.updates))
        return tuple(c for c, v in (("email", self.email), ("sms", self.phone)) if v)


class IntakeBody(_NoNul):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=5000)
    location: Location
    photos: list[Annotated[str, Field(max_length=2048), AfterValidator(_https_url)]] = Field(
        default_factory=list, max_length=MAX_PHOTOS
    )
    reporter: Reporter | None = None
    source: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    external_id: str | None = Field(default=None, min_length=1, max_length=200)

    def to_report(self, key_name: str) -> NewReport:
        reporter = None
        if self.reporter is not None and self.reporter.channels():
            # Contact details are kept only when the reporter wants updates (least data).
            r = self.reporter
            reporter = ReporterContact(r.name, r.email, r.phone, r.channels())
        return NewReport(
            type=self.type.strip().lower(),
            description=self.description.strip(),
            lat=self.location.lat,
            lon=self.location.lon,
            address=(self.location.address or "").strip() or None,
            photos=tuple(self.photos),
            source=self.source or key_name,
            external_id=self.external_id,
            reporter=reporter,
            raised_by="resident",
            actor=f"intake:{key_name}",
            content_hash=self.content_hash(),
        )

    def content_hash(self) -> str:
        """What makes a resend of this report the same report, as a SHA-256 hex digest.

        The report as normalised (type, description, location, photos, and the channels
        the reporter asked for), independent of key order, spacing and case where those
        mean nothing. The reporter's name, email and phone are left out, so no hash of
        personal data outlives their erasure; a resend's contact details are compared
        with the stored contact row instead (``commands.create``).
        """
        content = {
            "type": self.type.strip().lower(),
            "description": self.description.strip(),
            "lat": self.location.lat,
            "lon": self.location.lon,
            "address": (self.location.address or "").strip() or None,
            "photos": self.photos,
            "updates": list(self.reporter.channels()) if self.reporter is not None else [],
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "finite_number": "must be a finite number",
    "string_unicode": "must be valid Unicode text (no lone surrogates)",
}


def _field(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part and not str(part).startswith(("function-after", "literal[")):
            path += f".{part}" if path else str(part)
    return path or "body"


# Unknown fields listed one by one, at most; a name longer than this is shown cut short
# (and gets no suggestion): the answer stays small whatever the body holds.
MAX_UNKNOWN_LISTED = 10
MAX_NAME_SHOWN = 64

# Names clients are known to use for a field, and fields sent at the wrong level.
_SYNONYMS = {
    "lng": "lon",
    "long": "lon",
    "longitude": "lon",
    "latitude": "lat",
    "desc": "description",
    "details": "description",
    "category": "type",
    "mobile": "phone",
    "telephone": "phone",
    "photo": "photos",
    "images": "photos",
}


def _objects() -> dict[tuple[str, ...], type[BaseModel]]:
    return {(): IntakeBody, ("location",): Location, ("reporter",): Reporter}


def suggestion(parent: tuple[str, ...], name: str) -> str | None:
    """The field an unknown ``name`` inside the object at ``parent`` most likely meant."""
    if len(name) > MAX_NAME_SHOWN:
        return None
    objects = _objects()
    here = list(objects[parent].model_fields) if parent in objects else []
    wanted = name.strip().lower().replace("-", "_").replace(" ", "_")
    wanted = _SYNONYMS.get(wanted, wanted)
    if wanted in here and wanted != name:
        return wanted
    close = difflib.get_close_matches(wanted, here, n=1, cutoff=0.6)
    if close:
        return close[0]
    # A field of another object sent here (``lat`` at the top, ``email`` in location).
    elsewhere = {
        ".".join((*path, field)): field
        for path, model in objects.items()
        if path != parent
        for field in model.model_fields
    }
    for dotted, field in elsewhere.items():
        if field == wanted:
            return dotted
    close = difflib.get_close_matches(wanted, list(elsewhere.values()), n=1, cutoff=0.8)
    if close:
        return next(dotted for dotted, field in elsewhere.items() if field == close[0])
    return None


def _shown(name: str) -> str:
    return name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "…"


def _unknown_field(loc: tuple) -> dict[str, str]:
    parent, name = tuple(str(p) for p in loc[:-1]), str(loc[-1])
    # An empty name cannot stand as a field: the problem is the object's that holds it.
    field = ".".join((*parent, _shown(name))) if name else ".".join(parent) or "body"
    problem = f"unknown field {_shown(name)!r}"
    meant = suggestion(parent, name)
    if meant is not None:
        problem += f": did you mean {meant!r}?"
    return {"field": field, "problem": problem}


def problems_of(error: ValidationError) -> list[dict[str, str]]:
    problems = []
    unknown = 0
    for e in error.errors(include_input=False, include_url=False):
        kind = e["type"]
        if kind == "extra_forbidden":
            unknown += 1
            if unknown <= MAX_UNKNOWN_LISTED:
                problems.append(_unknown_field(e["loc"]))
            continue
        message = _MESSAGES.get(kind)
        if message is None:
            message = e["msg"].removeprefix("Value error, ")
            if kind == "greater_than_equal":
                message = f"must be at least {e['ctx']['ge']:g}"
            elif kind == "less_than_equal":
                message = f"must be at most {e['ctx']['le']:g}"
            elif kind == "string_too_long":
                message = f"is too long (at most {e['ctx']['max_length']} characters)"
            elif kind == "too_long":
                message = f"has too many items (at most {e['ctx']['max_length']})"
            elif kind == "string_too_short":
                message = "must not be empty"
            elif kind == "string_pattern_mismatch":
                message = "may use only letters, digits, '.', '_' and '-' (at most 64)"
            elif kind == "literal_error":
                message = f"must be one of {e['ctx']['expected']}"
            elif kind == "value_error" and "email" in str(e["loc"]):
                message = "is not a valid email address"
        problems.append({"field": _field(e["loc"]), "problem": message})
    if unknown > MAX_UNKNOWN_LISTED:
        more = unknown - MAX_UNKNOWN_LISTED
        problems.append({"field": "body", "problem": f"has {more} more unknown fields"})
    return problems
