"""Fuzz card clicks (``invoke`` / ``adaptiveCard/action``) with hostile data and actors (issue 13).

``python -m bench.fuzz_cards [--quick] [--invokes N] [--seed S] [--database sqlite|postgresql]``

For each database (SQLite, then PostgreSQL; ``--database`` picks one), starts Responder as a
process (``bench/server.py responder --background --no-scheduler --log-level INFO``: no
MicrosoftAppId, so unauthenticated local mode; its stdout and stderr captured), a fake Bot
Connector in this process (``fakes/connector.py``) as every activity's ``serviceUrl``,
and then:

1. **seed**: installs every person of ``examples/council.yaml`` and a stranger (a
   ``conversationUpdate`` each), reports tasks through ``POST /api/tasks`` (the intake key
   ``bench``) of every type over the four wards, each with a description and an address
   carrying a unique ``zt<hex>`` marker, and drives some through legitimate clicks by their
   assignee (accept; accept, start; accept, complete ``resolved``; accept, start, update,
   complete) so that tasks are unassigned, assigned, accepted, in progress and completed;
   cllr-hughes follows some Northgate cases. The **targets** are the tasks of team
   ``sc-north`` (wards Northgate and Eastwood).
2. **hostile** (two phases, before and after 3): ``--invokes`` x 0.3 each, from actors who
   may never see or change the targets: a stranger (an aadObjectId not in the council file,
   or none), ``dan`` and ``erin`` (officers of sc-south), ``frank`` (manager of ``green``
   only) and ``cllr-patel`` (councillor of Southmere and Riverside). Their ``taskId`` is a
   target's (as an int, a string, a float, a reference, a list ...) or a hostile value.
3. **allowed**: ``--invokes`` x 0.4 from ``bob``, ``carol``, ``alice`` and ``cllr-hughes``
   on any task, with the same hostile inputs (and some valid ones, so tasks move).

Each invoke has a random verb (the card verbs, unknown ones, non-strings, none), a ``taskId``
and a ``version`` of every JSON type and size (0, negative, 2**63-1, 2**63, 10**30, floats,
bools, null, lists, 5000-digit numbers, digit strings), inputs (``note``, ``outcome``,
``reason``, ``officer``, ``type``, ``location``, ``description``, ``photos``) that are huge
(100 KB), hold NULs and control characters, lone surrogates, RTL overrides, markdown / HTML /
template injection or the wrong JSON type, missing and unknown fields, and odd ``value`` /
``action`` / ``data`` shapes (missing, null, a list, a string); a few activities are
malformed outright. Every string sent carries a unique ``zq<hex>`` marker.

Checks, each a count whose goal is 0:

- **5xx**: an HTTP status >= 500;
- **bad answers**: an invoke not answered 200 with a JSON object ``{"statusCode": int,
  "type": "application/vnd.microsoft.card.adaptive" | "application/vnd.microsoft.error",
  "value": ...}`` (an error's value with ``code`` and ``message``); a malformed activity may
  be a 4xx with a JSON ``error`` and ``message`` instead;
- **unauthorised changes**: the database read directly (SQLAlchemy, read-only) before and
  after each hostile phase, once the outbox owes nothing more for the targets (or after
  5 s: Teams' pacing can hold cards longer): per target its status, assignee, version,
  priority and photo list, its number of events (but the dispatcher's "undelivered") and
  of stored photos, and who follows it; every difference counts (the same snapshots
  around the allowed phase give ``allowed_changes``, for information: they see changes);
- **content leaks**: a hostile actor's answer (or anything the bot sent to a hostile
  actor's conversation during a hostile phase) holding a target's reference, its
  description's or address's marker, a marker of text someone else submitted, or, for an
  invoke naming a target, its assignee's name;
- **log leaks**: markers of submitted text found in the server's stdout or stderr (logged at
  INFO, as ``responder serve`` does).

Results go to ``bench/results/fuzz_cards.json`` (``card_fuzz_5xx``,
``card_fuzz_unauthorised_changes``, ``card_fuzz_log_leaks``, ... summed over the databases;
the figures of each under ``databases``). PostgreSQL is the benches' own database
(``responder_bench``, or ``$BENCH_POSTGRES_URL`` / ``--postgres-url``): its ``public`` schema
is DROPPED and recreated first; a database named ``test`` is refused. Exit status: 0 all
counts 0, 1 any failure, 2 run invalid (a server that did not start, seeding that did not
reach the statuses, too few invokes answered).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import (
    COUNCIL_FILE,
    RESULTS,
    ServerStartError,
    in_parallel,
    machine,
    make_bodies,
    print_rows,
    server_process,
)
from bench.fuzz import INJECTION, MAX_BODY, UNICODE, Raw, encode, nested
from bench.server import BENCH_KEY_SECRET
from fakes import teams as teams_json  # Teams activity JSON
from fakes.connector import FakeConnector
from responder.config import load_council
from responder.domain.reference import format_reference
from responder.store.db import async_url
from responder.store.schema import follows, outbox, photos, task_events, tasks

POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/responder_bench"
)
AUTH = f"Bearer {BENCH_KEY_SECRET}"
CARD = "application/vnd.microsoft.card.adaptive"
ERROR = "application/vnd.microsoft.error"

TARGET_TEAM = "sc-north"  # wards Northgate and Eastwood; officers bob, carol; manager alice
HOSTILE = ("stranger", "nobody", "dan", "erin", "frank", "cllr-patel")  # nobody: no aadObjectId
ALLOWED = ("bob", "carol", "alice", "cllr-hughes")
VERBS = (
    "accept",
    "start",
    "update",
    "complete",
    "handback",
    "reassign",
    "priority",
    "cancel",
    "refresh",
    "open",
    "case",
    "follow",
    "unfollow",
    "attach",
    "raise",
)
INPUTS = (
    "note",
    "updateNote",
    "completeNote",
    "outcome",
    "reason",
    "cancelReason",
    "officer",
    "priority",
    "type",
    "location",
    "description",
    "photos",
)
HUGE = 100_000  # characters of a huge input
MARKER = re.compile(r"z[qt][0-9a-f]{10}")

# Values of any JSON type for a taskId / version (Raw: spliced into the JSON text as is).
ODD_NUMBERS: list[object] = [
    0,
    -1,
    -(2**31),
    2**31,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    Raw("1" + "0" * 400),
    Raw("9" * 4300),
    Raw("9" * 5000),
    Raw("1e309"),
    Raw("-1e309"),
    Raw("NaN"),
    Raw("Infinity"),
    1.0,
    3.5,
    -0.0,
    1e300,
    True,
    False,
    None,
    [],
    [1],
    {},
    {"id": 1},
    "",
    "1",
    "-1",
    "0x10",
    "1e3",
    " 7 ",
    "١٢٣",
    "9" * 30,
    "9" * 100_000,
]


@dataclass
class Invoke:
    kind: str  # what was done, for the samples
    actor: str
    hostile: bool
    body: bytes
    markers: frozenset[str]  # markers this invoke carries (its own echo is no leak)
    target: int | None = None  # the target the taskId denotes, if any
    malformed: bool = False  # a broken activity: a precise 4xx is a right answer too


@dataclass
class Tally:
    invokes: int = 0
    hostile: int = 0
    allowed: int = 0
    by_http: Counter = field(default_factory=Counter)
    by_status_code: Counter = field(default_factory=Counter)
    server_errors: int = 0
    bad_answers: int = 0
    content_leaks: int = 0
    transport_errors: int = 0
    unauthorised_changes: int = 0
    log_leaks: int = 0
    log_leaks_by_field: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    seen: Counter = field(default_factory=Counter)

    def note(self, text: str) -> None:
        """Keep a sample: up to 8 of each kind (its first word), so every kind shows."""
        kind = text.split(" ", 1)[0]
        self.seen[kind] += 1
        if self.seen[kind] <= 8:
            self.samples.append(text[:400])


@dataclass
class TaskInfo:
    id: int
    team: str
    ward: str
    status: str
    assignee: str | None
    version: int
    reference: str
    markers: tuple[str, ...]  # of its description and address


# --- the generator ------------------------------------------------------------------------


class Generator:
    def __init__(
        self, seed: int, service_url: str, tasks_: list[TaskInfo], target_ids: set[int]
    ) -> None:
        self.rng = random.Random(seed)
        self.service_url = service_url
        self.serial = 0
        self.target_ids = target_ids
        self.update(tasks_)
        self.council = load_council(COUNCIL_FILE)
        self.types = [t.code for t in self.council.file.task_types]
        # marker -> (field, actor group, actor)
        self.submitted: dict[str, tuple[str, str, str]] = {}
        self.actor = ""

    def update(self, tasks_: list[TaskInfo]) -> None:
        """The tasks as they are now (versions and assignees move in the allowed phase)."""
        self.tasks = tasks_
        self.by_id = {t.id: t for t in tasks_}
        self.targets = [t for t in tasks_ if t.id in self.target_ids]

    def marker(self, where: str, hostile: bool) -> str:
        self.serial += 1
        mark = f"zq{self.serial:010x}"
        self.submitted[mark] = (where, "hostile" if hostile else "allowed", self.actor)
        return mark

    def hostile_piece(self) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.45:
            return rng.choice(UNICODE)
        if pick < 0.85:
            return rng.choice(INJECTION)
        if pick < 0.95:
            return "".join(chr(rng.randint(0, 0x1F)) for _ in range(rng.randint(1, 20)))
        return "".join(chr(rng.randint(1, 0x2FFFF)) for _ in range(rng.randint(1, 40)))

    def text(self, where: str, hostile: bool, marks: set[str]) -> str:
        """Hostile text with a unique marker at its start (and, if huge, in its middle)."""
        mark = self.marker(where, hostile)
        marks.add(mark)
        r = self.rng.random()
        if r < 0.08:
            # ~100 KB, mostly ASCII so the JSON stays ~100 KB; hostile pieces sprinkled in.
            chunks = [mark, " "]
            size = 0
            while size < HUGE:
                piece = "A" * self.rng.randint(200, 2000) + self.hostile_piece()
                chunks.append(piece)
                size += len(piece)
            middle = self.marker(where, hostile)
            marks.add(middle)
            chunks.insert(len(chunks) // 2, f" {middle} ")
            return "".join(chunks)
        if r < 0.13:
            return f"{mark} " + "é" * self.rng.choice([999, 1001, 5000])  # at / past limits
        return f"{mark} {self.hostile_piece()}"

    def value(self, name: str, hostile: bool, marks: set[str]) -> object:
        """A value for one input of the card: hostile text, wrong JSON type or a valid one."""
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            return rng.choice([None, 0, -1, 1.5, True, [], ["a"], {}, {"a": 1}, Raw("NaN")])
        if r < 0.35:
            valid = {
                "note": ["Cleared, bags left for collection.", ""],
                "updateNote": ["Two bags cleared.", ""],
                "completeNote": ["Done, area swept.", ""],
                "cancelReason": ["A duplicate of an earlier report.", ""],
                "priority": ["urgent", "high", "normal", "low", "URGENT", "P1"],
                "outcome": ["resolved", "no-action", "referred", "private-land", "RESOLVED"],
                "reason": ["Needs a van.", ""],
                "officer": ["bob", "carol", "dan", "erin", "alice", "grace", "nobody", ""],
                "type": self.types,
                "location": ["Northgate", "Southmere", "52.2, 0.1", "the park in Eastwood"],
                "description": ["A sofa on the pavement.", ""],
                "photos": [[], ["tok"], ["a" * 64], ["a" * 65]],
            }[name]
            return rng.choice(valid)
        if name == "photos":
            k = rng.choice([1, 2, 11, 1000])
            return [self.text("photos", hostile, marks)[: rng.choice([10, 64, 65, 500])]] * k
        return self.text(name, hostile, marks)

    def task_id(self, hostile: bool, marks: set[str]) -> tuple[object, int | None, str]:
        """(taskId, the target it denotes, what kind of id)."""
        rng = self.rng
        pool = self.targets if hostile else self.tasks
        r = rng.random()
        if pool and r < 0.45:
            task = rng.choice(pool)
            return task.id, (task.id if task.id in self.target_ids else None), "existing"
        if pool and r < 0.6:
            task = rng.choice(pool)
            shape = rng.choice(
                [
                    str(task.id),
                    float(task.id),
                    task.id + 0.5,
                    task.reference,
                    [task.id],
                    {"id": task.id},
                    f" {task.id} ",
                    "0" * 30 + str(task.id),
                ]
            )
            return shape, (task.id if task.id in self.target_ids else None), "existing, odd type"
        if r < 0.65:
            return "missing", None, "missing"
        if r < 0.7:
            return self.text("taskId", hostile, marks), None, "hostile text"
        return rng.choice(ODD_NUMBERS), None, "odd"

    def version(self, task: TaskInfo | None) -> object:
        rng = self.rng
        r = rng.random()
        if task is not None and r < 0.5:
            return task.version  # as seeded: the click passes the stale check when unchanged
        if r < 0.65:
            return "missing"
        if r < 0.75:
            return rng.randint(0, 12)
        return rng.choice(ODD_NUMBERS[:24] + ["1", "", [1]])

    def verb(self, hostile: bool, marks: set[str]) -> object:
        rng = self.rng
        r = rng.random()
        if r < 0.82:
            return rng.choice(VERBS)
        if r < 0.88:
            return rng.choice(["ACCEPT", " accept", "accept\x00", "Cancel", "assign", "delete"])
        if r < 0.93:
            return self.text("verb", hostile, marks)
        return rng.choice([None, 1, True, [], ["accept"], {"verb": "accept"}, "missing"])

    def plausible(self, marks: set[str]) -> tuple[str, str, dict[str, object]]:
        """(actor, verb, data): a click the actor may make on the task as last read (its
        assignee, or alice who manages both street-cleansing teams), with hostile inputs:
        so that hostile text is stored, shown on cards and delivered, not only refused."""
        rng = self.rng
        task = rng.choice(self.tasks)
        if task.assignee in ("bob", "carol") and rng.random() < 0.7:
            actor = task.assignee
            verbs = {
                "assigned": ["accept", "handback"],
                "accepted": ["start", "update", "complete", "handback"],
                "in_progress": ["update", "update", "complete", "handback"],
            }.get(task.status, ["refresh", "update"])
        else:
            actor = "alice"
            # A manager's own buttons too; cancelling is rare, so the open tasks last.
            verbs = ["update", "update", "reassign", "handback", "refresh", "priority"]
            if rng.random() < 0.03:
                verbs = ["cancel"]
        self.actor = actor
        verb = rng.choice(verbs)
        data: dict[str, object] = {"taskId": task.id}
        if rng.random() < 0.5:
            data["version"] = task.version
        inputs = {
            "update": ["note"],
            "complete": ["outcome", "note"],
            "handback": ["reason"],
            "reassign": ["officer", "note"],
            "priority": ["priority"],
            "cancel": ["cancelReason"],
        }.get(verb, ["note"])
        for name in inputs:
            if name == "outcome" and rng.random() < 0.6:
                data[name] = "resolved"
            elif name == "officer" and rng.random() < 0.6:
                data[name] = rng.choice(["bob", "carol"])
            elif name == "priority" and rng.random() < 0.6:
                data[name] = rng.choice(["urgent", "high", "normal", "low"])
            else:
                data[name] = self.value(name, False, marks)
        return actor, verb, data

    def invoke(self, actor: str, hostile: bool) -> Invoke:
        rng = self.rng
        self.actor = actor
        marks: set[str] = set()
        if not hostile and self.tasks and rng.random() < 0.4:
            found = self.plausible(marks)
            actor, verb, data = found
            activity = teams_json.card_action(actor, verb, data, self.service_url)
            return Invoke(f"{verb!r} plausible", actor, False, encode(activity), frozenset(marks))
        verb = self.verb(hostile, marks)
        task_id, target, id_kind = self.task_id(hostile, marks)
        task = self.by_id.get(task_id) if type(task_id) is int else None
        data: dict[str, object] = {}
        if task_id != "missing":
            data["taskId"] = task_id
        version = self.version(task)
        if version != "missing":
            data["version"] = version
        for name in rng.sample(INPUTS, rng.choice([0, 1, 1, 2, 2, 3, 4, 8])):
            data[name] = self.value(name, hostile, marks)
        huge = [k for k, v in data.items() if isinstance(v, str) and len(v) > 10_000]
        for k in huge[2:]:  # at most two huge inputs: the body stays well under 1 MB
            data[k] = data[k][:200]
        for _ in range(rng.choice([0, 0, 0, 1, 3])):
            key = rng.choice(["extra", "__proto__", "taskId ", "TaskId", "constructor", "msteams"])
            data[key] = rng.choice([self.text("extra", hostile, marks), nested(50), None, 7])
        person = actor if actor != "nobody" else "stranger"
        activity = teams_json.card_action(person, "x", data, self.service_url)
        if actor == "nobody":
            activity["from"].pop("aadObjectId")
        action = activity["value"]["action"]
        if verb == "missing":
            action.pop("verb")
        else:
            action["verb"] = verb
        shape = "normal"
        r = rng.random()
        if r < 0.12:
            shape = rng.choice(
                [
                    "no value",
                    "value null",
                    "value list",
                    "value string",
                    "value empty",
                    "action null",
                    "action list",
                    "action string",
                    "data missing",
                    "data null",
                    "data list",
                    "data string",
                    "inputs beside data",
                    "action type odd",
                ]
            )
            value = activity["value"]
            if shape == "no value":
                activity.pop("value")
            elif shape == "value null":
                activity["value"] = None
            elif shape == "value list":
                activity["value"] = [value]
            elif shape == "value string":
                activity["value"] = json.dumps({"action": action}, default=str)[:200]
            elif shape == "value empty":
                activity["value"] = {}
            elif shape == "action null":
                value["action"] = None
            elif shape == "action list":
                value["action"] = [action]
            elif shape == "action string":
                value["action"] = str(verb)
            elif shape == "data missing":
                action.pop("data")
            elif shape == "data null":
                action["data"] = None
            elif shape == "data list":
                action["data"] = list(data.items())[:3]
            elif shape == "data string":
                action["data"] = json.dumps({k: str(v)[:50] for k, v in data.items()})
            elif shape == "inputs beside data":
                value.update({k: v for k, v in data.items() if k != "taskId"})
            else:
                action["type"] = rng.choice([None, "Action.Submit", 7, "x" * 1000])
        malformed = False
        if rng.random() < 0.03:
            malformed = True
            broken = rng.choice(["from", "conversation", "serviceUrl", "type", "channelData"])
            shape = f"activity {broken} broken"
            if broken == "type":
                activity["type"] = rng.choice([None, 7, []])
            elif broken == "channelData":
                activity["channelData"] = rng.choice(["x", [1], 7])
            else:
                activity[broken] = rng.choice([None, "x", 7, []])
        body = encode(activity)
        if len(body) > MAX_BODY:
            malformed = True  # e.g. 1,000 photo tokens twice over: a 413 is right
        else:
            try:
                json.loads(body)
            except (ValueError, RecursionError):
                malformed = True  # a 5000-digit integer: not JSON a parser reads
        kind = f"{verb!r:.30} taskId={id_kind} {str(task_id)[:24]!r} {shape}"
        return Invoke(kind, actor, hostile, body, frozenset(marks), target, malformed)


# --- checking -----------------------------------------------------------------------------


class Checker:
    def __init__(
        self,
        tasks_: list[TaskInfo],
        target_ids: set[int],
        submitted: dict[str, tuple[str, str, str]],
    ) -> None:
        council = load_council(COUNCIL_FILE)
        self.targets = {t.id: t for t in tasks_ if t.id in target_ids}
        self.target_refs = {t.reference: t.id for t in self.targets.values()}
        prefix = council.info.reference_prefix
        self.reference = re.compile(rf"{re.escape(prefix)}-\d+(?!\d)")
        self.target_marks = {m for t in self.targets.values() for m in t.markers}
        self.submitted = submitted
        self.names = {p.id: p.name for p in council.file.people}

    def leaks(self, text: str, actor: str, target: int | None) -> list[str]:
        """What of the targets (or of others' input) ``text`` shows ``actor``."""
        found = [r for r in self.reference.findall(text) if r in self.target_refs]
        for mark in MARKER.findall(text):
            if mark in self.target_marks:
                found.append(f"target text {mark}")
            elif mark in self.submitted and self.submitted[mark][2] != actor:
                found.append(f"someone's input {mark}")
        if target is not None:
            assignee = self.targets[target].assignee
            name = self.names.get(assignee or "")
            if name and name in text:
                found.append(f"assignee {name}")
        return found

    def check(self, inv: Invoke, status: int, raw: bytes, tally: Tally) -> None:
        tally.invokes += 1
        tally.by_http[status] += 1
        what = f"{inv.actor}: {inv.kind} -> {status}"
        answer: Any = None
        with contextlib.suppress(ValueError):
            answer = json.loads(raw)
        if status >= 500:
            tally.server_errors += 1
            tally.note(f"5xx: {what} {raw[:200]!r}")
        elif inv.malformed and 400 <= status < 500:
            if not (
                isinstance(answer, dict)
                and isinstance(answer.get("error"), str)
                and isinstance(answer.get("message"), str)
            ):
                tally.bad_answers += 1
                tally.note(f"4xx not JSON error+message: {what} {raw[:200]!r}")
        elif status != 200:
            tally.bad_answers += 1
            tally.note(f"not 200: {what} {raw[:200]!r}")
        elif not (
            isinstance(answer, dict)
            and type(answer.get("statusCode")) is int
            and answer.get("type") in (CARD, ERROR)
            and isinstance(answer.get("value"), dict)
            and (
                answer["type"] == CARD
                or (
                    isinstance(answer["value"].get("code"), str)
                    and isinstance(answer["value"].get("message"), str)
                )
            )
        ):
            tally.bad_answers += 1
            tally.note(f"bad invoke answer: {what} {raw[:200]!r}")
        else:
            tally.by_status_code[f"{answer['statusCode']} {answer['type'].rsplit('.', 1)[-1]}"] += 1
        if inv.hostile:
            found = self.leaks(raw.decode("utf-8", "replace"), inv.actor, inv.target)
            if found:
                tally.content_leaks += 1
                tally.note(f"content leak to {what}: {found[:4]} {raw[:200]!r}")


# --- the database, read directly ---------------------------------------------------------------


def reader(url: str) -> AsyncEngine:
    """A read-only engine on Responder's database."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        return create_async_engine(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    return create_async_engine(
        async_url(url),
        connect_args={"server_settings": {"default_transaction_read_only": "on"}},
        pool_size=2,
    )


async def read_tasks(engine: AsyncEngine, prefix: str) -> list[TaskInfo]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(tasks).order_by(tasks.c.id))).all()
    return [
        TaskInfo(
            r.id,
            r.team,
            r.ward,
            r.status,
            r.assignee,
            r.version,
            format_reference(prefix, r.id),
            tuple(MARKER.findall(f"{r.description} {r.address}")),
        )
        for r in rows
    ]


async def snapshot(engine: AsyncEngine, ids: list[int]) -> dict[str, Any]:
    """What a hostile actor could change of the targets."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    tasks.c.id,
                    tasks.c.status,
                    tasks.c.assignee,
                    tasks.c.version,
                    tasks.c.priority,
                    tasks.c.photos,
                ).where(tasks.c.id.in_(ids))
            )
        ).all()
        events = dict(
            (
                await conn.execute(
                    select(task_events.c.task_id, func.count())
                    # Not the dispatcher's own "card not delivered" entries (a card
                    # paced for minutes or refused by the connector): nobody's click.
                    .where(task_events.c.task_id.in_(ids), task_events.c.action != "undelivered")
                    .group_by(task_events.c.task_id)
                )
            ).all()
        )
        stored = dict(
            (
                await conn.execute(
                    select(photos.c.task_id, func.count())
                    .where(photos.c.task_id.in_(ids))
                    .group_by(photos.c.task_id)
                )
            ).all()
        )
        followed = (
            await conn.execute(
                select(follows.c.person_id, follows.c.task_id).where(follows.c.task_id.in_(ids))
            )
        ).all()
    return {
        "tasks": {
            r.id: {
                "status": r.status,
                "assignee": r.assignee,
                "version": r.version,
                "priority": r.priority,
                "photos": json.dumps(r.photos, sort_keys=True),
                "events": events.get(r.id, 0),
                "stored_photos": stored.get(r.id, 0),
            }
            for r in rows
        },
        "follows": {(p, t) for p, t in followed},
    }


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    found = []
    for task_id, old in before["tasks"].items():
        new = after["tasks"].get(task_id)
        if new is None:
            found.append(f"task {task_id} gone")
            continue
        for key, value in old.items():
            if new[key] != value:
                found.append(f"task {task_id} {key}: {value!r:.60} -> {new[key]!r:.60}")
    for person, task_id in sorted(after["follows"] - before["follows"]):
        found.append(f"{person} now follows task {task_id}")
    for person, task_id in sorted(before["follows"] - after["follows"]):
        found.append(f"{person} no longer follows task {task_id}")
    return found


