"""Who is signed in to the web pages: the session cookie, the viewer, and CSRF.

A session is a cookie holding ``{person, via, csrf}`` encrypted and authenticated with
Fernet (AES-CBC + HMAC-SHA256, from ``cryptography``) under a key derived from
``RESPONDER_SECRET_KEY``: nothing to store, so any instance of a shared deployment reads
any instance's cookie, and nobody can forge or read one. Fernet's timestamp gives every
session a hard end (``SESSION_HOURS``): sign in again after a shift.

The person comes from the council file on every request, so taking someone out of the file
(or out of a team or ward) takes effect at their next click, not when their cookie ends.

Cookies are HttpOnly, Secure when the site is served over https (always in production) and
SameSite=Lax; a session made inside the Teams tab (an iframe on teams.microsoft.com) is
``SameSite=None; Secure; Partitioned``, the only kind a browser sends from a third-party
frame. Every change (POST) on the pages must carry the session's CSRF token, as a form
field ``csrf`` or an ``X-CSRF-Token`` header (htmx sends it): a cross-site form cannot know
it, whatever SameSite allows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

from responder.config.model import Council, Person
from responder.domain.visibility import Scope, scope_of

log = logging.getLogger("responder.web")

COOKIE = "responder_session"
SESSION_HOURS = 10  # a long shift; then sign in again
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
Via = Literal["dev", "entra", "teams"]
_MAX_COOKIE = 4096


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as every page sees them."""

    person: Person
    scope: Scope
    csrf: str
    via: Via

    @property
    def id(self) -> str:
        return self.person.id

    @property
    def role(self) -> str:
        return self.person.role


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose (sessions, feedback links...) from the one secret, so a
    key leaked from one use is no key for another."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


class Sessions:
    """Makes and reads session cookies."""

    def __init__(self, council: Council, secret: str, *, always_secure: bool) -> None:
        key = derive_key(secret, "responder-session-v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.council = council
        # Production: Secure always. Otherwise when the request came over https (a local
        # http://localhost quick start must still be able to sign in).
        self.always_secure = always_secure

    def sign_in(
        self, request: web.Request, response: web.StreamResponse, person: Person, via: Via
    ) -> Viewer:
        """Set a new session for ``person`` on ``response`` (a new CSRF token with it)."""
        csrf = secrets.token_urlsafe(24)
        data = json.dumps({"p": person.id, "v": via, "c": csrf}, separators=(",", ":"))
        value = self._fernet.encrypt(data.encode()).decode()
        secure = self.always_secure or request.secure
        response.headers.add(
            "Set-Cookie", self._cookie(value, SESSION_HOURS * 3600, via, secure=secure)
        )
        return Viewer(person, scope_of(self.council, person), csrf, via)

    def sign_out(self, request: web.Request, response: web.StreamResponse) -> None:
        secure = self.always_secure or request.secure
        response.headers.add("Set-Cookie", self._cookie("", 0, "dev", secure=secure))

    def read(self, request: web.Request) -> Viewer | None:
        value = request.cookies.get(COOKIE)
        if not value or len(value) > _MAX_COOKIE:
            return None
        try:
            data = json.loads(self._fernet.decrypt(value, ttl=SESSION_HOURS * 3600))
        except (InvalidToken, ValueError):
            return None  # forged, from another key, expired or garbled: not signed in
        if not isinstance(data, dict):
            return None
        person = self.council.person(str(data.get("p", "")))
        via = data.get("v")
        csrf = data.get("c")
        if person is None or via not in ("dev", "entra", "teams") or not isinstance(csrf, str):
            return None
        return Viewer(person, scope_of(self.council, person), csrf, via)

    @staticmethod
    def _cookie(value: str, max_age: int, via: Via, *, secure: bool) -> str:
        parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly"]
        if via == "teams":
            # Inside the Teams client's iframe: a third-party context (Teams is https only).
            parts += ["Secure", "SameSite=None", "Partitioned"]
        else:
            parts += ["SameSite=Lax"] + (["Secure"] if secure else [])
        return "; ".join(parts)


sessions_key = web.AppKey("sessions", Sessions)
# RESPONDER_SECRET_KEY, or in development this process's own: derive_key(it, purpose).
secret_key = web.AppKey("secret_key", str)
VIEWER: web.RequestKey[Viewer | None] = web.RequestKey("viewer")


def viewer_of(request: web.Request) -> Viewer | None:
    """The signed-in person, or None (read once per request by the middleware)."""
    return request.get(VIEWER)


def csrf_ok(request: web.Request, viewer: Viewer, form: object) -> bool:
    """Whether a change carries this session's CSRF token (form field or header)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and hasattr(form, "get"):
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), viewer.csrf.encode())
