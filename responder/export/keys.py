"""Read keys: who may read tasks through the API, the CSV export and the OData feed.

Secrets come from ``RESPONDER_READ_KEYS`` (``name:secret`` pairs). A name that the council
file's ``read_keys`` section lists is scoped as that entry says (wards, teams, internal
notes, contact details); a name it does not list reads the whole council, with internal
notes but never reporters' contact details. Intake keys (``RESPONDER_INTAKE_KEYS``) write
and never read: one offered here is a 403, and a read key offered to intake is the 401 of
any unknown key.

A key is sent as ``Authorization: Bearer <secret>``, as HTTP Basic (user name = the key's
name, password = its secret: Power BI's "Basic" credential), or, on the OData feed only, as
the ``api_key`` query parameter (Power BI's "Web API" credential with
``ApiKeyName="api_key"``: Power Query puts that key in the URL; the access log never writes
query strings). Secrets are compared in constant time, every key every time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from responder.config.model import Council
from responder.config.read_keys import ReadKey as ReadKeyEntry
from responder.domain.visibility import COUNCIL_WIDE, Scope
from responder.settings import Settings

log = logging.getLogger("responder.export")

CHALLENGE = 'Bearer realm="responder-read", Basic realm="responder-read", charset="UTF-8"'
QUERY_KEY = "api_key"


class ReadKeyProblem(ValueError):
    """A read-key setting the service must not start with."""


@dataclass(frozen=True)
class ReadKey:
    name: str
    scope: Scope
    internals: bool = False  # internal notes and the full history
    contacts: bool = False  # reporters' contact details (until erased)


@dataclass(frozen=True)
class ReadKeys:
    keys: tuple[tuple[bytes, ReadKey], ...] = ()
    intake: tuple[bytes, ...] = ()  # intake secrets: recognised only to be refused


read_keys_key = web.AppKey("read_keys", ReadKeys)


def read_keys(council: Council, settings: Settings) -> ReadKeys:
    """The read keys from the settings and the council file; raises ``ReadKeyProblem``."""
    ward_names = {w.name for w in council.wards}
    team_codes = {t.code for t in council.file.teams}
    scoped: dict[str, ReadKeyEntry] = {}
    for i, entry in enumerate(council.file.read_keys):
        where = f"read_keys[{i}] ({entry.name})"
        if entry.name in scoped:
            raise ReadKeyProblem(f"{where}: the name is given twice")
        unknown = [w for w in entry.wards if w not in ward_names]
        unknown += [t for t in entry.teams if t not in team_codes]
        if unknown:
            raise ReadKeyProblem(
                f"{where}: {', '.join(repr(u) for u in unknown)} is not a ward or team "
                "of the council file"
            )
        scoped[entry.name] = entry
    missing = sorted(set(scoped) - set(settings.read_keys))
    if missing:
        what = (
            f"RESPONDER_READ_KEYS has no secret for read key{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(n) for n in missing)} of the council file (name:secret)"
        )
        if settings.environment == "production":
            raise ReadKeyProblem(what)
        log.warning("%s: those keys cannot be used", what)
    intake = {s for s in settings.intake_keys.values()}
    keys: list[tuple[bytes, ReadKey]] = []
    for name, secret in settings.read_keys.items():
        if secret in intake:
            raise ReadKeyProblem(
                f"RESPONDER_READ_KEYS ({name}): the secret is also an intake key's; "
                "read keys and intake keys must differ"
            )
        scoped_as = scoped.get(name)
        if scoped_as is None:
            key = ReadKey(name, COUNCIL_WIDE, internals=True, contacts=False)
        else:
            scope = (
                COUNCIL_WIDE
                if scoped_as.everything
                else Scope(None, wards=frozenset(scoped_as.wards), teams=frozenset(scoped_as.teams))
            )
            key = ReadKey(name, scope, internals=scoped_as.internals, contacts=scoped_as.contacts)
        keys.append((secret.encode(), key))
    return ReadKeys(tuple(keys), tuple(s.encode() for s in settings.intake_keys.values()))


Refusal = Callable[[int, str, str, dict[str, str]], web.StreamResponse]


def _offered(request: web.Request, allow_query: bool) -> tuple[str | None, bytes] | str:
    """(the name given, the secret) from the request, or why nothing usable was sent."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return None, token.encode("utf-8", "surrogateescape")
    if scheme.lower() == "basic" and token:
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return "The Basic credentials are not base64 of name:secret."
        name, sep, secret = decoded.partition(":")
        if not sep or not secret:
            return "The Basic credentials are not name:secret."
        return name, secret.encode()
    if header:
        return "Send 'Authorization: Bearer <read key secret>' (or Basic, name:secret)."
    if allow_query:
        values = request.query.getall(QUERY_KEY, [])
        if len(values) == 1 and values[0]:
            return None, values[0].encode("utf-8", "surrogateescape")
    return "Send 'Authorization: Bearer <read key secret>' (or Basic, name:secret)."


def authenticate(
    request: web.Request, refuse: Refusal, *, allow_query: bool = False
) -> ReadKey | web.StreamResponse:
    """The read key the request carries, or the refusal: 401 (none, or unknown) with a
    challenge, 403 for an intake key. Never raises."""
    keys = request.app[read_keys_key]
    challenge = {"WWW-Authenticate": CHALLENGE}
    offered = _offered(request, allow_query)
    if isinstance(offered, str):
        return refuse(401, "unauthorized", offered, challenge)
    name, secret = offered
    matched: ReadKey | None = None
    for key_secret, key in keys.keys:  # every key is compared: no early exit to time
        same = hmac.compare_digest(secret, key_secret)
        if same and (name is None or hmac.compare_digest(name.encode(), key.name.encode())):
            matched = key
    if matched is not None:
        return matched
    intake = False
    for intake_secret in keys.intake:
        intake |= hmac.compare_digest(secret, intake_secret)
    if intake:
        return refuse(403, "forbidden", "An intake key cannot read: use a read key.", {})
    return refuse(401, "unauthorized", "The read key is not recognised.", challenge)