async def settle(engine: AsyncEngine, ids: list[int], wait_s: float = 5.0) -> int:
    """Wait until the outbox owes nothing for these tasks; how many rows still do."""
    deadline = time.monotonic() + wait_s
    while True:
        async with engine.connect() as conn:
            owed = (
                await conn.execute(
                    select(func.count()).where(
                        outbox.c.status == "pending", outbox.c.task_id.in_(ids)
                    )
                )
            ).scalar_one()
        if owed == 0 or time.monotonic() > deadline:
            return owed
        await asyncio.sleep(0.25)


# --- talking to the service --------------------------------------------------------------------


async def post_activity(
    session: aiohttp.ClientSession, base: str, activity: dict | bytes
) -> tuple[int, bytes]:
    body = activity if isinstance(activity, bytes) else encode(activity)
    async with session.post(
        f"{base}/api/messages", data=body, headers={"Content-Type": "application/json"}
    ) as resp:
        return resp.status, await resp.read()


async def click(
    session: aiohttp.ClientSession, base: str, url: str, person: str, verb: str, data: dict
) -> bool:
    """A legitimate click; whether it was answered with a card (no error)."""
    status, raw = await post_activity(
        session, base, teams_json.card_action(person, verb, data, url)
    )
    try:
        answer = json.loads(raw)
    except ValueError:
        return False
    return status == 200 and isinstance(answer, dict) and answer.get("type") == CARD


