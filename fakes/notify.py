"""A GOV.UK Notify API on 127.0.0.1 that checks what it is sent as Notify does, and can
misbehave on cue.

It speaks Notify's REST API v2 (``POST /v2/notifications/email``, ``POST
/v2/notifications/sms``, ``GET /v2/notifications?reference=``):

- Authorisation as Notify checks it: ``Authorization: Bearer <JWT>``, HS256, signed with
  the secret of one of the service's API keys, ``iss`` the service id, ``iat`` within 30
  seconds of now. 401 without a bearer token, 403 ``AuthError`` otherwise, with Notify's
  messages.
- The body as Notify validates it: recipient present and plausible, ``template_id`` a
  template of the service and of the right type, every placeholder of the template in
  ``personalisation``, ``reference`` a string. 400 with Notify's error body otherwise:
  ``{"status_code": 400, "errors": [{"error": "BadRequestError", "message": ...}]}``.
- Notify's rate limit: a token bucket per key type (3,000 a minute, at most 1,001 at
  once), 429 ``RateLimitError`` past it.

Accepted messages are recorded; Notify does not refuse a reference it has seen before,
and neither does this fake, but ``duplicates()`` lists them so tests can assert there
are none. Like the fake Bot Connector it answers scripted failures first (``failures``),
then random ones at set rates (``fault_rates``), after ``latency``; a 429 carries
Retry-After, and a request arriving inside that window counts as a violation.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

CLOCK_SKEW = "Error: Your system clock must be accurate to within 30 seconds"
KEY_NOT_FOUND = "Invalid token: API key not found"

_EMAIL = re.compile(r"^[^\s@<>(),;:\"\[\]]+@[^\s@<>(),;:\"\[\]]+\.[A-Za-z]{2,}$")
_PLACEHOLDER = re.compile(r"\(\(([^()]+)\)\)")


@dataclass
class Template:
    id: str
    type: str  # email | sms
    body: str
    subject: str = ""

    @property
    def fields(self) -> list[str]:
        return list(dict.fromkeys(_PLACEHOLDER.findall(self.subject + " " + self.body)))

    def render(self, personalisation: dict[str, Any]) -> tuple[str, str]:
        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: str(personalisation.get(m.group(1), "")), text)

        return fill(self.subject), fill(self.body)


@dataclass
class ApiKey:
    name: str
    key_type: str  # normal (live) | team | test
    secret: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Fault:
    status: int
    retry_after: float | None = None
    # Accept and record the message, then answer ``status``: the answer was lost.
    lost: bool = False


@dataclass
class Accepted:
    id: str
    type: str  # email | sms
    to: str
    template_id: str
    personalisation: dict[str, Any]
    reference: str | None
    key_type: str
    at: float  # monotonic


@dataclass
class Arrival:
    method: str
    path: str
    at: float  # monotonic, when the request arrived (before any latency)
    status: int = 0  # what it was answered


def example_templates() -> dict[str, Template]:
    """Templates like a council's, with the ids of examples/council.yaml."""
    base = "2c6b6b4e-1f4d-4a4e-9a56-0d7f1f6a10"
    received = (
        "We received your report ((reference)) of ((type)) at ((address)) on ((report_date))."
    )
    completed = (
        "Your report ((reference)) of ((type)) at ((address)) on ((report_date)) is "
        "((status)): ((outcome))."
    )
    return {
        t.id: t
        for t in (
            Template(base + "01", "email", received, "Report ((reference)) received"),
            Template(base + "02", "sms", received),
            Template(base + "03", "email", completed, "Report ((reference)) ((status))"),
            Template(base + "04", "sms", completed),
        )
    }


