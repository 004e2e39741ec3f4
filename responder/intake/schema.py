"""The intake body (DESIGN.md's public surface), validated into a ``NewReport``.

Every problem is reported with the field it concerns. Values are not echoed back: some
fields carry personal data, and the sender already has what it sent.
"""

from __future__ import annotations

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
    model_config = ConfigDict(extra="ignore")
    # Strict: a JSON number only. Lax mode would read true as 1.0 and "51.9" as 51.9.
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, strict=True)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, strict=True)
    address: str | None = Field(default=None, max_length=500)


class Reporter(_NoNul):
    model_config = ConfigDict(extra="ignore")
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
    model_config = ConfigDict(extra="ignore")
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
        )


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


def problems_of(error: ValidationError) -> list[dict[str, str]]:
    problems = []
    for e in error.errors(include_input=False, include_url=False):
        kind = e["type"]
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
    return problems