async def seed(
    session: aiohttp.ClientSession,
    base: str,
    url: str,
    engine: AsyncEngine,
    seed_: int,
    run_tag: str,
) -> tuple[list[TaskInfo], list[str]]:
    """People installed, tasks reported and moved on; (tasks, problems)."""
    council = load_council(COUNCIL_FILE)
    problems: list[str] = []
    for person in [p.id for p in council.file.people] + ["stranger"]:
        status, _ = await post_activity(session, base, teams_json.install(person, url))
        if status not in (200, 201):
            problems.append(f"install {person}: HTTP {status}")
    street = [t.code for t in council.file.task_types if t.service == "street-cleansing"]
    other = [t.code for t in council.file.task_types if t.service != "street-cleansing"]
    bodies = make_bodies(48, seed_, run_tag, types=street, reporter=False)
    bodies += make_bodies(12, seed_ + 1, run_tag + "g", types=other, reporter=False)
    rng = random.Random(seed_)
    for i, raw in enumerate(bodies):
        body = json.loads(raw)
        body["description"] = f"zt{rng.getrandbits(40):010x} {body['description']}"
        body["location"]["address"] = f"{i + 1} zt{rng.getrandbits(40):010x} Road"
        async with session.post(
            f"{base}/api/tasks",
            data=json.dumps(body).encode(),
            headers={"Authorization": AUTH, "Content-Type": "application/json"},
        ) as resp:
            if resp.status != 201:
                problems.append(
                    f"POST /api/tasks: HTTP {resp.status} {(await resp.read())[:200]!r}"
                )
    prefix = council.info.reference_prefix
    found = await read_tasks(engine, prefix)

    async def version(task_id: int) -> int:
        return next(t.version for t in await read_tasks(engine, prefix) if t.id == task_id)

    steps = [
        [],
        ["accept"],
        ["accept", "start"],
        ["accept", "complete"],
        ["accept", "start", "update", "complete"],
    ]
    for i, task in enumerate(found):
        actor = task.assignee
        if task.status == "unassigned":  # the green team's queue: grace takes some
            actor = "grace"
        if actor is None:
            continue
        for verb in steps[i % len(steps)]:
            data: dict[str, object] = {"taskId": task.id, "version": await version(task.id)}
            if verb == "complete":
                data["outcome"] = "resolved"
            if verb == "update":
                data["note"] = "Cleared most of it."
            if not await click(session, base, url, actor, verb, data):
                problems.append(f"seeding: {actor} {verb} task {task.id} not answered with a card")
    for task in found:  # cllr-hughes follows the Northgate cases
        if task.ward == "Northgate" and task.id % 2:
            await click(session, base, url, "cllr-hughes", "follow", {"taskId": task.id})
    found = await read_tasks(engine, prefix)
    statuses = Counter(t.status for t in found if t.team == TARGET_TEAM)
    missing = {"assigned", "accepted", "in_progress", "completed"} - set(statuses)
    if missing:
        problems.append(f"no target task {', '.join(sorted(missing))} after seeding: {statuses}")
    return found, problems


