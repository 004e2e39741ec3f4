"""Open311 GeoReport v2 (issue 17): POSTs per second beside the JSON intake, and
``servicerequestupdates`` for a two-hour window over a million tasks.

    python -m bench.open311 [--quick] [--only posts|updates] [--requests N] [--rounds N]
                            [--concurrency 50] [--database sqlite|postgresql]
                            [--tasks N] [--windows N] [--rebuild]

**posts** — one Responder server process (``bench.server responder``, a fresh database,
pinned to a CPU of its own as in ``bench.intake``) takes both kinds of report in the same
run: ``POST /api/tasks`` (JSON, the ``bench`` intake key) and ``POST
/open311/v2/requests.xml`` form-encoded exactly as FixMyStreet's ``Open311.pm`` sends it
(``jurisdiction_id``, ``api_key``, ``service_code``, ``description``, names, ``email``,
``lat``/``long``, ``media_url``, ``attribute[fixmystreet_id|easting|northing|
closest_address|title]``). The council file is ``examples/council.yaml`` with a source
``bench`` speaking Open311 (the intake key ``bench`` is its ``api_key``). Both kinds are
drawn from one ``bench.common.make_bodies`` sequence (points 40 m apart, so no report is
linked as a duplicate of another), each with a reporter and one photo link. After a
warm-up of each, the timed requests go in alternating rounds (JSON then Open311, then
Open311 then JSON, ...), each round ``concurrency`` at a time, so whatever else the
machine does and the database's growth hit both. Figures: reports/s of each (answered
requests over the time of that kind's rounds), their ratio (goal **>= 0.8**), latency,
server CPU per report.

**updates** — a SQLite file of N tasks (1,000,000; 200,000 with ``--quick``) spread evenly
over a year (``--quick``: the same density over a fifth of a year, so a two-hour window
holds as many updates), each with its history (created; accept; start; public notes;
complete or cancel: ~4.7 events a task) and one report (3 % a second one); 30 % of
reports come from the Open311 source ``bench``, the rest from three other sources. Built
once with the stdlib ``sqlite3`` (indexes dropped during the load) and cached in
bench/results/ under a key hashing the migrations, the council file and this generator.
Each run copies it, starts Responder on the copy (``--no-scheduler``) and a bare aiohttp
server answering a static XML body the size of a real answer (the baseline), then sends
``--windows`` GETs of ``servicerequestupdates.xml`` for two-hour windows spread over the
year, one at a time, each followed by one GET of the static body. Figures: p50/p95/p99 of
each, and the updates returned per window; goal **p99 <= 50 ms**.

Exit status: 0 goals met, 1 a goal missed, 2 run invalid (a report not answered 2xx or
not stored, a GET not answered 200, a server that did not start). The figures are printed
and written to bench/results/open311.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import numpy as np
import yaml
from aiohttp import web

from bench.common import (
    COUNCIL_FILE,
    DESCRIPTIONS,
    RESULTS,
    ROOT,
    STREETS,
    Server,
    ServerStartError,
    machine,
    make_bodies,
    percentile,
    print_rows,
    server_process,
)
from bench.councillor import INSERT_EVENT, INSERT_TASK, TYPE_WEIGHTS, stamp, ward_points
from bench.intake import (
    CLIENT_CPUS,
    POSTGRES_URL,
    SERVER_CPUS,
    count_postgres,
    count_sqlite,
    reset_postgres,
)
from bench.server import BENCH_KEY_NAME, BENCH_KEY_SECRET
from responder.config import load_council
from responder.config.model import Council
from responder.domain.grid import to_grid
from responder.domain.vocabulary import DEFAULT_OUTCOMES

GOAL_RATIO = 0.8
GOAL_P99_MS = 50.0
DEFAULT_TASKS = 1_000_000
QUICK_TASKS = 200_000
JURISDICTION = "sample-borough"
SOURCE = BENCH_KEY_NAME  # the Open311 source: its intake key is FixMyStreet's api_key
PHOTO_HOST = "photos.fixmystreet.example"
WINDOW_S = 2 * 3600
MIN_WINDOWS = 20  # timed windows even past the time budget

# Bump when what the generator writes changes, so cached files are rebuilt.
DATA_VERSION = 2
YEAR = 365 * 86_400.0
DAY = 86_400.0
OTHER_SOURCES = (("web-form", 0.5), ("govservice", 0.3), ("contact-centre", 0.2))
OPEN311_SHARE = 0.3
SECOND_REPORT = 0.03
RECENT_DAYS = 30  # tasks younger than this are open with RECENT_OPEN, older with OLD_OPEN
RECENT_OPEN = 0.3
OLD_OPEN = 0.01
OPEN_MIX = (("unassigned", 0.2), ("assigned", 0.3), ("accepted", 0.2), ("in_progress", 0.3))
POINT_POOL = 50_000
CHUNK = 250_000
OUTCOMES = [o.code for o in DEFAULT_OUTCOMES]
NOTES = (
    "Crew booked for tomorrow morning.",
    "Partly cleared; the rest needs a van.",
    "Area cordoned off; work to finish tomorrow.",
    "Contractor on site.",
)
INSERT_REPORT = (
    "INSERT INTO reports (id, task_id, type, lat, lon, received_at, source, external_id,"
    " duplicate, content_hash, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
)
INSERT_PHOTO = (
    "INSERT INTO photos (token, task_id, person_id, content_type, data, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
PHOTO_SHARE = 0.4  # of completed tasks: the officer added a photo (a completion's media_url)
PHOTO_BYTES = b"\xff\xd8\xff\xe0"  # a JPEG's first bytes: the read never loads the data
BULK_TABLES = ("tasks", "task_events", "reports", "photos")


# --- the council file: examples/council.yaml with an Open311 source ---------------------------


def bench_council(directory: Path) -> Path:
    """examples/council.yaml plus ``sources.bench`` speaking Open311 (its wards by absolute
    path), written to ``directory``; the intake key ``bench`` is FixMyStreet's api_key."""
    data = yaml.safe_load(COUNCIL_FILE.read_text())
    data["wards"] = str((COUNCIL_FILE.parent / data["wards"]).resolve())
    sources = data.setdefault("sources", {}) or {}
    sources[SOURCE] = {"open311": {"jurisdiction_id": JURISDICTION}, "photo_hosts": [PHOTO_HOST]}
    data["sources"] = sources
    path = directory / "council-open311.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- posts: the two kinds of body ----------------------------------------------------------


@dataclass
class Post:
    kind: str  # "json" | "open311"
    body: bytes