@dataclass
class FakeNotify:
    service_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    keys: list[ApiKey] = field(
        default_factory=lambda: [
            ApiKey("responder-live", "normal"),
            ApiKey("responder-test", "test"),
        ]
    )
    templates: dict[str, Template] = field(default_factory=example_templates)
    accepted: list[Accepted] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (status, message)
    failures: deque[Fault] = field(default_factory=deque)
    # Random failure rates: (share of 5xx, share of 429, Retry-After seconds).
    fault_rates: tuple[float, float, float] = (0.0, 0.0, 1.0)
    latency: float = 0.0
    # Notify's limit per key type; None: no limit.
    rate_per_minute: int | None = 3000
    # A request this soon after a 429 was answered may have left before the 429 arrived.
    grace: float = 0.05
    url: str = ""
    retry_after_violations: int = 0
    _blocked: tuple[float, float] = (0.0, 0.0)  # (429 answered at, blocked until)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _changed: asyncio.Condition | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def api_key(self, key_type: str = "normal") -> str:
        """The key string a service is given: ``<key name>-<service id>-<secret>``."""
        key = next(k for k in self.keys if k.key_type == key_type)
        return f"{key.name}-{self.service_id}-{key.secret}"

    def fail(self, *statuses: int, retry_after: float | None = None) -> None:
        for status in statuses:
            self.failures.append(Fault(status, retry_after if status == 429 else None))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/notifications/email", self._email)
        app.router.add_post("/v2/notifications/sms", self._sms)
        app.router.add_get("/v2/notifications", self._list)
        return app

    # -- what tests look at ---------------------------------------------------------------------

    def duplicates(self) -> list[str]:
        counts = Counter(a.reference for a in self.accepted if a.reference)
        return [reference for reference, n in counts.items() if n > 1]

    def to(self, address: str) -> list[Accepted]:
        return [a for a in self.accepted if a.to == address]

    async def wait_for(self, predicate, count: int = 1, within: float = 10.0) -> list[Accepted]:
        """Wait until at least ``count`` accepted messages satisfy ``predicate``."""
        condition = self._condition()

        def matching() -> list[Accepted]:
            return [a for a in self.accepted if predicate(a)]

        async with condition:
            await asyncio.wait_for(condition.wait_for(lambda: len(matching()) >= count), within)
        return matching()

    async def wait_for_refusals(self, count: int = 1, within: float = 10.0) -> None:
        condition = self._condition()
        async with condition:
            await asyncio.wait_for(condition.wait_for(lambda: len(self.refused) >= count), within)

    # -- the API --------------------------------------------------------------------------------

    async def _email(self, request: web.Request) -> web.Response:
        return await self._send(request, "email")

    async def _sms(self, request: web.Request) -> web.Response:
        return await self._send(request, "sms")

    async def _send(self, request: web.Request, kind: str) -> web.Response:
        arrival = self._arrive(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        key, refusal = self._authenticate(request)
        if refusal is not None:
            return await self._answer(arrival, refusal)
        assert key is not None
        fault = self._fault()
        if fault is not None and not fault.lost:
            return await self._answer(arrival, self._fault_response(fault))
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return await self._answer(
                arrival, _error(400, "BadRequestError", "Invalid JSON supplied in POST data")
            )
        problem = _schema_problem(body, kind)
        if problem is not None:
            return await self._answer(arrival, _error(400, "ValidationError", problem))
        limited = self._rate_limited(key)
        if limited is not None:
            return await self._answer(arrival, limited)
        template = self.templates.get(body["template_id"])
        if template is None:
            return await self._answer(arrival, _error(400, "BadRequestError", "Template not found"))
        if template.type != kind:
            message = f"{template.type} template is not suitable for {kind} notification"
            return await self._answer(arrival, _error(400, "BadRequestError", message))
        personalisation = body.get("personalisation") or {}
        missing = [f for f in template.fields if personalisation.get(f) in (None, "")]
        if missing:
            message = "Missing personalisation: " + ", ".join(missing)
            return await self._answer(arrival, _error(400, "BadRequestError", message))
        recipient_problem = _recipient_problem(body, kind)
        if recipient_problem is not None:
            return await self._answer(arrival, _error(400, "ValidationError", recipient_problem))

        item = Accepted(
            str(uuid.uuid4()),
            kind,
            body["email_address" if kind == "email" else "phone_number"],
            template.id,
            dict(personalisation),
            body.get("reference"),
            key.key_type,
            time.monotonic(),
        )
        await self._record(item)
        if fault is not None:  # accepted, but the answer is lost on the way back
            return await self._answer(arrival, self._fault_response(fault))
        subject, text = template.render(personalisation)
        content: dict[str, Any] = {"body": text}
        if kind == "email":
            content |= {
                "subject": subject,
                "from_email": "council@notifications.service.gov.uk",
                "one_click_unsubscribe_url": None,
            }
        else:
            content["from_number"] = "GOVUK"
        answer = {
            "id": item.id,
            "reference": item.reference,
            "content": content,
            "uri": f"{self.url.rstrip('/')}/v2/notifications/{item.id}",
            "template": {
                "id": template.id,
                "version": 1,
                "uri": f"{self.url.rstrip('/')}/v2/template/{template.id}",
            },
            "scheduled_for": None,
        }
        return await self._answer(arrival, web.json_response(answer, status=201))

    async def _list(self, request: web.Request) -> web.Response:
        arrival = self._arrive(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        key, refusal = self._authenticate(request)
        if refusal is not None:
            return await self._answer(arrival, refusal)
        assert key is not None
        five, _, _ = self.fault_rates
        if random.random() < five:
            return await self._answer(arrival, self._fault_response(Fault(500)))
        reference = request.query.get("reference")
        test_key = key.key_type == "test"
        found = [
            a
            for a in reversed(self.accepted)
            if (reference is None or a.reference == reference)
            and (a.key_type == "test") == test_key
        ]
        notifications = [
            {
                "id": a.id,
                "reference": a.reference,
                "type": a.type,
                "status": "sending",
                "template": {"id": a.template_id, "version": 1},
            }
            for a in found[:250]
        ]
        return await self._answer(
            arrival, web.json_response({"notifications": notifications, "links": {}})
        )

    # -- checks ---------------------------------------------------------------------------------

    def _arrive(self, request: web.Request) -> Arrival:
        now = time.monotonic()
        answered_at, until = self._blocked
        if answered_at + self.grace <= now < until:
            self.retry_after_violations += 1
        arrival = Arrival(request.method, request.path, now)
        self.arrivals.append(arrival)
        return arrival

    def _authenticate(self, request: web.Request) -> tuple[ApiKey | None, web.Response | None]:
        header = request.headers.get("Authorization")
        if not header:
            return None, _error(
                401, "AuthError", "Unauthorized: authentication token must be provided"
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, _error(
                401, "AuthError", "Unauthorized: authentication bearer scheme must be used"
            )
        token = token.strip()
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None, _error(403, "AuthError", "Invalid token: signature, api token not found")
        if algorithm != "HS256":
            return None, _error(403, "AuthError", "Invalid token: algorithm used is not HS256")
        issuer = claims.get("iss")
        if not issuer:
            return None, _error(403, "AuthError", "Invalid token: iss field not provided")
        try:
            uuid.UUID(str(issuer))
        except ValueError:
            return None, _error(
                403, "AuthError", "Invalid token: service id is not the right data type"
            )
        if str(issuer) != self.service_id:
            return None, _error(403, "AuthError", "Invalid token: service not found")
        for key in self.keys:
            try:
                verified = jwt.decode(
                    token, key.secret, algorithms=["HS256"], options={"verify_iat": False}
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                break
            issued = verified.get("iat")
            if not isinstance(issued, int | float) or abs(time.time() - issued) > 30:
                return None, _error(403, "AuthError", CLOCK_SKEW)
            return key, None
        return None, _error(403, "AuthError", KEY_NOT_FOUND)

    def _fault(self) -> Fault | None:
        if self.failures:
            return self.failures.popleft()
        five, four29, after = self.fault_rates
        roll = random.random()
        if roll < five:
            return Fault(random.choice([500, 502, 503]))
        if roll < five + four29:
            return Fault(429, after)
        return None

    def _fault_response(self, fault: Fault) -> web.Response:
        if fault.status == 429:
            return self._too_many(fault.retry_after, "normal")
        if fault.status < 500:
            return _error(fault.status, "BadRequestError", "scripted failure")
        if fault.status == 500:
            return _error(fault.status, "Exception", "Internal server error")
        # A load balancer's answer: not Notify's JSON.
        return web.Response(status=fault.status, text="<html><body>Bad gateway</body></html>")

    def _too_many(self, retry_after: float | None, key_type: str) -> web.Response:
        rate = self.rate_per_minute or 3000
        message = (
            f"Exceeded rate limit for key type {key_type.upper()} of {rate} requests per 60 seconds"
        )
        response = _error(429, "RateLimitError", message)
        if retry_after is not None:
            response.headers["Retry-After"] = f"{retry_after:g}"
            now = time.monotonic()
            self._blocked = (now, max(self._blocked[1], now + retry_after))
        return response

    def _rate_limited(self, key: ApiKey) -> web.Response | None:
        """Notify's token bucket: refills at rate/60 a second, holds min(rate/3 + 1, 1001)."""
        if self.rate_per_minute is None:
            return None
        capacity = min(math.ceil(self.rate_per_minute / 3) + 1, 1001)
        refill = self.rate_per_minute / 60.0
        now = time.monotonic()
        tokens, then = self._buckets.get(key.key_type, (float(capacity), now))
        tokens = min(capacity, tokens + (now - then) * refill)
        if tokens < 1:
            self._buckets[key.key_type] = (tokens, now)
            return self._too_many(math.ceil((1 - tokens) / refill), key.key_type)
        self._buckets[key.key_type] = (tokens - 1, now)
        return None

    # -- bookkeeping ----------------------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _record(self, item: Accepted) -> None:
        async with self._condition():
            self.accepted.append(item)
            self._condition().notify_all()

    async def _answer(self, arrival: Arrival, response: web.Response) -> web.Response:
        arrival.status = response.status
        if 400 <= response.status < 500 and response.status != 429:
            text = response.text or ""
            async with self._condition():
                self.refused.append((response.status, text))
                self._condition().notify_all()
        return response


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response(
        {"status_code": status, "errors": [{"error": error, "message": message}]}, status=status
    )


def _schema_problem(body: dict[str, Any], kind: str) -> str | None:
    """Notify's JSON-schema checks, in its words."""
    recipient = "email_address" if kind == "email" else "phone_number"
    for name in (recipient, "template_id"):
        if name not in body:
            return f"{name} is a required property"
    if not isinstance(body[recipient], str):
        return f"{recipient} {body[recipient]!r} is not of type string"
    try:
        uuid.UUID(str(body["template_id"]))
    except ValueError:
        return "template_id is not a valid UUID"
    if "personalisation" in body and not isinstance(body["personalisation"], dict):
        return f"personalisation {body['personalisation']!r} is not of type object"
    if body.get("reference") is not None and not isinstance(body["reference"], str):
        return f"reference {body['reference']!r} is not of type string, null"
    return None


def _recipient_problem(body: dict[str, Any], kind: str) -> str | None:
    if kind == "email":
        if not _EMAIL.match(body["email_address"].strip()):
            return "email_address Not a valid email address"
        return None
    digits = re.sub(r"[\s()\-.]", "", body["phone_number"])
    if re.search(r"[^\d+]", digits):
        return "phone_number Must not contain letters or symbols"
    for prefix in ("+44", "0044", "44"):
        if digits.startswith(prefix):
            digits = "0" + digits[len(prefix) :]
            break
    if not re.fullmatch(r"07\d{9}", digits):
        return "phone_number Not a UK mobile number"
    return None