async def drive(
    base: str,
    gen: Generator,
    checker: Checker,
    actors: tuple[str, ...],
    hostile: bool,
    count: int,
    concurrency: int,
    tally: Tally,
) -> None:
    async def one(session: aiohttp.ClientSession, inv: Invoke) -> None:
        try:
            status, raw = await post_activity(session, base, inv.body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.transport_errors += 1
            tally.note(f"transport: {inv.actor}: {inv.kind}: {exc!r}")
            return
        if hostile:
            tally.hostile += 1
        else:
            tally.allowed += 1
        checker.check(inv, status, raw, tally)

    await in_parallel(count, concurrency, lambda: gen.invoke(gen.rng.choice(actors), hostile), one)


async def serve_connector() -> tuple[FakeConnector, web.AppRunner]:
    connector = FakeConnector()
    runner = web.AppRunner(connector.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    connector.url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    return connector, runner


def sent_to_hostile(connector: FakeConnector, since: int) -> list[tuple[str, str]]:
    """(conversation, JSON text) of what the bot sent to hostile actors' conversations."""
    conversations = {teams_json.personal_conversation(p) for p in HOSTILE if p != "nobody"}
    return [
        (r.conversation_id, json.dumps(r.activity))
        for r in connector.received[since:]
        if r.conversation_id in conversations
    ]


async def run_database(args: argparse.Namespace, database: str, invokes: int) -> dict[str, Any]:
    """One database's run: seeding, the three phases, the log search."""
    tally = Tally()
    result: dict[str, Any] = {"database": database, "valid": False}
    started = time.monotonic()
    run_tag = f"cards-{int(time.time())}"
    with tempfile.TemporaryDirectory(prefix="responder-fuzz-cards-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'responder.db'}"
        if database == "postgresql":
            from bench.intake import reset_postgres

            url = args.postgres_url
            if url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] == "test":
                result["problems"] = ["refusing the database named 'test' (the test suite's)"]
                return result
            try:
                await reset_postgres(url)
            except Exception as exc:  # noqa: BLE001  (OSError, asyncpg's errors)
                result["problems"] = [f"PostgreSQL unreachable: {exc!r}"]
                return result
        log_path = Path(tmp) / "server.stderr"
        stdout_chunks: list[bytes] = []
        connector, connector_runner = await serve_connector()
        engine: AsyncEngine | None = None
        try:
            with log_path.open("wb") as log_file:
                async with server_process(
                    [
                        "responder",
                        "--database",
                        url,
                        "--config",
                        str(COUNCIL_FILE),
                        "--background",
                        "--no-scheduler",
                        "--log-level",
                        "INFO",
                    ],
                    stderr=log_file,
                ) as server:
                    assert server.process.stdout is not None
                    stdout = server.process.stdout

                    async def drain() -> None:
                        while chunk := await stdout.read(65536):
                            stdout_chunks.append(chunk)

                    drainer = asyncio.create_task(drain())
                    engine = reader(url)
                    timeout = aiohttp.ClientTimeout(total=60)
                    async with aiohttp.ClientSession(timeout=timeout) as session:
                        found, problems = await seed(
                            session, server.base, connector.url, engine, args.seed, run_tag
                        )
                    result["seeded"] = dict(Counter(f"{t.team} {t.status}" for t in found))
                    result["problems"] = problems
                    print(
                        f"[{database}] seeded {len(found)} tasks: "
                        f"{dict(sorted(Counter(t.status for t in found).items()))}",
                        flush=True,
                    )
                    if problems:
                        for p in problems[:10]:
                            print(f"  seeding problem: {p}")
                        return result
                    target_ids = {t.id for t in found if t.team == TARGET_TEAM}
                    gen = Generator(args.seed, connector.url, found, target_ids)
                    checker = Checker(found, target_ids, gen.submitted)
                    ids = sorted(target_ids)
                    hostile_each = int(invokes * 0.3)
                    phases = [
                        ("hostile 1", True, hostile_each),
                        ("allowed", False, invokes - 2 * hostile_each),
                        ("hostile 2", True, hostile_each),
                    ]
                    changes: list[str] = []
                    allowed_changes = 0
                    unsettled = 0
                    for name, hostile, count in phases:
                        print(f"[{database}] {name}: {count} invokes ...", flush=True)
                        if not hostile:
                            # Snapshots around this phase too: the changes the allowed
                            # actors make show that the snapshots see changes at all.
                            await settle(engine, ids)
                            before = await snapshot(engine, ids)
                            await drive(
                                server.base,
                                gen,
                                checker,
                                ALLOWED,
                                False,
                                count,
                                args.concurrency,
                                tally,
                            )
                            await settle(engine, ids)
                            allowed_changes = len(differences(before, await snapshot(engine, ids)))
                            # The tasks as they are now, for phase 3's clicks and checks.
                            now_tasks = await read_tasks(engine, load_council_prefix())
                            gen.update(now_tasks)
                            checker = Checker(now_tasks, target_ids, gen.submitted)
                            continue
                        unsettled += await settle(engine, ids)
                        before = await snapshot(engine, ids)
                        since = len(connector.received)
                        await drive(
                            server.base,
                            gen,
                            checker,
                            HOSTILE,
                            True,
                            count,
                            args.concurrency,
                            tally,
                        )
                        unsettled += await settle(engine, ids)
                        after = await snapshot(engine, ids)
                        diff = differences(before, after)
                        changes += [f"{name}: {d}" for d in diff]
                        for conversation, text in sent_to_hostile(connector, since):
                            actor = conversation.removeprefix("a:personal-")
                            leaked = checker.leaks(text, actor, None)
                            if leaked:
                                tally.content_leaks += 1
                                tally.note(f"sent to {conversation}: {leaked[:4]} {text[:200]}")
                    tally.unauthorised_changes = len(changes)
                    for c in changes[:20]:
                        tally.note(f"unauthorised change: {c}")
                    result["unsettled_outbox_rows"] = unsettled
                    result["allowed_changes"] = allowed_changes
                    result["valid"] = True
                    await asyncio.sleep(0.5)  # the last log lines
                drainer.cancel()
        except ServerStartError as exc:
            result["problems"] = [str(exc)]
            return result
        finally:
            if engine is not None:
                await engine.dispose()
            await connector_runner.cleanup()
        log = b"".join(stdout_chunks) + log_path.read_bytes()
    text = log.decode("utf-8", "replace")
    leaked = sorted({m for m in MARKER.findall(text) if m in gen.submitted})
    tally.log_leaks = len(leaked)
    tally.log_leaks_by_field = Counter(
        f"{gen.submitted[m][1]} {gen.submitted[m][0]}" for m in leaked
    )
    for mark in leaked[:10]:
        at = text.find(mark)
        line_start = text.rfind("\n", 0, at) + 1
        tally.note(f"log leak {gen.submitted[mark]}: {text[line_start : line_start + 300]!r}")
    error_lines = [ln for ln in text.splitlines() if " ERROR " in ln or "Traceback" in ln]
    elapsed = time.monotonic() - started
    answered = tally.invokes
    result.update(
        {
            "valid": result["valid"] and answered >= invokes * 0.99,
            "invokes_sent": invokes,
            "invokes_answered": answered,
            "hostile_invokes": tally.hostile,
            "allowed_invokes": tally.allowed,
            "target_tasks": len(checker.targets),
            "http_statuses": {str(k): v for k, v in sorted(tally.by_http.items())},
            "invoke_status_codes": dict(sorted(tally.by_status_code.items())),
            "5xx": tally.server_errors,
            "bad_answers": tally.bad_answers,
            "unauthorised_changes": tally.unauthorised_changes,
            "content_leaks": tally.content_leaks,
            "log_leaks": tally.log_leaks,
            "log_leaks_by_field": dict(sorted(tally.log_leaks_by_field.items())),
            "inputs_marked": len(gen.submitted),
            "transport_errors": tally.transport_errors,
            "log_bytes": len(log),
            "log_error_lines": len(error_lines),
            "samples": tally.samples,
            "seconds": round(elapsed, 1),
        }
    )
    return result


def load_council_prefix() -> str:
    return load_council(COUNCIL_FILE).info.reference_prefix


# --- the run --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.fuzz_cards", description=__doc__.split("\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="2,000 invokes per database")
    p.add_argument("--invokes", type=int, default=10_000, help="per database (default 10,000)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        action="append",
        help="run on this database only (default: SQLite, then PostgreSQL)",
    )
    p.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help="the PostgreSQL database (default $BENCH_POSTGRES_URL or responder_bench); its "
        "public schema is DROPPED and recreated first",
    )
    p.add_argument("--output", type=Path, default=RESULTS / "fuzz_cards.json")
    return p.parse_args(argv)


FIGURES = (
    ("invokes sent", "invokes_sent", None),
    ("answered", "invokes_answered", None),
    ("from hostile actors", "hostile_invokes", None),
    ("from allowed actors", "allowed_invokes", None),
    ("target tasks (sc-north)", "target_tasks", None),
    ("changes by allowed actors (info)", "allowed_changes", None),
    ("5xx", "5xx", "0"),
    ("bad answers", "bad_answers", "0"),
    ("unauthorised changes", "unauthorised_changes", "0"),
    ("content leaks", "content_leaks", "0"),
    ("log leaks", "log_leaks", "0"),
    ("transport errors", "transport_errors", None),
    ("seconds", "seconds", None),
)
COUNTS = ("5xx", "bad_answers", "unauthorised_changes", "content_leaks", "log_leaks")


async def run(args: argparse.Namespace) -> int:
    invokes = 2000 if args.quick else args.invokes
    databases = args.database or ["sqlite", "postgresql"]
    results = {}
    for database in databases:
        print(f"== {database}: {invokes} invokes", flush=True)
        results[database] = await run_database(args, database, invokes)

    rows = [["figure", "goal", *databases]]
    for label, key, goal in FIGURES:
        rows.append([label, goal or "", *(str(results[d].get(key, "-")) for d in databases)])
    print()
    print_rows(rows)
    for database in databases:
        r = results[database]
        print(f"\n[{database}] HTTP statuses: {r.get('http_statuses')}")
        print(f"[{database}] invoke answers: {r.get('invoke_status_codes')}")
        if r.get("log_leaks_by_field"):
            print(f"[{database}] log leaks by field: {r['log_leaks_by_field']}")
        for p in r.get("problems") or []:
            print(f"[{database}] problem: {p}")
        if r.get("samples"):
            print(f"[{database}] samples:")
            for s in r["samples"]:
                print(f"  {s}")

    valid = all(r["valid"] for r in results.values())

    def total(key: str) -> int | None:
        return sum(r[key] for r in results.values()) if valid else None

    report = {
        "benchmark": "fuzz_cards",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "invokes": invokes,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "databases": databases,
        },
        "card_fuzz_invokes": total("invokes_answered"),
        "card_fuzz_5xx": total("5xx"),
        "card_fuzz_bad_answers": total("bad_answers"),
        "card_fuzz_unauthorised_changes": total("unauthorised_changes"),
        "card_fuzz_content_leaks": total("content_leaks"),
        "card_fuzz_log_leaks": total("log_leaks"),
        "valid": valid,
        "databases": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    if not valid:
        print("RUN INVALID: " + "; ".join(f"{d}: {r.get('problems')}" for d, r in results.items()))
        return 2
    failed = any(r[k] for r in results.values() for k in COUNTS)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
