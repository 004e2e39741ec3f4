"""Reading what an Open311 client sends: who it is (``api_key``, ``jurisdiction_id``), the
fields of a POST (form-encoded, or multipart when FixMyStreet uploads files), and a new
service request as a ``NewReport``. Every problem raises ``Open311Error`` naming the field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from responder.config.model import Council
from responder.config.open311 import SERVER_SET_ATTRIBUTES, Open311Attribute
from responder.domain.grid import GridError, to_grid, to_lat_lon
from responder.domain.photos import NewPhoto
from responder.domain.records import NewReport
from responder.fetching.fetch import sniff
from responder.intake.open311.wire import Open311Error
from responder.web import domain_key, intake_keys_key

MAX_BODY = 1024 * 1024  # the app's client_max_size
MAX_DESCRIPTION = 10_000
MAX_ADDRESS = 500
MAX_MEDIA = 20
MAX_UPLOADS = 10
MAX_URL = 2048
MAX_ATTRIBUTES = 60
MAX_ATTRIBUTE_VALUE = 2000
MAX_EXTERNAL_ID = 200

_ATTRIBUTE = re.compile(r"attribute\[([A-Za-z0-9_]{1,64})\]")
# Attributes that would be personal data: never kept (FixMyStreet sends last_name as one).
PERSONAL_ATTRIBUTES = frozenset(
    {
        "first_name",
        "last_name",
        "name",
        "full_name",
        "email",
        "email_address",
        "phone",
        "phone_number",
        "telephone",
        "mobile",
    }
)


@dataclass(frozen=True)
class Caller:
    """Who is asking: an Open311 source (a valid api_key), or anyone (None)."""

    source: str | None


def clip(value: str, limit: int = 64) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def identify(request: web.Request, fields: Mapping[str, str], *, key_required: bool) -> Caller:
    """Check ``api_key`` (constant time, every key compared) and ``jurisdiction_id``."""
    council = request.app[domain_key].council
    api_key = fields.get("api_key") or ""
    jurisdiction = fields.get("jurisdiction_id")
    if not api_key:
        if key_required:
            raise Open311Error(401, "api_key: required (the source's intake key secret)")
        _check_public_jurisdiction(council, jurisdiction)
        return Caller(None)
    keys: dict[str, str] = request.app[intake_keys_key]
    given = api_key.encode()
    matched = None
    for name, secret in keys.items():  # no early exit: nothing to time
        if hmac.compare_digest(given, secret.encode()):
            matched = name
    if matched is None:
        raise Open311Error(401, "api_key: not recognised")
    source = council.file.sources.get(matched)
    if source is None or source.open311 is None:
        raise Open311Error(
            403,
            "api_key: this key's source does not send Open311 (no open311: in its sources entry)",
        )
    wanted = source.open311.jurisdiction_id
    if wanted is not None:
        if not jurisdiction:
            raise Open311Error(400, "jurisdiction_id: required for this source")
        if not hmac.compare_digest(jurisdiction.encode(), wanted.encode()):
            raise Open311Error(404, "jurisdiction_id: not a jurisdiction this server serves")
    return Caller(matched)


def _check_public_jurisdiction(council: Council, jurisdiction: str | None) -> None:
    known = {
        s.open311.jurisdiction_id
        for s in council.file.sources.values()
        if s.open311 is not None and s.open311.jurisdiction_id is not None
    }
    if jurisdiction and known and jurisdiction not in known:
        raise Open311Error(404, "jurisdiction_id: not a jurisdiction this server serves")


@dataclass(frozen=True)
class Posted:
    """A POST's text fields, and the pictures uploaded with it (FixMyStreet's ``photo1``...)."""

    fields: MultiDict[str]
    photos: tuple[NewPhoto, ...] = ()


async def read_fields(request: web.Request) -> Posted:
    """The POST's fields (query string fields too, the body's winning) and uploaded pictures
    (JPEG, PNG, GIF or WebP by their bytes; anything else is refused naming its field)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Open311Error(413, "body: larger than 1 MB")
    ctype = request.content_type
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(
            415,
            "body: send application/x-www-form-urlencoded (or multipart/form-data), "
            "as Open311 clients do",
        )
    try:
        posted: MultiDictProxy = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise Open311Error(413, "body: larger than 1 MB") from None
    except (ValueError, LookupError, AssertionError, web.HTTPBadRequest):
        # A broken multipart, bytes that are not the charset's, a charset nobody knows.
        raise Open311Error(400, "body: not a readable form") from None
    fields: MultiDict[str] = MultiDict()
    photos: list[NewPhoto] = []
    for key, value in posted.items():
        if isinstance(value, str):
            fields.add(key, value)
            continue
        data = value.file.read()
        kind = sniff(data)
        if kind is None:
            raise Open311Error(400, f"{clip(key)}: not a JPEG, PNG, GIF or WebP picture")
        photos.append(NewPhoto(kind, data))
    if len(photos) > MAX_UPLOADS:
        raise Open311Error(400, f"photo: at most {MAX_UPLOADS} uploaded pictures")
    for key, value in request.query.items():
        if key not in fields:
            fields.add(key, value)
    for key, value in fields.items():
        if "\x00" in value or "\x00" in key:
            raise Open311Error(400, f"{clip(key)}: must not contain NUL characters")
    return Posted(fields, tuple(photos))