def make_posts(count: int, seed: int, run_tag: str) -> tuple[list[Post], list[Post]]:
    """``count`` JSON reports and ``count`` Open311 ones, alternately drawn from one
    ``make_bodies`` sequence (so no two are near enough to be linked as duplicates), each
    with a reporter wanting e-mail and one photo link (JSON ``photos``, Open311 ``media_url``)."""
    council = load_council(COUNCIL_FILE)
    names = {t.code: t.name for t in council.file.task_types}
    raw = [json.loads(b) for b in make_bodies(2 * count, seed, run_tag)]
    json_posts: list[Post] = []
    open311_posts: list[Post] = []
    for i, body in enumerate(raw):
        photo = f"https://{PHOTO_HOST}/photo/{run_tag}-{i}.0.full.jpeg"
        if i % 2 == 0:
            body["photos"] = [photo]
            json_posts.append(Post("json", json.dumps(body).encode()))
            continue
        loc = body["location"]
        easting, northing = to_grid(loc["lat"], loc["lon"])
        first, last = body["reporter"]["name"].split(" ", 1)
        form = {
            "jurisdiction_id": JURISDICTION,
            "api_key": BENCH_KEY_SECRET,
            "service_code": body["type"],
            "description": body["description"],
            "first_name": first,
            "last_name": last,
            "email": body["reporter"]["email"],
            "lat": f"{loc['lat']:.6f}",
            "long": f"{loc['lon']:.6f}",
            "media_url": photo,
            "attribute[fixmystreet_id]": str(100_000 + i),
            "attribute[easting]": str(easting),
            "attribute[northing]": str(northing),
            "attribute[closest_address]": f"{loc['address']}, Sample Borough",
            "attribute[title]": f"{names[body['type']]} near {loc['address']}",
        }
        open311_posts.append(Post("open311", urlencode(form).encode()))
    return json_posts, open311_posts


# --- posts: driving them -----------------------------------------------------------------


JSON_HEADERS = {"Authorization": f"Bearer {BENCH_KEY_SECRET}", "Content-Type": "application/json"}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
_REQUEST_ID = re.compile(rb"<service_request_id>\s*([^<\s]+)\s*</service_request_id>")


@dataclass
class Round:
    kind: str
    requests: int
    seconds: float
    cpu_seconds: float | None
    latencies: list[float]
    statuses: Counter[str]
    samples: list[str]

    @property
    def failures(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != "ok")


def _answer_ok(kind: str, status: int, answer: bytes) -> bool:
    if kind == "json":
        return status == 201
    # FixMyStreet's client takes any 2xx and reads the new id from the XML.
    return 200 <= status < 300 and _REQUEST_ID.search(answer) is not None


async def drive(
    session: aiohttp.ClientSession,
    server: Server,
    posts: Sequence[Post],
    concurrency: int,
) -> Round:
    """POST every body, ``concurrency`` at a time; time each and the whole round."""
    kind = posts[0].kind
    url = server.base + ("/api/tasks" if kind == "json" else "/open311/v2/requests.xml")
    headers = JSON_HEADERS if kind == "json" else FORM_HEADERS
    queue = iter(posts)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    samples: list[str] = []

    async def client() -> None:
        for post in queue:  # one shared iterator: each body is sent once
            started = time.perf_counter()
            try:
                async with session.post(url, data=post.body, headers=headers) as response:
                    answer = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer, status = repr(exc).encode(), 0
            latencies.append(time.perf_counter() - started)
            ok = _answer_ok(kind, status, answer)
            statuses["ok" if ok else str(status)] += 1
            if not ok and len(samples) < 5:
                samples.append(f"{kind} {status}: {answer[:300].decode(errors='replace')}")

    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    cpu_after = server.cpu_seconds()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Round(kind, len(posts), seconds, cpu, latencies, statuses, samples)


@dataclass
class Side:
    kind: str
    requests: int
    ok: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_request: float | None
    rounds_per_second: list[float]
    statuses: dict[str, int]
    samples: list[str] = field(default_factory=list)


def side(kind: str, rounds: Sequence[Round]) -> Side:
    mine = [r for r in rounds if r.kind == kind]
    seconds = sum(r.seconds for r in mine)
    requests = sum(r.requests for r in mine)
    statuses: Counter[str] = Counter()
    for r in mine:
        statuses.update(r.statuses)
    latencies = [x for r in mine for x in r.latencies]
    cpus = [r.cpu_seconds for r in mine]
    cpu = None if any(c is None for c in cpus) else sum(c or 0.0 for c in cpus)
    return Side(
        kind=kind,
        requests=requests,
        ok=statuses["ok"],
        seconds=round(seconds, 3),
        per_second=round(statuses["ok"] / seconds, 1) if seconds else 0.0,
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        server_cpu_ms_per_request=None if cpu is None else round(cpu / requests * 1000, 3),
        rounds_per_second=[round(r.statuses["ok"] / r.seconds, 1) for r in mine],
        statuses=dict(statuses),
        samples=[s for r in mine for s in r.samples][:5],
    )


