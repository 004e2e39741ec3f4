"""A webhook subscriber on 127.0.0.1 that checks Responder's signature as a receiver would,
records what it is sent, and can misbehave on cue.

It checks each POST the way docs/webhooks.md tells a receiver to (written out here, not
imported from Responder, so a mistake in the signing code cannot hide itself):

- ``Responder-Signature: t=<ts>,v1=<hex>``; ``v1`` must equal HMAC-SHA256(secret,
  ``<ts>.<raw body>``), compared in constant time; ``t`` must equal ``Responder-Timestamp``
  and be within ``tolerance`` seconds of ``now()`` (the test's clock);
- ``Content-Type: application/json``; ``Responder-Event-Id`` equal to the body's ``id``.

A request that fails a check is answered 401 and recorded with ``problem`` set. Otherwise
it answers the scripted ``answers`` first (``Answer(status, retry_after, delay, body)``),
then ``default``. Every request is in ``requests``; ``events`` is what a careful receiver
keeps: each event id once, in the order first accepted (2xx), the repeats counted in
``repeats``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Answer:
    status: int = 200
    retry_after: str | None = None  # the Retry-After header, as sent
    delay: float = 0.0  # seconds before answering (after the event was taken, if 2xx)
    body: str = ""
    location: str | None = None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes
    answered: int
    problem: str | None = None  # why the signature or headers were refused

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def event_id(self) -> str | None:
        return self.headers.get("Responder-Event-Id")


@dataclass
class FakeSubscriber:
    secret: str
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    tolerance: float = 300.0
    default: Answer = field(default_factory=Answer)
    answers: deque[Answer] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    repeats: int = 0
    url: str = ""
    _changed: asyncio.Condition | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        return app

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    # -- what tests look at ---------------------------------------------------------------------

    def ids(self) -> list[str]:
        return [e["id"] for e in self.events]

    def of_task(self, task_id: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["task"]["id"] == task_id]

    def problems(self) -> list[str]:
        return [r.problem for r in self.requests if r.problem]

    async def wait_for(
        self, predicate: Callable[[FakeSubscriber], bool], within: float = 10.0
    ) -> None:
        condition = self._condition()
        async with condition:
            await asyncio.wait_for(condition.wait_for(lambda: predicate(self)), within)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _changed_now(self) -> None:
        condition = self._condition()
        async with condition:
            condition.notify_all()

    # -- the receiving end ----------------------------------------------------------------------

    def check(self, headers: dict[str, str], raw: bytes) -> str | None:
        """Why this delivery must not be trusted, or None: the receiver's recipe."""
        if headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return "Content-Type is not application/json"
        parts = dict(
            item.split("=", 1)
            for item in headers.get("Responder-Signature", "").split(",")
            if "=" in item
        )
        timestamp, given = parts.get("t", ""), parts.get("v1", "")
        if not timestamp.isdigit() or not given:
            return "no signature"
        if timestamp != headers.get("Responder-Timestamp"):
            return "the signed time is not Responder-Timestamp"
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, given):
            return "bad signature"
        if abs(self.now().timestamp() - int(timestamp)) > self.tolerance:
            return "too old (or from the future)"
        try:
            body = json.loads(raw)
        except ValueError:
            return "not JSON"
        if str(body.get("id")) != headers.get("Responder-Event-Id"):
            return "Responder-Event-Id is not the body's id"
        return None

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = dict(request.headers)
        problem = self.check(headers, raw)
        answer = Answer(401, body="signature refused") if problem else self._next()
        entry = Request(request.path, headers, raw, answer.status, problem)
        self.requests.append(entry)
        if 200 <= answer.status < 300:
            body = json.loads(raw)
            if body["id"] in self.ids():
                self.repeats += 1
            else:
                self.events.append(body)
        await self._changed_now()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        out: dict[str, str] = {}
        if answer.retry_after is not None:
            out["Retry-After"] = answer.retry_after
        if answer.location is not None:
            out["Location"] = answer.location
        return web.Response(status=answer.status, text=answer.body, headers=out)

    def _next(self) -> Answer:
        return self.answers.popleft() if self.answers else self.default