def _number(fields: Mapping[str, str], name: str) -> float | None:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(400, f"{name}: must be a number") from None
    if not math.isfinite(value):
        raise Open311Error(400, f"{name}: must be a finite number")
    return value


def media_urls(fields: MultiDict[str]) -> tuple[str, ...]:
    urls = [u.strip() for u in fields.getall("media_url", []) if u.strip()]
    if len(urls) > MAX_MEDIA:
        raise Open311Error(400, f"media_url: at most {MAX_MEDIA} links")
    for url in urls:
        if len(url) > MAX_URL:
            raise Open311Error(400, f"media_url: longer than {MAX_URL} characters")
        if not re.match(r"https?://[^\s/]+", url, re.IGNORECASE) or any(c.isspace() for c in url):
            raise Open311Error(400, "media_url: must be an http:// or https:// link")
    return tuple(urls)


def attributes(fields: MultiDict[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key in dict.fromkeys(fields.keys()):
        if not key.startswith("attribute["):
            continue
        match = _ATTRIBUTE.fullmatch(key)
        if match is None:
            raise Open311Error(400, f"{clip(key)}: attribute names are letters, digits and _")
        name = match.group(1)
        if name.lower() in PERSONAL_ATTRIBUTES:
            continue  # contact details are not kept with the report
        value = ",".join(v.strip() for v in fields.getall(key))
        if len(value) > MAX_ATTRIBUTE_VALUE:
            raise Open311Error(400, f"{key}: longer than {MAX_ATTRIBUTE_VALUE} characters")
        if value:
            found[name] = value
    if len(found) > MAX_ATTRIBUTES:
        raise Open311Error(400, f"attribute: at most {MAX_ATTRIBUTES} attributes")
    return found


def _check_questions(questions: list[Open311Attribute], given: dict[str, str]) -> None:
    """The council's extra questions: required ones answered, list answers among the keys."""
    for question in questions:
        field = f"attribute[{question.code}]"
        value = given.get(question.code)
        if value is None:
            if question.required:
                raise Open311Error(400, f"{field}: required for this service")
            continue
        if question.datatype == "number":
            try:
                float(value)
            except ValueError:
                raise Open311Error(400, f"{field}: must be a number") from None
        elif question.datatype == "singlevaluelist" and value not in question.values:
            raise Open311Error(400, f"{field}: not one of {', '.join(question.values)}")
        elif question.datatype == "multivaluelist":
            unknown = [v for v in value.split(",") if v and v not in question.values]
            if unknown:
                raise Open311Error(400, f"{field}: not one of {', '.join(question.values)}")


def new_report(council: Council, source: str, fields: MultiDict[str]) -> NewReport:
    """The service request as a report; Open311Error naming the first wrong field."""
    code = (fields.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code: required")
    if council.task_type(code) is None:
        raise Open311Error(400, f"service_code: unknown service {clip(code)!r}")
    description = (fields.get("description") or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description: longer than {MAX_DESCRIPTION:,} characters")
    attrs = attributes(fields)
    extra = council.file.open311.services.get(code)
    _check_questions(extra.attributes if extra else [], attrs)

    lat, lon = _number(fields, "lat"), _number(fields, "long")
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat/long: send both, or neither")
    if lat is None or lon is None:
        lat, lon = _from_grid(attrs)
    elif not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Open311Error(400, "lat/long: not a position on Earth (lat -90..90, long -180..180)")
    if "easting" not in attrs or "northing" not in attrs:
        easting, northing = to_grid(lat, lon)
        attrs.setdefault("easting", f"{easting:.0f}")
        attrs.setdefault("northing", f"{northing:.0f}")

    external_id = attrs.get("fixmystreet_id")
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise Open311Error(400, "attribute[fixmystreet_id]: longer than 200 characters")
    given = (fields.get("address_string") or attrs.get("closest_address") or "").strip()
    address = " ".join(given.split())[:MAX_ADDRESS] or None
    photos = media_urls(fields)
    content = {
        "type": code,
        "description": description,
        "lat": lat,
        "lon": lon,
        "address": address,
        "photos": list(photos),
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return NewReport(
        type=code,
        description=description,
        lat=lat,
        lon=lon,
        address=address,
        photos=(),
        source=source,
        external_id=external_id,
        # FixMyStreet tells its own users of progress: no contact details are kept here.
        reporter=None,
        raised_by="resident",
        actor=f"intake:{source}",
        content_hash=digest,
        attributes=tuple(sorted(attrs.items())),
        fetch_photos=photos,
    )


def _from_grid(attrs: dict[str, str]) -> tuple[float, float]:
    raw_e, raw_n = attrs.get("easting"), attrs.get("northing")
    if raw_e is None or raw_n is None:
        raise Open311Error(
            400, "lat/long: required (or attribute[easting] and attribute[northing])"
        )
    values = []
    for name, raw in (("easting", raw_e), ("northing", raw_n)):
        try:
            values.append(float(raw))
        except ValueError:
            raise Open311Error(400, f"attribute[{name}]: must be a number") from None
    try:
        return to_lat_lon(values[0], values[1])
    except GridError as exc:
        name = "northing" if str(exc).startswith("northing") else "easting"
        raise Open311Error(400, f"attribute[{name}]: {exc}") from None


SERVER_SET = tuple(name for name, _ in SERVER_SET_ATTRIBUTES)