async def run_posts(args: argparse.Namespace, council: Path, tmp: Path) -> dict[str, Any]:
    requests = 1000 if args.quick else args.requests
    rounds = 4 if args.quick else args.rounds
    per_round = max(1, requests // rounds)
    requests = per_round * rounds
    run_tag = f"bench311-{int(time.time())}"
    json_posts, open311_posts = make_posts(args.warmup + requests, args.seed, run_tag)

    if args.database == "postgresql":
        url = args.postgres_url
        if url.rstrip("/").rsplit("/", 1)[-1] == "test":
            raise RunInvalid("refusing to drop the schema of `test` (the test suite's)")
        await reset_postgres(url)
    else:
        database = tmp / "posts.db"
        url = f"sqlite:///{database}"
    server_args = ["responder", "--database", url, "--config", str(council)]
    print(
        f"posts ({args.database}): {args.warmup} warm-up of each kind, then {rounds} rounds "
        f"of {per_round} JSON and {per_round} Open311, {args.concurrency} at a time ...",
        flush=True,
    )
    timed: list[Round] = []
    async with server_process(server_args, cpus=SERVER_CPUS) as server:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            warm = [
                await drive(session, server, json_posts[: args.warmup], args.concurrency),
                await drive(session, server, open311_posts[: args.warmup], args.concurrency),
            ]
            offset = args.warmup
            for r in range(rounds):
                chunk = slice(offset + r * per_round, offset + (r + 1) * per_round)
                pair = (json_posts[chunk], open311_posts[chunk])
                for posts in pair if r % 2 == 0 else reversed(pair):
                    timed.append(await drive(session, server, posts, args.concurrency))
    if args.database == "postgresql":
        stored = await count_postgres(url, "tasks")
    else:
        stored = count_sqlite(database, "tasks")
    sides = {kind: side(kind, timed) for kind in ("json", "open311")}
    warm_failures = sum(w.failures for w in warm)
    ratio = (
        sides["open311"].per_second / sides["json"].per_second if sides["json"].per_second else 0.0
    )
    cpu_json = sides["json"].server_cpu_ms_per_request
    cpu_open311 = sides["open311"].server_cpu_ms_per_request
    cpu_ratio = round(cpu_json / cpu_open311, 3) if cpu_json and cpu_open311 else None
    expected = 2 * (args.warmup + requests)
    problems = []
    if warm_failures or any(s.ok != s.requests for s in sides.values()):
        problems.append(
            "not every report was answered as its protocol says (JSON 201; Open311 2xx with "
            "a service_request_id): "
            + "; ".join(f"{s.kind} {s.statuses}" for s in sides.values())
            + f"; warm-up failures {warm_failures}"
        )
    if stored != expected:
        problems.append(f"{stored} tasks stored, expected {expected}")
    return {
        "database": args.database,
        "requests_per_kind": requests,
        "rounds": rounds,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "json": asdict(sides["json"]),
        "open311": asdict(sides["open311"]),
        "ratio": round(ratio, 3),
        # The same comparison by the server's CPU per report (JSON's over Open311's): less
        # moved by other work on the machine than throughput is.
        "cpu_ratio": cpu_ratio,
        "tasks_stored": stored,
        "warmup_samples": [s for w in warm for s in w.samples][:5],
        "problems": problems,
    }


def print_posts(result: dict[str, Any]) -> None:
    j, o = result["json"], result["open311"]

    def cpu(s: dict[str, Any]) -> str:
        v = s["server_cpu_ms_per_request"]
        return "n/a" if v is None else f"{v:.2f} ms"

    print()
    print_rows(
        [
            ("", "JSON intake (baseline)", "Open311 requests.xml"),
            ("database", result["database"], result["database"]),
            ("requests (timed)", str(j["requests"]), str(o["requests"])),
            ("throughput", f"{j['per_second']:.0f} reports/s", f"{o['per_second']:.0f} reports/s"),
            (
                "per round",
                " ".join(f"{x:.0f}" for x in j["rounds_per_second"]),
                " ".join(f"{x:.0f}" for x in o["rounds_per_second"]),
            ),
            ("latency p50", f"{j['p50_ms']:.1f} ms", f"{o['p50_ms']:.1f} ms"),
            ("latency p99", f"{j['p99_ms']:.1f} ms", f"{o['p99_ms']:.1f} ms"),
            ("server CPU / report", cpu(j), cpu(o)),
            ("wrong answers", str(j["requests"] - j["ok"]), str(o["requests"] - o["ok"])),
        ]
    )
    verdict = "PASS" if result["ratio"] >= GOAL_RATIO else "FAIL"
    print(f"Open311 / JSON: {result['ratio']:.2f} (goal >= {GOAL_RATIO}): {verdict}")
    if result.get("cpu_ratio") is not None:
        print(f"by server CPU per report (JSON's / Open311's): {result['cpu_ratio']:.2f}")
    for sample in result["open311"]["samples"] + result["json"]["samples"]:
        print(f"  {sample}")


# --- updates: the database ------------------------------------------------------------------


def cache_key() -> str:
    """What the cached file depends on: the migrations, the council file, this generator."""
    digest = hashlib.sha256(f"open311 data-version {DATA_VERSION}\n".encode())
    migrations = ROOT / "responder" / "store" / "migrations"
    council_files = [COUNCIL_FILE, COUNCIL_FILE.parent / "wards.geojson"]
    for path in [*sorted(migrations.rglob("*.py")), *council_files]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()[:12]


async def create_schema(path: Path) -> None:
    """An empty database at the head revision, by Responder's own migrations."""
    from responder.store.db import Database
    from responder.store.migrate import upgrade

    db = Database(f"sqlite:///{path}")
    try:
        await upgrade(db)
    finally:
        await db.dispose()


# Event kinds, in the order a task goes through them.
CREATED, ACCEPT, START, NOTE1, NOTE2, COMPLETE, CANCEL = range(7)


class Generator:
    """Tasks spread evenly over ``span`` seconds before ``now`` (ids in creation order), their
    histories and reports. numpy draws every random column at once (seeded)."""

    def __init__(self, council: Council, count: int, now: float, seed: int) -> None:
        file = council.file
        rng = np.random.default_rng(seed)
        self.count = count
        self.now = now
        # The goal's density (a million a year) at any size: a two-hour window holds as
        # many updates in a smaller file as in the million.
        self.span = YEAR * count / DEFAULT_TASKS
        start = now - self.span
        step = self.span / count
        self.created = start + (np.arange(count) + rng.uniform(0.05, 0.95, count)) * step
        types = [t.code for t in file.task_types]
        weights = np.array([TYPE_WEIGHTS.get(t, 1) for t in types], float)
        self.type_index = rng.choice(len(types), count, p=weights / weights.sum())
        self.types = types
        service_of = {t.code: t.service for t in file.task_types}
        priority_of = {t.code: t.priority for t in file.task_types}
        hours = {p: float(h) for p, h in file.priorities.items()}
        team_for: dict[tuple[str, str], str] = {}
        for team in file.teams:  # the first team serving a service in a ward takes it
            for service in team.services:
                for ward in team.wards:
                    team_for.setdefault((service, ward), team.code)
        self.teams = {t.code: t for t in file.teams}
        places = ward_points(council, POINT_POOL, seed)
        self.places = places
        # A place for each task where a team serves its type.
        self.place_index = np.zeros(count, np.int64)
        for t, code in enumerate(types):
            rows = np.flatnonzero(self.type_index == t)
            valid = [i for i, p in enumerate(places) if (service_of[code], p[2]) in team_for]
            self.place_index[rows] = np.array(valid)[rng.integers(0, len(valid), len(rows))]
        self.team_for = team_for
        self.service_of = service_of
        self.priority_of = priority_of
        self.type_hours = np.array([hours[priority_of[c]] for c in types])

        # Where each task got to.
        age = now - self.created
        open_p = np.where(age < RECENT_DAYS * DAY, RECENT_OPEN, OLD_OPEN)
        is_open = rng.random(count) < open_p
        open_kind = rng.choice(len(OPEN_MIX), count, p=[s for _, s in OPEN_MIX])
        completed = ~is_open & (rng.random(count) < 0.96)
        cancelled = ~is_open & ~completed
        h = self.type_hours[self.type_index] * 3600
        closed = np.full(count, np.nan)
        closed[completed] = (self.created + 600 + rng.exponential(0.5 * h))[completed]
        closed[cancelled] = (self.created + 600 + rng.exponential(DAY, count))[cancelled]
        closed = np.minimum(closed, now - 1)
        self.closed = closed
        status = np.array(["completed"] * count, dtype=object)
        status[cancelled] = "cancelled"
        for k, (name, _share) in enumerate(OPEN_MIX):
            status[is_open & (open_kind == k)] = name
        self.status = status
        self.due = self.created + h
        self.outcome_draw = rng.random(count)
        self.outcome_pick = rng.integers(0, len(OUTCOMES), count)
        self.assignee_draw = rng.integers(0, 1 << 30, count)
        self.text_draw = rng.integers(0, 1 << 30, count)
        # Sources: 30 % the Open311 one; a second report for 3 %.
        names = [SOURCE] + [n for n, _ in OTHER_SOURCES]
        shares = [OPEN311_SHARE] + [s * (1 - OPEN311_SHARE) for _, s in OTHER_SOURCES]
        self.sources = names
        self.source_index = rng.choice(len(names), count, p=shares)
        self.second = np.flatnonzero(rng.random(count) < SECOND_REPORT)
        self.second_source = rng.choice(len(names), len(self.second), p=shares)
        self.second_delay = rng.uniform(300, 6 * 3600, len(self.second))
        self.public_url = str(file.council.public_url).rstrip("/")

        # The events, as parallel arrays (task index, time, kind), then sorted by time so
        # event ids follow time as they do in a real database.
        end = np.where(np.isnan(closed), now - 30, closed)
        d = end - self.created
        started = (status == "in_progress") | (completed & (rng.random(count) < 0.85))
        accepted = np.isin(status, ["accepted", "in_progress"]) | completed
        note1 = started & (rng.random(count) < 0.6)
        note2 = note1 & (rng.random(count) < 0.5)
        self.started = started
        parts = [
            (np.arange(count), self.created, CREATED),
            (np.flatnonzero(accepted), None, ACCEPT, 0.1),
            (np.flatnonzero(started), None, START, 0.3),
            (np.flatnonzero(note1), None, NOTE1, 0.6),
            (np.flatnonzero(note2), None, NOTE2, 0.8),
            (np.flatnonzero(completed), None, COMPLETE, 1.0),
            (np.flatnonzero(cancelled), None, CANCEL, 1.0),
        ]
        idx, at, kind = [], [], []
        for part in parts:
            rows = part[0]
            idx.append(rows)
            if part[1] is not None:
                at.append(part[1][rows])
            else:
                at.append(self.created[rows] + d[rows] * part[3])
            kind.append(np.full(len(rows), part[2], np.int8))
        ev_idx = np.concatenate(idx)
        ev_at = np.concatenate(at)
        ev_kind = np.concatenate(kind)
        order = np.lexsort((ev_kind, ev_at))
        self.ev_idx = ev_idx[order]
        self.ev_at = ev_at[order]
        self.ev_kind = ev_kind[order]
        self.events = len(self.ev_idx)
        # Drawn last, so the rest is as it was before photos were added.
        self.photo = completed & (rng.random(count) < PHOTO_SHARE)

    def _team(self, i: int) -> Any:
        code = self.types[self.type_index[i]]
        ward = self.places[self.place_index[i]][2]
        return self.teams[self.team_for[(self.service_of[code], ward)]]

    def task_rows(self, start: int, stop: int) -> tuple[list[tuple], list[str | None]]:
        """Task rows and each task's assignee (for its events)."""
        rows: list[tuple] = []
        assignees: list[str | None] = []
        created = self.created[start:stop].tolist()
        closed = self.closed[start:stop].tolist()
        due = self.due[start:stop].tolist()
        for n, i in enumerate(range(start, stop)):
            code = self.types[self.type_index[i]]
            lat, lon, ward = self.places[self.place_index[i]]
            team = self._team(i)
            status = self.status[i]
            officers = team.officers or team.managers or ["system"]
            assignee = None
            if status != "unassigned" and not (status == "assigned" and team.routing == "queue"):
                assignee = officers[self.assignee_draw[i] % len(officers)]
            if status == "assigned" and team.routing == "queue":
                status = "unassigned"
            outcome = self.outcome_list[i] if status == "completed" else None
            cl = closed[n]
            is_closed = cl == cl  # not NaN
            updated = cl if is_closed else created[n] + 0.3 * (self.now - created[n])
            draw = int(self.text_draw[i])
            reports = 2 if i in self._second_set else 1
            rows.append(
                (
                    i + 1,
                    code,
                    DESCRIPTIONS[draw % len(DESCRIPTIONS)],
                    lat,
                    lon,
                    f"{draw % 200 + 1} {STREETS[(draw >> 8) % len(STREETS)]}",
                    ward,
                    team.code,
                    assignee,
                    status,
                    self.priority_of[code],
                    stamp(due[n]),
                    stamp(created[n]),
                    stamp(updated),
                    stamp(cl) if is_closed else None,
                    self.sources[self.source_list[i]],
                    "resident",
                    None,
                    json.dumps([self._photo_url(i)]) if self.photo_list[i] else "[]",
                    "[]",
                    "[]",
                    reports,
                    outcome,
                    1 + self.ev_count[i],
                )
            )
            assignees.append(assignee)
        return rows, assignees

    @property
    def _second_set(self) -> set[int]:
        if not hasattr(self, "_second_cache"):
            self._second_cache = set(self.second.tolist())
        return self._second_cache

    def remember(self, start: int, rows: Sequence[tuple], assignees: Sequence[str | None]) -> None:
        """Each loaded task's assignee and first status, which its events need."""
        for n, assignee in enumerate(assignees):
            i = start + n
            self.assignee[i] = assignee
            queue = self._team(i).routing == "queue"
            self.initial[i] = "unassigned" if queue or rows[n][9] == "unassigned" else "assigned"

    def prepare(self) -> None:
        """Per-task lists for the row loops (a list index is cheaper than numpy's)."""
        self.ev_count = (np.bincount(self.ev_idx, minlength=self.count) - 1).tolist()
        self.started_list = self.started.tolist()
        self.photo_list = self.photo.tolist()
        self.source_list = self.source_index.tolist()
        self.outcome_list = [
            "resolved" if draw < 0.8 else OUTCOMES[pick % len(OUTCOMES)]
            for draw, pick in zip(
                self.outcome_draw.tolist(), self.outcome_pick.tolist(), strict=True
            )
        ]
        self.assignee: list[str | None] = [None] * self.count
        self.initial: list[str] = [""] * self.count

    def event_rows(self, start: int, stop: int) -> list[tuple]:
        out: list[tuple] = []
        idx = self.ev_idx[start:stop].tolist()
        at = self.ev_at[start:stop].tolist()
        kinds = self.ev_kind[start:stop].tolist()
        outcome_json: dict[str, str] = {}
        for i, t, k in zip(idx, at, kinds, strict=True):
            tid = i + 1
            who = self.assignee[i] or "system"
            if k == CREATED:
                src = self.sources[self.source_list[i]]
                out.append(
                    (tid, stamp(t), f"intake:{src}", "created", None, self.initial[i], None, None)
                )
            elif k == ACCEPT:
                out.append((tid, stamp(t), who, "accept", self.initial[i], "accepted", None, None))
            elif k == START:
                out.append((tid, stamp(t), who, "start", "accepted", "in_progress", None, None))
            elif k in (NOTE1, NOTE2):
                note = NOTES[(i + k) % len(NOTES)]
                out.append((tid, stamp(t), who, "update", "in_progress", "in_progress", note, None))
            elif k == COMPLETE:
                outcome = self.outcome_list[i]
                data = outcome_json.get(outcome)
                if data is None:
                    data = outcome_json[outcome] = json.dumps({"outcome": outcome})
                before = "in_progress" if self.started_list[i] else "accepted"
                out.append((tid, stamp(t), who, "complete", before, "completed", None, data))
            else:
                manager = self._team(i).managers
                out.append(
                    (
                        tid,
                        stamp(t),
                        manager[0] if manager else "system",
                        "cancel",
                        self.initial[i],
                        "cancelled",
                        "Duplicate of an earlier case.",
                        None,
                    )
                )
        return out

    def _photo_url(self, i: int) -> str:
        return f"{self.public_url}/api/photos/{self._token(i)}"

    @staticmethod
    def _token(i: int) -> str:
        return f"bench-{i + 1:09d}"

    def photo_rows(self, start: int, stop: int, data: Any = PHOTO_BYTES) -> list[tuple]:
        """The photos table's rows for the officers' completion photos (after ``remember``)."""
        rows: list[tuple] = []
        closed = self.closed[start:stop].tolist()
        for n, i in enumerate(range(start, stop)):
            if self.photo_list[i]:
                who = self.assignee[i] or "system"
                at = stamp(closed[n] - 60)
                rows.append((self._token(i), i + 1, who, "image/jpeg", data, at))
        return rows

    def report_rows(self, start: int, stop: int) -> list[tuple]:
        rows: list[tuple] = []
        created = self.created[start:stop].tolist()
        for n, i in enumerate(range(start, stop)):
            rows.append(self._report(i + 1, i, self.source_list[i], created[n], False))
        return rows

    def second_rows(self) -> list[tuple]:
        rows: list[tuple] = []
        for n, i in enumerate(self.second.tolist()):
            at = float(self.created[i] + self.second_delay[n])
            source = int(self.second_source[n])
            rows.append(self._report(self.count + n + 1, i, source, at, True))
        return rows

    def _report(self, rid: int, i: int, source_index: int, at: float, dup: bool) -> tuple:
        source = self.sources[source_index]
        lat, lon, _ward = self.places[self.place_index[i]]
        if source == SOURCE:
            external = str(1_000_000 + rid)
            attributes: str | None = json.dumps({"fixmystreet_id": external})
        else:
            external, attributes = f"{source}-{rid}", None
        return (
            rid,
            i + 1,
            self.types[self.type_index[i]],
            lat,
            lon,
            stamp(min(at, self.now - 1)),
            source,
            external,
            1 if dup else 0,
            attributes,
        )


@dataclass
class LoadStats:
    tasks: int
    events: int
    reports: int
    open311_tasks: int
    span_days: float
    now: float
    seconds: float
    size_mb: int = 0


def build_database(path: Path, count: int, seed: int) -> LoadStats:
    """Write a database of ``count`` tasks, their events and reports to ``path``."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    asyncio.run(create_schema(path))
    council = load_council(COUNCIL_FILE)
    now = float(int(time.time()))
    gen = Generator(council, count, now, seed)
    gen.prepare()
    print(
        f"  generated {count:,} tasks, {gen.events:,} events "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            "PRAGMA journal_mode=OFF",
            "PRAGMA synchronous=OFF",
            "PRAGMA cache_size=-262144",
            "PRAGMA temp_store=MEMORY",
            "PRAGMA foreign_keys=OFF",
        ):
            con.execute(pragma)
        marks = ",".join("?" * len(BULK_TABLES))
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({marks})",
            BULK_TABLES,
        ).fetchall()
        for name, _sql in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            rows, assignees = gen.task_rows(start, stop)
            gen.remember(start, rows, assignees)
            con.execute("BEGIN")
            con.executemany(INSERT_TASK, rows)
            con.executemany(INSERT_REPORT, gen.report_rows(start, stop))
            con.executemany(INSERT_PHOTO, gen.photo_rows(start, stop))
            con.execute("COMMIT")
            print(f"  {stop:,} tasks ({time.perf_counter() - started:.0f} s)", flush=True)
        con.execute("BEGIN")
        con.executemany(INSERT_REPORT, gen.second_rows())
        con.execute("COMMIT")
        for start in range(0, gen.events, 4 * CHUNK):
            stop = min(gen.events, start + 4 * CHUNK)
            con.execute("BEGIN")
            con.executemany(INSERT_EVENT, gen.event_rows(start, stop))
            con.execute("COMMIT")
            print(f"  {stop:,} events ({time.perf_counter() - started:.0f} s)", flush=True)
        for _name, sql in indexes:
            con.execute(sql)
        con.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy
        stored = con.execute("SELECT count(*), max(id) FROM tasks").fetchone()
        if tuple(stored) != (count, count):
            raise RuntimeError(f"load: tasks count/max id {tuple(stored)}, expected {count}")
        reports = con.execute("SELECT count(*) FROM reports").fetchone()[0]
        open311 = con.execute(
            "SELECT count(DISTINCT task_id) FROM reports WHERE source = ?", (SOURCE,)
        ).fetchone()[0]
    finally:
        con.close()
    return LoadStats(
        tasks=count,
        events=gen.events,
        reports=reports,
        open311_tasks=open311,
        span_days=round(gen.span / DAY, 1),
        now=now,
        seconds=round(time.perf_counter() - started, 1),
    )


def cached_database(count: int, seed: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """The cached file for ``count`` tasks (built now if missing) and its load figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    path = RESULTS / f"open311-{count}-{seed}-{key}.db"
    info_path = path.with_suffix(".json")
    for stale in RESULTS.glob("open311-*-*-*.db"):  # files of an older schema or generator
        if not stale.name.endswith(f"-{key}.db"):
            stale.unlink()
            stale.with_suffix(".json").unlink(missing_ok=True)
    if path.exists() and info_path.exists() and not rebuild:
        info = json.loads(info_path.read_text())
        print(
            f"database: {count:,} tasks from the cache ({path.name}, built in "
            f"{info['seconds']:.0f} s)",
            flush=True,
        )
        return path, info | {"cached": True}
    print(f"database: building {count:,} tasks (cached afterwards as {path.name}) ...", flush=True)
    building = path.with_name(f".building-{path.name}")
    stats = build_database(building, count, seed)
    building.rename(path)
    stats.size_mb = path.stat().st_size >> 20
    info = asdict(stats)
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"database: {stats.tasks:,} tasks over {stats.span_days:.0f} days, {stats.events:,} "
        f"events, {stats.reports:,} reports ({stats.open311_tasks:,} tasks from Open311) "
        f"in {stats.seconds:.0f} s; {stats.size_mb} MB",
        flush=True,
    )
    return path, info | {"cached": False}


