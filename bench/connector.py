"""A fake Bot Connector for the benchmarks, served by ``python -m bench.server connector``.

It answers the Bot Connector REST calls a bot makes (the logic of fakes/connector.py,
without the scripted failures): POST an activity to a conversation or as a reply (201 with
a new id), PUT to update one (200). Each answer waits ``latency`` seconds, as Teams' bot
service takes a while. Every request is logged with the ``time.monotonic()`` at which it
arrived, which is what Teams' rate limits count, and the task ids its card refers to
(``"taskId": n`` in the card's Action.Execute data).

The log is read from another process over ``GET /bench/log?since=N`` (entries N onwards).
``time.monotonic()`` is CLOCK_MONOTONIC on Linux, the same clock in every process, so a
client can compare these times with its own.

Arrival times are only as good as this process is prompt: the pacer sends up to 50 cards
at once, and the handlers run one after another, so each one is kept cheap (a card's body
is searched, not parsed: parsing and walking 50 cards of ~10 KB delayed the last
timestamps of a burst by tens of milliseconds, which showed up as limit breaches that
Responder had not committed). ``bench/server.py`` also turns the cyclic garbage
collector off in this process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import astuple, dataclass
from typing import Any

from aiohttp import web

CARD_TYPE = b"application/vnd.microsoft.card.adaptive"
_TASK_ID = re.compile(rb'"taskId":\s*(\d+)')


@dataclass(frozen=True)
class Arrival:
    method: str  # POST (a new activity) or PUT (an update in place)
    conversation: str
    at: float  # time.monotonic() when the request arrived
    card: bool  # the activity carries an Adaptive Card
    task_ids: tuple[int, ...]  # tasks the card refers to, in order of appearance
    text: str | None = None  # the text of an activity without a card

    @classmethod
    def from_json(cls, row: list[Any]) -> Arrival:
        method, conversation, at, card, task_ids, text = row
        return cls(method, conversation, at, card, tuple(task_ids), text)


def task_ids(body: bytes) -> tuple[int, ...]:
    """Every ``taskId`` in a serialised activity, first appearance first."""
    return tuple(dict.fromkeys(int(n) for n in _TASK_ID.findall(body)))


class BenchConnector:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.log: list[Arrival] = []
        self._ids = itertools.count(1)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v3/conversations/{conv}/activities", self._post)
        app.router.add_post("/v3/conversations/{conv}/activities/{reply_to}", self._post)
        app.router.add_put("/v3/conversations/{conv}/activities/{aid}", self._put)
        app.router.add_get("/bench/log", self._log)
        return app

    async def _arrived(self, request: web.Request) -> None:
        at = time.monotonic()
        body = await request.read()
        card = CARD_TYPE in body
        # Text replies are small: parse those; cards only need their task ids.
        text = None if card else json.loads(body).get("text")
        ids = task_ids(body) if card else ()
        self.log.append(Arrival(request.method, request.match_info["conv"], at, card, ids, text))
        if self.latency:
            await asyncio.sleep(self.latency)

    async def _post(self, request: web.Request) -> web.Response:
        await self._arrived(request)
        return web.json_response({"id": f"act-{next(self._ids)}"}, status=201)

    async def _put(self, request: web.Request) -> web.Response:
        await self._arrived(request)
        return web.json_response({"id": request.match_info["aid"]}, status=200)

    async def _log(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response([astuple(a) for a in self.log[since:]])