def _columns(insert: str) -> list[str]:
    """The column list of one of the INSERT statements above."""
    return [c.strip() for c in insert.split("(", 1)[1].split(")", 1)[0].split(",")]


def _copy_text(rows: Sequence[tuple]) -> io.BytesIO:
    """Rows in COPY's text format (NULL as \\N; backslash, tab and newlines escaped)."""

    def cell(value: Any) -> str:
        if value is None:
            return "\\N"
        text = str(value)
        if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
            text = (
                text.replace("\\", "\\\\")
                .replace("\t", "\\t")
                .replace("\n", "\\n")
                .replace("\r", "\\r")
            )
        return text

    return io.BytesIO("".join("\t".join(map(cell, row)) + "\n" for row in rows).encode())


def postgres_cache_url(url: str) -> str:
    """The updates file's PostgreSQL twin lives in a database of its own (``<name>_open311``),
    so the other benchmarks, which drop ``responder_bench``'s schema, leave it cached."""
    base, name = url.rsplit("/", 1)
    name, _, query = name.partition("?")
    return f"{base}/{name}_open311" + (f"?{query}" if query else "")


async def cached_postgres(url: str, count: int, seed: int, rebuild: bool) -> dict[str, Any]:
    """The same data as ``build_database`` in PostgreSQL at ``url`` (its public schema is
    dropped and loaded again unless it already holds this size, seed and cache key), then
    ANALYZE (autovacuum's job in a real deployment). Its load figures."""
    import asyncpg

    if url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] == "test":
        raise RunInvalid("refusing to drop the schema of `test` (the test suite's)")
    key = f"{count}-{seed}-{cache_key()}"
    try:
        conn = await asyncpg.connect(url, server_settings={"timezone": "UTC"})
    except asyncpg.InvalidCatalogNameError:
        name = url.rsplit("/", 1)[1].split("?")[0]
        admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(url, server_settings={"timezone": "UTC"})
    try:
        if not rebuild:
            exists = await conn.fetchval("SELECT to_regclass('public.bench_open311_cache')")
            if exists:
                info = await conn.fetchval(
                    "SELECT info FROM bench_open311_cache WHERE key = $1", key
                )
                if info:
                    data = json.loads(info)
                    print(
                        f"database: {count:,} tasks from the cache (PostgreSQL "
                        f"{url.rsplit('/', 1)[1]}, built in {data['seconds']:.0f} s)",
                        flush=True,
                    )
                    return data | {"cached": True}
        print(f"database: building {count:,} tasks in PostgreSQL ({url.rsplit('/', 1)[1]}) ...")
        started = time.perf_counter()
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        from responder.store.db import Database
        from responder.store.migrate import upgrade

        db = Database(url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()
        council = load_council(COUNCIL_FILE)
        now = float(int(time.time()))
        gen = await asyncio.to_thread(Generator, council, count, now, seed)
        gen.prepare()
        indexes = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c"
            " ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid"
            " WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])"
            " AND NOT x.indisprimary AND NOT x.indisunique",
            list(BULK_TABLES),
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        task_columns, report_columns = _columns(INSERT_TASK), _columns(INSERT_REPORT)
        event_columns = _columns(INSERT_EVENT)
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            rows, assignees = gen.task_rows(start, stop)
            gen.remember(start, rows, assignees)
            await conn.copy_to_table("tasks", source=_copy_text(rows), columns=task_columns)
            reports = [(*r[:9], None, r[9]) for r in gen.report_rows(start, stop)]
            await conn.copy_to_table("reports", source=_copy_text(reports), columns=report_columns)
            # bytea in COPY's text format: hex after a backslash (escaped by _copy_text).
            photo_rows = gen.photo_rows(start, stop, "\\x" + PHOTO_BYTES.hex())
            await conn.copy_to_table(
                "photos", source=_copy_text(photo_rows), columns=_columns(INSERT_PHOTO)
            )
            print(f"  {stop:,} tasks ({time.perf_counter() - started:.0f} s)", flush=True)
        seconds = [(*r[:9], None, r[9]) for r in gen.second_rows()]
        await conn.copy_to_table("reports", source=_copy_text(seconds), columns=report_columns)
        for start in range(0, gen.events, 4 * CHUNK):
            stop = min(gen.events, start + 4 * CHUNK)
            rows = gen.event_rows(start, stop)
            await conn.copy_to_table("task_events", source=_copy_text(rows), columns=event_columns)
            print(f"  {stop:,} events ({time.perf_counter() - started:.0f} s)", flush=True)
        for row in indexes:
            await conn.execute(row["indexdef"])
        for table in BULK_TABLES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
        reports_n = await conn.fetchval("SELECT count(*) FROM reports")
        open311 = await conn.fetchval(
            "SELECT count(DISTINCT task_id) FROM reports WHERE source = $1", SOURCE
        )
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        stats = LoadStats(
            tasks=count,
            events=gen.events,
            reports=reports_n,
            open311_tasks=open311,
            span_days=round(gen.span / DAY, 1),
            now=now,
            seconds=round(time.perf_counter() - started, 1),
            size_mb=size >> 20,
        )
        info = asdict(stats)
        await conn.execute("CREATE TABLE bench_open311_cache (key text PRIMARY KEY, info text)")
        await conn.execute("INSERT INTO bench_open311_cache VALUES ($1, $2)", key, json.dumps(info))
        print(
            f"database: {stats.tasks:,} tasks over {stats.span_days:.0f} days, {stats.events:,} "
            f"events, {stats.reports:,} reports in {stats.seconds:.0f} s; {stats.size_mb} MB",
            flush=True,
        )
        return info | {"cached": False}
    finally:
        await conn.close()


# --- updates: the baseline server -----------------------------------------------------------


def build_static_app(body: bytes) -> web.Application:
    """A bare aiohttp handler answering a fixed XML body, as Open311 sends it."""

    async def updates(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/xml", charset="utf-8")

    app = web.Application()
    app.router.add_get("/open311/v2/servicerequestupdates.xml", updates)
    return app


def static_server(body_file: Path, cpus: set[int] | None):
    """``python -m bench.open311 --serve-static FILE`` as a process, pinned like Responder."""
    return server_process(["--serve-static", str(body_file)], cpus=cpus, module="bench.open311")


# --- updates: the run -------------------------------------------------------------------------


def w3c(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def windows(now: float, span: float, count: int, seed: int) -> list[tuple[float, float]]:
    """``count`` two-hour windows, their ends spread over the file's span (seeded)."""
    rng = np.random.default_rng(seed + 17)
    ends = rng.uniform(now - span + WINDOW_S, now, count)
    return [(float(e) - WINDOW_S, float(e)) for e in np.round(ends)]


_UPDATE = re.compile(rb"<request_update>")


async def expected_events(database: str, window: tuple[float, float]) -> int:
    """Events of tasks with a report from the Open311 source inside the window (every
    action, 'created' included): an upper bound on the updates the endpoint may return."""
    sql = (
        "SELECT count(*) FROM task_events e WHERE e.at >= {0} AND e.at <= {1} AND EXISTS"
        " (SELECT 1 FROM reports r WHERE r.task_id = e.task_id AND r.source = {2})"
    )
    if database.startswith("sqlite"):
        path = database.split(":///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            return con.execute(
                sql.format("?", "?", "?"), (stamp(window[0]), stamp(window[1]), SOURCE)
            ).fetchone()[0]
    import asyncpg

    conn = await asyncpg.connect(database)
    try:
        start, end = (datetime.fromtimestamp(t, UTC) for t in window)
        return await conn.fetchval(sql.format("$1", "$2", "$3"), start, end, SOURCE)
    finally:
        await conn.close()


async def diagnose(database: str, window: tuple[float, float], runs: int = 3) -> dict[str, Any]:
    """The endpoint's read run in this process on the same database: each statement
    ``responder.queries.open311.update_rows`` sends (captured from SQLAlchemy), its plan
    (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE) and the median time of the
    whole read. Tells a slow answer's database part from the rest; ``{"error": ...}`` if
    that function is not there or has changed."""
    try:
        from sqlalchemy import event
        from sqlalchemy.ext.asyncio import create_async_engine

        from responder.domain.open311 import MAX_UPDATES
        from responder.queries.open311 import update_rows
    except ImportError as exc:
        return {"error": f"cannot import the endpoint's read: {exc}"}
    sqlite = database.startswith("sqlite")
    if sqlite:
        url = f"sqlite+aiosqlite:///file:{database.split(':///', 1)[1]}?mode=ro&uri=true"
    else:
        url = "postgresql+asyncpg://" + database.split("://", 1)[1]
    engine = create_async_engine(url)
    captured: list[tuple[str, Any]] = []

    def grab(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        captured.append((statement, parameters))

    start = datetime.fromtimestamp(window[0], UTC)
    end = datetime.fromtimestamp(window[1], UTC)
    limit = MAX_UPDATES * 5 + 1

    def read(conn: Any) -> Any:
        return update_rows(conn, SOURCE, start, end, limit)

    times: list[float] = []
    explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ANALYZE "
    try:
        async with engine.connect() as conn:
            event.listen(engine.sync_engine, "before_cursor_execute", grab)
            rows = await conn.run_sync(read)
            event.remove(engine.sync_engine, "before_cursor_execute", grab)
            statements = list(captured)
            for _ in range(runs):
                t0 = time.perf_counter()
                await conn.run_sync(read)
                times.append(time.perf_counter() - t0)
            plans = []
            for statement, params in statements:
                result = await conn.exec_driver_sql(explain + statement, params)
                plans.append([str(r[3] if sqlite else r[0]) for r in result])
    except Exception as exc:  # a changed signature or schema: say so, do not fail the run
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        await engine.dispose()
    return {
        "rows": None if rows is None else len(rows),
        "median_ms": round(sorted(times)[len(times) // 2] * 1000, 2),
        "statements": [
            {"sql": " ".join(st.split()), "plan": plan}
            for (st, _p), plan in zip(statements, plans, strict=True)
        ],
    }


async def run_updates(args: argparse.Namespace, council: Path, tmp: Path) -> dict[str, Any]:
    count = QUICK_TASKS if args.quick and args.tasks is None else (args.tasks or DEFAULT_TASKS)
    if args.database == "postgresql":
        database = postgres_cache_url(args.postgres_url)
        info = await cached_postgres(database, count, args.seed, args.rebuild)
    else:
        # In a thread: building runs the migrations with asyncio.run, outside this loop.
        cached, info = await asyncio.to_thread(cached_database, count, args.seed, args.rebuild)
        copy = tmp / "updates.db"
        started = time.perf_counter()
        shutil.copyfile(cached, copy)
        print(f"copied to {copy} in {time.perf_counter() - started:.1f} s", flush=True)
        database = f"sqlite:///{copy}"
    span = info["span_days"] * DAY
    # Warm-up windows of their own, then the timed ones (seeded: the same in every run).
    drawn = windows(info["now"], span, args.warmup_windows + args.windows, args.seed)
    warmups, spans = drawn[: args.warmup_windows], drawn[args.warmup_windows :]
    server_args = [
        "responder",
        "--database",
        database,
        "--config",
        str(council),
        "--no-scheduler",
    ]
    ours: list[float] = []
    base: list[float] = []
    counts: list[int] = []
    problems: list[str] = []
    probe: dict[str, Any] = {}
    diagnosis: dict[str, Any] = {}

    def query(window: tuple[float, float]) -> str:
        return urlencode(
            {
                "api_key": BENCH_KEY_SECRET,
                "jurisdiction_id": JURISDICTION,
                "start_date": w3c(window[0]),
                "end_date": w3c(window[1]),
            }
        )

    path = "/open311/v2/servicerequestupdates.xml"
    async with server_process(server_args, cpus=SERVER_CPUS, start_timeout=180) as server:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def get(base_url: str, window: tuple[float, float]) -> tuple[int, bytes, float]:
                t0 = time.perf_counter()
                async with session.get(f"{base_url}{path}?{query(window)}") as response:
                    body = await response.read()
                return response.status, body, time.perf_counter() - t0

            # A probe: what one answer looks like, and the body the baseline will serve.
            middle = spans[len(spans) // 2]
            status, body, _ = await get(server.base, middle)
            probe = {
                "window": [w3c(middle[0]), w3c(middle[1])],
                "status": status,
                "bytes": len(body),
                "updates": len(_UPDATE.findall(body)),
                "events_in_window": await expected_events(database, middle),
                "start": body[:600].decode(errors="replace"),
            }
            print(
                f"probe: {probe['window'][0]} .. {probe['window'][1]}: HTTP {status}, "
                f"{probe['updates']} updates, {len(body):,} bytes "
                f"({probe['events_in_window']} events of Open311 tasks in the window)",
                flush=True,
            )
            if status != 200:
                problems.append(f"servicerequestupdates answered {status}: {body[:300]!r}")
                return {"tasks": count, "probe": probe, "problems": problems, "load": info}
            diagnosis = await diagnose(database, middle)
            print_diagnosis(diagnosis)
            body_file = tmp / "static.xml"
            body_file.write_bytes(body)
            async with static_server(body_file, SERVER_CPUS) as static:
                for w in warmups:  # untimed
                    await get(server.base, w)
                    await get(static.base, w)
                print(
                    f"timing {len(spans)} windows, each beside the static body "
                    f"(for at most {args.budget:.0f} s) ...",
                    flush=True,
                )
                budget_end = time.monotonic() + args.budget
                for n, w in enumerate(spans):
                    if n >= MIN_WINDOWS and time.monotonic() > budget_end:
                        print(f"time budget spent after {n} windows", flush=True)
                        break
                    status, body, seconds = await get(server.base, w)
                    if status != 200:
                        problems.append(f"servicerequestupdates answered {status}: {body[:200]!r}")
                        break
                    ours.append(seconds)
                    counts.append(len(_UPDATE.findall(body)))
                    s_status, _s_body, s_seconds = await get(static.base, w)
                    if s_status != 200:
                        problems.append(f"the static baseline answered {s_status}")
                        break
                    base.append(s_seconds)

    def ms(values: Sequence[float], p: float) -> float:
        return round(percentile(values, p) * 1000, 2)

    return {
        "tasks": count,
        "span_days": info["span_days"],
        "windows": len(ours),
        "windows_planned": len(spans),
        "engine": args.database,
        "diagnosis": diagnosis,
        "load": info,
        "probe": probe,
        "responder": {
            "p50_ms": ms(ours, 50),
            "p95_ms": ms(ours, 95),
            "p99_ms": ms(ours, 99),
            "max_ms": round(max(ours, default=0) * 1000, 2),
        },
        "static": {
            "p50_ms": ms(base, 50),
            "p95_ms": ms(base, 95),
            "p99_ms": ms(base, 99),
            "max_ms": round(max(base, default=0) * 1000, 2),
            "bytes": probe.get("bytes"),
        },
        "updates_per_window": {
            "min": min(counts, default=0),
            "median": int(np.median(counts)) if counts else 0,
            "max": max(counts, default=0),
            "total": sum(counts),
        },
        "problems": problems,
    }


def print_diagnosis(diagnosis: dict[str, Any]) -> None:
    if "error" in diagnosis:
        print(f"in process: {diagnosis['error']}")
        return
    print(
        f"in process, the endpoint's read (responder.queries.open311.update_rows) on the same "
        f"window: {diagnosis['rows']} rows, median {diagnosis['median_ms']} ms"
    )
    for n, statement in enumerate(diagnosis["statements"], 1):
        print(f"  statement {n}: {statement['sql'][:400]}")
        for line in statement["plan"]:
            print(f"    plan: {line}")


def print_updates(result: dict[str, Any]) -> None:
    r, s, u = result["responder"], result["static"], result["updates_per_window"]
    size = f"{result['tasks']:,} tasks over {result['span_days']:.0f} days, {result['engine']}"
    print()
    print(f"servicerequestupdates, two-hour windows, {size}, {result['windows']} windows:")
    print_rows(
        [
            ("", "static body (baseline)", "Responder"),
            ("p50", f"{s['p50_ms']:.1f} ms", f"{r['p50_ms']:.1f} ms"),
            ("p95", f"{s['p95_ms']:.1f} ms", f"{r['p95_ms']:.1f} ms"),
            ("p99", f"{s['p99_ms']:.1f} ms", f"{r['p99_ms']:.1f} ms"),
            ("max", f"{s['max_ms']:.1f} ms", f"{r['max_ms']:.1f} ms"),
            (
                "updates per window",
                f"{s['bytes']:,} bytes",
                f"median {u['median']} (min {u['min']}, max {u['max']})",
            ),
        ]
    )
    verdict = "PASS" if r["p99_ms"] <= GOAL_P99_MS else "FAIL"
    print(f"goal p99 <= {GOAL_P99_MS:.0f} ms: {verdict}")
    if result["tasks"] != DEFAULT_TASKS:
        print(f"(not the goal's size: {result['tasks']:,} tasks, at the goal's density)")


# --- main -------------------------------------------------------------------------------------


class RunInvalid(Exception):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.open311", description=__doc__.split("\n\n", 1)[0]
    )
    p.add_argument("--quick", action="store_true", help="1000 posts a kind, 200,000 tasks")
    p.add_argument("--only", choices=("posts", "updates"), help="run one of the two")
    p.add_argument("--requests", type=int, default=3000, help="timed posts of each kind")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds (--quick: 4)")
    p.add_argument("--warmup", type=int, default=200, help="untimed posts of each kind first")
    p.add_argument("--concurrency", type=int, default=50, help="client coroutines (connections)")
    p.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Responder's database for both (postgresql: posts on --postgres-url, whose public "
        "schema is DROPPED; updates on <its name>_open311, loaded once and kept)",
    )
    p.add_argument("--postgres-url", default=POSTGRES_URL)
    p.add_argument("--tasks", type=int, help="updates: tasks in the file (1,000,000)")
    p.add_argument("--windows", type=int, default=300, help="updates: timed two-hour windows")
    p.add_argument("--warmup-windows", type=int, default=20)
    p.add_argument(
        "--budget",
        type=float,
        default=90.0,
        help=f"updates: stop timing after this many seconds (at least {MIN_WINDOWS} windows)",
    )
    p.add_argument("--rebuild", action="store_true", help="build the updates database again")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--output", type=Path, default=RESULTS / "open311.json")
    p.add_argument("--serve-static", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    if args.quick:
        args.windows = min(args.windows, 150)
    output: dict[str, Any] = {
        "benchmark": "open311",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
    }
    problems: list[str] = []
    goals: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="responder-bench-open311-") as name:
        tmp = Path(name)
        council = bench_council(tmp)
        if args.only in (None, "posts"):
            try:
                posts = await run_posts(args, council, tmp)
            except (RunInvalid, ServerStartError) as exc:
                posts = {"problems": [str(exc)]}
            output["posts"] = posts
            problems += posts["problems"]
            if "ratio" in posts:
                print_posts(posts)
                output["open311_posts_per_s"] = posts["open311"]["per_second"]
                output["json_posts_per_s"] = posts["json"]["per_second"]
                output["open311_post_ratio"] = posts["ratio"]
                goals[f"Open311 >= {GOAL_RATIO} x JSON"] = posts["ratio"] >= GOAL_RATIO
        if args.only in (None, "updates"):
            try:
                updates = await run_updates(args, council, tmp)
            except ServerStartError as exc:
                updates = {"problems": [str(exc)]}
            output["updates"] = updates
            problems += updates["problems"]
            if updates.get("windows"):
                print_updates(updates)
                output["open311_updates_p99_ms"] = updates["responder"]["p99_ms"]
                output["open311_updates_p50_ms"] = updates["responder"]["p50_ms"]
                output["open311_updates_tasks"] = updates["tasks"]
                goals[f"updates p99 <= {GOAL_P99_MS:.0f} ms"] = (
                    updates["responder"]["p99_ms"] <= GOAL_P99_MS
                )
    output["goals"] = goals
    output["problems"] = problems
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    if problems:
        for line in problems:
            print(f"RUN INVALID: {line}")
        return 2
    return 0 if all(goals.values()) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_static is not None:
        from bench.server import serve

        asyncio.run(serve(build_static_app(args.serve_static.read_bytes())))
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
