"""A councillor's "status of my cases" against a database of a million tasks (issue 5).

    python -m bench.councillor [--quick] [--tasks N] [--turns N] [--profile] [--rebuild]

A SQLite file of N tasks (1,000,000; 200,000 with ``--quick``) is built once and cached in
bench/results/ (keyed by N and a hash of the migrations, the council file and this
generator): the schema comes from Responder's migrations, the rows from the stdlib
``sqlite3`` module in big transactions. Each run copies it to a temporary directory and
starts, as bench/teams.py does, Responder (``bench.server responder --background``), the
fake Bot Connector and then the stock echo bot of the same Teams SDK (``bench.server echo
--runtime``; ``--runtime`` picks it, the Agents SDK by default). After
cllr-hughes installs the bot, sequential "status of my cases" turns from cllr-hughes are
timed against Responder and as many against the echo bot: server CPU per turn (utime +
stime from /proc, bench.teams.run_turns) and the client's latency per turn.

Goals: CPU per turn <= 0.5 x the echo bot's, p99 latency <= 50 ms. A missed goal gives
exit status 1; a run that is not valid (a turn not answered 200/201, a reply that never
reached the connector, a server that did not start) gives 2. The figures are printed and
written to bench/results/councillor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import pstats
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from bench.common import (
    COUNCIL_FILE,
    DESCRIPTIONS,
    RESULTS,
    ROOT,
    STREETS,
    Figure,
    ServerStartError,
    machine,
    print_rows,
    server_process,
)
from bench.connector import CARD_TYPE, task_ids
from bench.intake import print_profile as print_self_times
from bench.teams import (
    OTHERS_NOTE_SHARE,
    ConnectorLog,
    OtherLoadMeter,
    RunInvalid,
    TeamsUser,
    TurnsResult,
    install_all,
    message,
    responder_args,
    run_turns,
    send_activity,
)
from responder.config import load_council
from responder.config.model import Council
from responder.domain.routing import WardLocator
from responder.domain.vocabulary import DEFAULT_OUTCOMES

OUTCOMES = [o.code for o in DEFAULT_OUTCOMES]
GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0
DEFAULT_TASKS = 1_000_000
QUICK_TASKS = 200_000
COUNCILLOR = "cllr-hughes"
TEXT = "status of my cases"

# The generator: bump DATA_VERSION when what it writes changes, so cached files are rebuilt.
DATA_VERSION = 1
YEARS = 3
DAY = 86_400.0
FOLLOWED = 40  # cases each councillor follows ...
RAISED = 20  # ... of which they raised this many
FOLLOWED_OPEN = 12  # open ones among the followed (the rest closed)
RECENT_DAYS = 90  # tasks younger than this are open with RECENT_OPEN, older with OLD_OPEN
RECENT_OPEN = 0.25
OLD_OPEN = 0.01  # together ~3 % open over three years
COMPLETED_SHARE = 0.96  # of the closed; the rest cancelled
OPEN_MIX = (("unassigned", 0.2), ("assigned", 0.3), ("accepted", 0.2), ("in_progress", 0.3))
VERSION_OF = {
    "unassigned": 1,
    "assigned": 1,
    "accepted": 2,
    "in_progress": 3,
    "completed": 4,
    "cancelled": 2,
}
# How often each type is reported (types missing here: 1).
TYPE_WEIGHTS = {
    "fly-tipping": 20,
    "litter": 15,
    "overflowing-bin": 10,
    "graffiti": 8,
    "dog-fouling": 8,
    "grass-cutting": 8,
    "overgrown-vegetation": 8,
    "tree-concern": 7,
    "broken-glass": 4,
    "dead-animal": 3,
    "fallen-tree": 3,
    "needles": 2,
    "play-equipment": 2,
    "park-bench": 2,
}
SOURCES = (("website", 0.6), ("app", 0.3), ("contact-centre", 0.1))
OFFICER_RAISED = 0.03
POINT_POOL = 50_000  # candidate points drawn over the wards' bounding box
CHUNK = 100_000  # tasks per transaction
UPDATE_NOTES = (
    "Crew booked for Thursday.",
    "Waiting for the skip lorry.",
    "Area cordoned off; work to finish tomorrow.",
    "Contractor on site.",
)

INSERT_TASK = (
    "INSERT INTO tasks (id, type, description, lat, lon, address, ward, team, assignee,"
    " status, priority, due_at, created_at, updated_at, closed_at, source, raised_by,"
    " raised_by_person, photos, priority_reasons, routing_reasons, report_count, outcome,"
    " version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT = (
    "INSERT INTO task_events (task_id, at, actor, action, from_status, to_status, note, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_FOLLOW = "INSERT INTO follows (person_id, task_id, created_at) VALUES (?, ?, ?)"
BULK_TABLES = ("tasks", "task_events", "follows")


# --- the database -------------------------------------------------------------------------


def cache_key() -> str:
    """What the cached file depends on: the migrations, the council file, this generator."""
    digest = hashlib.sha256(f"data-version {DATA_VERSION}\n".encode())
    migrations = ROOT / "responder" / "store" / "migrations"
    council_files = [COUNCIL_FILE, COUNCIL_FILE.parent / "wards.geojson"]
    for path in [*sorted(migrations.rglob("*.py")), *council_files]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()[:12]


_DATES: dict[int, str] = {}


def stamp(t: float) -> str:
    """The text SQLAlchemy stores for a UTC DateTime on SQLite, for an epoch time."""
    us = int(t * 1_000_000)
    day, us_of_day = divmod(us, 86_400_000_000)
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
    seconds, micro = divmod(us_of_day, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{date} {hours:02d}:{minutes:02d}:{secs:02d}.{micro:06d}"


Place = tuple[float, float, str]  # lat, lon, ward


def ward_points(council: Council, count: int, seed: int) -> list[Place]:
    """Points drawn over the wards' bounding box, each kept with the ward the council's
    ``WardLocator`` puts it in (points in no ward are dropped)."""
    locator = WardLocator(council.wards)
    bounds = np.array([w.geometry.bounds for w in council.wards])
    min_lon, min_lat = bounds[:, 0].min(), bounds[:, 1].min()
    max_lon, max_lat = bounds[:, 2].max(), bounds[:, 3].max()
    rng = np.random.default_rng(seed)
    lats = np.round(rng.uniform(min_lat, max_lat, count), 6).tolist()
    lons = np.round(rng.uniform(min_lon, max_lon, count), 6).tolist()
    places: list[Place] = []
    for lat, lon in zip(lats, lons, strict=True):
        ward = locator.locate(lat, lon)
        if ward is not None:
            places.append((lat, lon, ward))
    return places


@dataclass(frozen=True)
class Followed:
    """A case a councillor follows: in one of their wards, of a chosen status."""

    councillor: str
    place: Place
    status: str
    raised: bool  # raised by the councillor (else followed later)


@dataclass
class LoadStats:
    tasks: int
    events: int
    follows: int
    open_tasks: int
    seconds_schema: float
    seconds_rows: float
    seconds_indexes: float

    @property
    def seconds(self) -> float:
        return round(self.seconds_schema + self.seconds_rows + self.seconds_indexes, 1)


class Generator:
    """Rows for the tasks, task_events and follows tables (seeded: the same every time)."""

    def __init__(self, council: Council, count: int, now: float, seed: int) -> None:
        self.council = council
        self.count = count
        self.now = now
        self.rng = random.Random(seed)
        file = council.file
        self.priorities = list(file.priorities)  # most urgent first
        self.hours = {p: float(h) for p, h in file.priorities.items()}
        self.service_of = {t.code: t.service for t in file.task_types}
        self.default_priority = {t.code: t.priority for t in file.task_types}
        self.types = [t.code for t in file.task_types]
        self.teams = {t.code: t for t in file.teams}
        self.team_for: dict[tuple[str, str], str] = {}
        for team in file.teams:  # the first team serving a service in a ward takes it
            for service in team.services:
                for ward in team.wards:
                    self.team_for.setdefault((service, ward), team.code)
        self.places = ward_points(council, POINT_POOL, seed)
        self.places_in: dict[str, list[Place]] = {}
        for place in self.places:
            self.places_in.setdefault(place[2], []).append(place)
        # Creation times, oldest first (ids follow creation order, as autoincrement gives).
        span = YEARS * 365 * DAY
        np_rng = np.random.default_rng(seed)
        self.created = np.sort(np_rng.uniform(now - span, now - 60, count)).tolist()
        self.type_of = self.rng.choices(
            range(len(self.types)), [TYPE_WEIGHTS.get(t, 1) for t in self.types], k=count
        )
        self.place_of = np_rng.integers(0, len(self.places), count).tolist()
        self.followed = self._choose_followed()
        self._json: dict[tuple, str] = {}

    def _choose_followed(self) -> dict[int, Followed]:
        """Task index -> the councillor following it: FOLLOWED cases per councillor with
        wards, created in the last year, FOLLOWED_OPEN of them open, RAISED raised by them."""
        year_ago = int(np.searchsorted(np.array(self.created), self.now - 365 * DAY))
        councillors = [p for p in self.council.file.people if p.role == "councillor" and p.wards]
        wanted = FOLLOWED * len(councillors)
        if self.count - year_ago < wanted:
            raise ValueError(f"too few tasks ({self.count}) for the councillors' cases")
        indexes = self.rng.sample(range(year_ago, self.count), wanted)
        chosen: dict[int, Followed] = {}
        open_cycle = [s for s, _ in OPEN_MIX]
        for n, person in enumerate(councillors):
            statuses = [open_cycle[k % len(open_cycle)] for k in range(FOLLOWED_OPEN)]
            closed = FOLLOWED - FOLLOWED_OPEN
            statuses += ["completed"] * (closed - 2) + ["cancelled"] * 2
            self.rng.shuffle(statuses)
            raised = set(self.rng.sample(range(FOLLOWED), RAISED))
            places = [p for ward in person.wards for p in self.places_in.get(ward, [])]
            mine = indexes[n * FOLLOWED : (n + 1) * FOLLOWED]
            for k, index in enumerate(mine):
                place = self.rng.choice(places)
                chosen[index] = Followed(person.id, place, statuses[k], k in raised)
        return chosen

    def _weighted(self, options: Sequence[tuple[str, float]]) -> str:
        u = self.rng.random()
        for value, weight in options:
            u -= weight
            if u < 0:
                return value
        return options[-1][0]

    def _cached_json(self, key: tuple, value: Any) -> str:
        found = self._json.get(key)
        if found is None:
            found = self._json[key] = json.dumps(value)
        return found

    def rows(self, start: int, stop: int) -> tuple[list[tuple], list[tuple], list[tuple]]:
        """Tasks, events and follows for the tasks of indexes start..stop-1 (id = index + 1)."""
        rng = self.rng
        rnd = rng.random
        now = self.now
        task_rows: list[tuple] = []
        events: list[tuple] = []
        follows: list[tuple] = []
        for i in range(start, stop):
            task_id = i + 1
            created = self.created[i]
            type_code = self.types[self.type_of[i]]
            followed = self.followed.get(i)
            lat, lon, ward = followed.place if followed else self.places[self.place_of[i]]
            team_code = self.team_for.get((self.service_of[type_code], ward))
            if (
                team_code is None
            ):  # no team serves this type here: take the first point that has one
                lat, lon, ward = next(
                    p for p in self.places if (self.service_of[type_code], p[2]) in self.team_for
                )
                team_code = self.team_for[(self.service_of[type_code], ward)]
            team = self.teams[team_code]
            queue = team.routing == "queue"
            officers = team.officers or team.managers or ["system"]

            # Who raised it.
            councillor = followed.councillor if followed and followed.raised else None
            if councillor:
                raised_by, raised_by_person, source, actor = (
                    "councillor",
                    councillor,
                    "teams",
                    councillor,
                )
            elif rnd() < OFFICER_RAISED:
                officer = rng.choice(officers)
                raised_by, raised_by_person, source, actor = "officer", officer, "teams", officer
            else:
                source = self._weighted(SOURCES)
                raised_by, raised_by_person, actor = "resident", None, f"intake:{source}"

            # Where it got to.
            if followed:
                status = followed.status
            else:
                age = now - created
                if rnd() < (RECENT_OPEN if age < RECENT_DAYS * DAY else OLD_OPEN):
                    status = self._weighted(OPEN_MIX)
                else:
                    status = "completed" if rnd() < COMPLETED_SHARE else "cancelled"
            if queue and status == "assigned":
                status = "unassigned"  # queue tasks go from the team's queue to accepted
            if status == "unassigned" or (status == "cancelled" and rnd() < 0.5):
                assignee = None
            else:
                assignee = rng.choice(officers)
            initial = "unassigned" if queue or status == "unassigned" else "assigned"

            priority = self.default_priority[type_code]
            if raised_by == "councillor" and self.priorities.index(priority) > 1:
                priority = self.priorities[1]  # the council's rule: at least high
            hours = self.hours[priority]
            due = created + hours * 3600
            closed = None
            if status == "completed":
                closed = min(now - 1, created + 600 + rng.expovariate(1 / (0.5 * hours * 3600)))
            elif status == "cancelled":
                closed = min(now - 1, created + 600 + rng.expovariate(1 / DAY))
            end = closed if closed is not None else now - 30
            updated = closed if closed is not None else created + (end - created) * rnd() * 0.3
            outcome = None
            if status == "completed":
                outcome = "resolved" if rnd() < 0.8 else rng.choice(OUTCOMES)
            history: list[tuple] = []
            if followed:  # its history in full; its last event is its last change
                history, updated = self._history(
                    task_id, initial, status, assignee, outcome, team, created, end
                )

            priority_reasons = [f"{type_code} is '{self.default_priority[type_code]}' by default"]
            if priority != self.default_priority[type_code]:
                priority_reasons.append(f"rule 1: raised_by {raised_by} -> at least {priority}")
            routing_reasons = [f"{ward} is served by {team_code}", f"routing: {team.routing}"]
            reasons_key = (type_code, priority, ward, team_code)
            task_rows.append(
                (
                    task_id,
                    type_code,
                    rng.choice(DESCRIPTIONS),
                    lat,
                    lon,
                    f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
                    ward,
                    team_code,
                    assignee,
                    status,
                    priority,
                    stamp(due),
                    stamp(created),
                    stamp(updated),
                    None if closed is None else stamp(closed),
                    source,
                    raised_by,
                    raised_by_person,
                    "[]",
                    self._cached_json(("p", *reasons_key), priority_reasons),
                    self._cached_json(("r", *reasons_key), routing_reasons),
                    1 if rnd() < 0.95 else rng.randint(2, 3),
                    outcome,
                    VERSION_OF[status],
                )
            )
            events.append(
                (
                    task_id,
                    stamp(created),
                    actor,
                    "created",
                    None,
                    initial,
                    None,
                    self._cached_json(
                        ("e", *reasons_key),
                        {
                            "priority": priority,
                            "priority_reasons": priority_reasons,
                            "routing_reasons": routing_reasons,
                        },
                    ),
                )
            )
            if followed:
                events += history
                since = created if followed.raised else created + (end - created) * rnd() * 0.2
                follows.append((followed.councillor, task_id, stamp(since)))
        return task_rows, events, follows

    def _history(
        self,
        task_id: int,
        initial: str,
        status: str,
        assignee: str | None,
        outcome: str | None,
        team: Any,
        created: float,
        end: float,
    ) -> tuple[list[tuple], float]:
        """The events after 'created' that bring a followed case to its status, and the
        time of the last one."""
        rng = self.rng
        at = [created + (end - created) * f for f in (0.1, 0.3, 0.6, 1.0)]
        worker = assignee or "system"
        events: list[tuple] = []
        current = initial
        last = created
        if status in ("accepted", "in_progress", "completed"):
            events.append(
                (task_id, stamp(at[0]), worker, "accept", current, "accepted", None, None)
            )
            current, last = "accepted", at[0]
        if status in ("in_progress", "completed") and (
            status == "in_progress" or rng.random() < 0.7
        ):
            events.append(
                (task_id, stamp(at[1]), worker, "start", current, "in_progress", None, None)
            )
            current, last = "in_progress", at[1]
            if rng.random() < 0.6:
                note = rng.choice(UPDATE_NOTES)
                events.append(
                    (task_id, stamp(at[2]), worker, "update", current, current, note, None)
                )
                last = at[2]
        if status == "completed":
            data = json.dumps({"outcome": outcome})
            events.append(
                (task_id, stamp(at[3]), worker, "complete", current, "completed", None, data)
            )
        elif status == "cancelled":
            manager = team.managers[0] if team.managers else "system"
            note = "Duplicate of an earlier case."
            events.append(
                (task_id, stamp(at[3]), manager, "cancel", current, "cancelled", note, None)
            )
        if status in ("completed", "cancelled"):
            last = at[3]
        return events, last


async def create_schema(path: Path) -> None:
    """An empty database at the head revision, by Responder's own migrations."""
    from responder.store.db import Database
    from responder.store.migrate import upgrade

    db = Database(f"sqlite:///{path}")
    try:
        await upgrade(db)
    finally:
        await db.dispose()


def build_database(path: Path, count: int, seed: int) -> LoadStats:
    """Write a database of ``count`` tasks to ``path`` (replacing it)."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    asyncio.run(create_schema(path))
    schema_done = time.perf_counter()

    council = load_council(COUNCIL_FILE)
    generator = Generator(council, count, now=time.time(), seed=seed)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # Only while loading: no rollback journal, no fsync, a big page cache.
        for pragma in (
            "PRAGMA journal_mode=OFF",
            "PRAGMA synchronous=OFF",
            "PRAGMA cache_size=-262144",
            "PRAGMA temp_store=MEMORY",
            "PRAGMA foreign_keys=OFF",
        ):
            con.execute(pragma)
        # Secondary indexes are dropped and made again after the load (one sort each,
        # instead of a million random inserts into each).
        marks = ",".join("?" * len(BULK_TABLES))
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({marks})",
            BULK_TABLES,
        ).fetchall()
        for name, _sql in indexes:
            con.execute(f'DROP INDEX "{name}"')
        events = follows = 0
        for start in range(0, count, CHUNK):
            task_rows, event_rows, follow_rows = generator.rows(start, min(count, start + CHUNK))
            con.execute("BEGIN")
            con.executemany(INSERT_TASK, task_rows)
            con.executemany(INSERT_EVENT, event_rows)
            con.executemany(INSERT_FOLLOW, follow_rows)
            con.execute("COMMIT")
            events += len(event_rows)
            follows += len(follow_rows)
            done = min(count, start + CHUNK)
            print(f"  {done:,} tasks ({time.perf_counter() - schema_done:.0f} s)", flush=True)
        rows_done = time.perf_counter()
        for _name, sql in indexes:
            con.execute(sql)
        con.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy
        open_tasks = con.execute(
            "SELECT count(*) FROM tasks WHERE status NOT IN ('completed', 'cancelled')"
        ).fetchone()[0]
        check_database(con, council, count)
    finally:
        con.close()
    finished = time.perf_counter()
    return LoadStats(
        tasks=count,
        events=events,
        follows=follows,
        open_tasks=open_tasks,
        seconds_schema=round(schema_done - started, 2),
        seconds_rows=round(rows_done - schema_done, 2),
        seconds_indexes=round(finished - rows_done, 2),
    )


def check_database(con: sqlite3.Connection, council: Council, count: int) -> None:
    """The load's own checks: every row there, wards as the council's locator sees them."""
    stored = con.execute("SELECT count(*), max(id) FROM tasks").fetchone()
    if tuple(stored) != (count, count):
        raise RuntimeError(f"load: tasks count/max id {tuple(stored)}, expected {count}")
    locator = WardLocator(council.wards)
    sample = con.execute(
        "SELECT lat, lon, ward FROM tasks WHERE id % ? = 0", (max(1, count // 2000),)
    ).fetchall()
    wrong = [row for row in sample if locator.locate(row[0], row[1]) != row[2]]
    if wrong:
        raise RuntimeError(f"load: {len(wrong)} of {len(sample)} sampled tasks in the wrong ward")
    mine = con.execute("SELECT count(*) FROM follows WHERE person_id = ?", (COUNCILLOR,))
    if mine.fetchone()[0] != FOLLOWED:
        raise RuntimeError(f"load: {COUNCILLOR} does not follow {FOLLOWED} cases")


def cached_database(count: int, seed: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """The cached file for ``count`` tasks (built now if missing) and its load figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    path = RESULTS / f"councillor-{count}-{seed}-{key}.db"
    info_path = path.with_suffix(".json")
    for stale in RESULTS.glob("councillor-*-*-*.db"):  # files of an older schema or generator
        if not stale.name.endswith(f"-{key}.db"):
            stale.unlink()
            stale.with_suffix(".json").unlink(missing_ok=True)
    if path.exists() and info_path.exists() and not rebuild:
        info = json.loads(info_path.read_text())
        print(
            f"database: {count:,} tasks from the cache ({path.name}, built in "
            f"{info['load_seconds']:.1f} s)",
            flush=True,
        )
        return path, info | {"cached": True}
    print(f"database: building {count:,} tasks (cached afterwards as {path.name}) ...", flush=True)
    building = path.with_name(f".building-{path.name}")
    stats = build_database(building, count, seed)
    building.rename(path)
    info = asdict(stats) | {"load_seconds": stats.seconds, "size_mb": path.stat().st_size >> 20}
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"database: {stats.tasks:,} tasks ({stats.open_tasks:,} open), {stats.events:,} events, "
        f"{stats.follows} follows loaded in {stats.seconds:.1f} s (schema "
        f"{stats.seconds_schema:.1f} s, rows {stats.seconds_rows:.1f} s, indexes "
        f"{stats.seconds_indexes:.1f} s); {info['size_mb']} MB",
        flush=True,
    )
    return path, info | {"cached": False}


# --- what the bot replied -------------------------------------------------------------------


class Capture:
    """A throwaway Bot Connector in this process that keeps whole activities, so the
    reader can see what was measured (the fake connector keeps only task ids and texts)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.runner: web.AppRunner | None = None

    async def _keep(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.arrived.set()
        return web.json_response({"id": f"probe-{len(self.bodies)}"}, status=201)

    async def start(self) -> str:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        for route in ("/v3/conversations/{conv}/activities", "/v3/conversations/{conv}/{rest:.*}"):
            app.router.add_post(route, self._keep)
            app.router.add_put(route, self._keep)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _first_text(node: Any) -> str | None:
    """The first TextBlock's text in an Adaptive Card (depth first): its title."""
    if isinstance(node, dict):
        if node.get("type") == "TextBlock" and isinstance(node.get("text"), str):
            return node["text"]
        children: Any = [v for k, v in node.items() if k in ("body", "items", "columns", "card")]
        children += [node.get("actions") or []]
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _first_text(child)
        if found is not None:
            return found
    return None


def describe_reply(body: dict[str, Any]) -> str:
    for attachment in body.get("attachments") or []:
        if attachment.get("contentType") == CARD_TYPE.decode():
            title = _first_text(attachment.get("content") or {})
            ids = task_ids(json.dumps(body).encode())
            return f"card {title!r} with {len(ids)} cases linked"
    text = str(body.get("text") or "")
    return f"text {text[:100]!r}" + (" ..." if len(text) > 100 else "")


async def probe(session: aiohttp.ClientSession, bot: Any, user: TeamsUser) -> str:
    """One turn whose replies go to a Capture: what the timed turns are answered with."""
    capture = Capture()
    url = await capture.start()
    try:
        status = await send_activity(session, bot, message(user, TEXT, url))
        if status not in (200, 201):
            raise RunInvalid(f"the probe turn answered {status}")
        try:
            await asyncio.wait_for(capture.arrived.wait(), 10)
        except TimeoutError:
            raise RunInvalid("the probe turn's reply never reached the connector") from None
        await asyncio.sleep(0.2)  # more replies to the same turn
        described = [describe_reply(b) for b in capture.bodies]
        return "; ".join(described)
    finally:
        await capture.stop()


# --- the turns ------------------------------------------------------------------------------


@dataclass
class Turns:
    ours: TurnsResult
    echo: TurnsResult
    first_reply: str
    echo_reply: str | None
    idle_cpu_share: float | None  # Responder's CPU while no turn is going (1.0: a core)


def councillor_user(council: Council) -> TeamsUser:
    person = next(p for p in council.file.people if p.id == COUNCILLOR)
    assert person.aad_object_id, f"{COUNCILLOR} has no aad_object_id in the council file"
    return TeamsUser(person.id, person.name, person.aad_object_id)


async def idle_cpu_share(server: Any, seconds: float = 2.0) -> float | None:
    """The share of a core the server uses while nothing is asked of it."""
    before, started = server.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    after, elapsed = server.cpu_seconds(), time.monotonic() - started
    return None if before is None or after is None else round((after - before) / elapsed, 3)


async def measure(
    database: Path,
    *,
    turns: int,
    warmup: int,
    profile: Path | None,
    dispatcher: bool = True,
    runtime: str = "agents",
) -> Turns:
    user = councillor_user(load_council(COUNCIL_FILE))
    async with (
        server_process(["connector"]) as connector,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
    ):
        log = ConnectorLog(session, connector)
        url = log.service_url
        args = responder_args(database, COUNCIL_FILE, background=dispatcher, runtime=runtime)
        if profile is not None:
            args += ["--profile", str(profile), "--profile-on-signal"]
        async with server_process(args, start_timeout=120) as responder:
            await install_all(session, responder, [user], url)
            first_reply = await probe(session, responder, user)
            for _ in range(warmup):
                await send_activity(session, responder, message(user, TEXT, url))
            await asyncio.sleep(0.5)  # the dispatcher idle again
            idle = await idle_cpu_share(responder)
            if profile is not None:
                responder.process.send_signal(signal.SIGUSR1)
                await asyncio.sleep(0.3)
            ours = await run_turns(
                session,
                responder,
                log,
                lambda: message(user, TEXT, url),
                bot_name="responder",
                runtime=runtime,
                who=COUNCILLOR,
                turns=turns,
                warmup=0,
            )
            if profile is not None:
                responder.process.send_signal(signal.SIGUSR2)
                await asyncio.sleep(0.3)
        async with server_process(["echo", "--runtime", runtime]) as echo_server:
            echo = await run_turns(
                session,
                echo_server,
                log,
                lambda: message(user, TEXT, url),
                bot_name="echo",
                runtime=runtime,
                who=COUNCILLOR,
                turns=turns,
                warmup=warmup,
            )
        echo_reply = log.arrivals[-1].text if log.arrivals else None
    return Turns(ours, echo, first_reply, echo_reply, idle)


# --- report -----------------------------------------------------------------------------------


def figures(t: Turns, ratio: float) -> list[Figure]:
    ours, echo = t.ours, t.echo
    return [
        Figure(
            f"server CPU per turn, {COUNCILLOR} {TEXT!r}",
            f"<= {GOAL_RATIO:g} x echo",
            f"echo {echo.cpu_ms_per_turn:.2f} ms",
            f"{ours.cpu_ms_per_turn:.2f} ms (x{ratio:.2f} echo)",
            ratio <= GOAL_RATIO,
        ),
        Figure(
            "turn latency p99 (one user, sequential)",
            f"<= {GOAL_P99_MS:g} ms",
            f"echo {echo.p99_ms:.1f} ms",
            f"{ours.p99_ms:.1f} ms",
            ours.p99_ms <= GOAL_P99_MS,
        ),
        Figure(
            "turn latency p50",
            "info",
            f"echo {echo.p50_ms:.1f} ms",
            f"{ours.p50_ms:.1f} ms",
            None,
        ),
        Figure(
            "replies at the connector",
            ">= 1 per turn",
            f"echo {echo.replies}/{echo.turns}",
            f"{ours.replies}/{ours.turns}",
            None,
        ),
    ] + ([] if t.idle_cpu_share is None else [idle_figure(t.idle_cpu_share)])


def idle_figure(share: float) -> Figure:
    """What Responder's process burns with nothing to do: it is counted in every turn."""
    return Figure(
        "Responder's CPU while idle (2 s before the turns)",
        "info (~0)",
        "-",
        f"{share:.0%} of a core (compare a run with --no-dispatcher)",
        None,
    )


def print_profile(path: Path, top: int = 25) -> None:
    """The costliest calls during the timed turns by cumulative time, then (as bench.intake
    prints them) self time per package and the costliest functions by self time."""
    if not path.exists():
        print(f"no profile was written ({path})")
        return
    pstats.Stats(str(path)).strip_dirs().sort_stats("cumulative").print_stats(top)
    print_self_times(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.councillor", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--quick", action="store_true", help=f"{QUICK_TASKS:,} tasks instead of {DEFAULT_TASKS:,}"
    )
    p.add_argument("--tasks", type=int, help=f"tasks in the database (default {DEFAULT_TASKS:,})")
    p.add_argument("--turns", type=int, default=500, help="timed turns per bot")
    p.add_argument("--warmup", type=int, default=50, help="untimed turns per bot first")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated database")
    p.add_argument("--rebuild", action="store_true", help="build the database even if cached")
    p.add_argument(
        "--no-dispatcher",
        action="store_true",
        help="run Responder without its outbox dispatcher (diagnosis: the goal is measured "
        "with it running, as in production)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="run Responder's server under cProfile during the timed turns (slower: its "
        "figures are not comparable) and print the top entries",
    )
    p.add_argument(
        "--runtime",
        choices=("agents", "botbuilder"),
        default="agents",
        help="the Teams SDK of Responder and of the echo bot it is compared with",
    )
    p.add_argument("--output", type=Path, help="default bench/results/councillor.json")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    count = args.tasks or (QUICK_TASKS if args.quick else DEFAULT_TASKS)
    scale = f"{count:,} tasks"
    if count != DEFAULT_TASKS:
        scale += f" (NOT the goal's {DEFAULT_TASKS:,}{': --quick' if args.quick else ''})"
    if args.no_dispatcher:
        scale += ", Responder's dispatcher OFF (not the production set-up)"
    output = args.output or RESULTS / (
        "councillor-profile.json" if args.profile else "councillor.json"
    )
    profile_path = RESULTS / "councillor-responder.prof" if args.profile else None
    if profile_path is not None:
        profile_path.unlink(missing_ok=True)
    print(f"councillor bench: {scale}, {args.turns} turns per bot", flush=True)
    cached, load = cached_database(count, args.seed, args.rebuild)

    invalid: list[str] = []
    turns: Turns | None = None
    meter = OtherLoadMeter()
    with tempfile.TemporaryDirectory(prefix="responder-bench-councillor-") as tmp:
        database = Path(tmp) / "councillor.db"
        shutil.copyfile(cached, database)  # the server writes (people, conversations, state)
        print(f"turns: {args.warmup} warm-up + {args.turns} timed per bot ...", flush=True)
        try:
            turns = asyncio.run(
                measure(
                    database,
                    turns=args.turns,
                    warmup=args.warmup,
                    profile=profile_path,
                    dispatcher=not args.no_dispatcher,
                    runtime=args.runtime,
                )
            )
        except (RunInvalid, ServerStartError) as exc:
            print(f"  RUN INVALID: {exc}", flush=True)
            invalid.append(str(exc))
    other = meter.stop()

    result: dict[str, Any] = {
        "benchmark": "councillor",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "tasks": count,
        "settings": {
            "quick": args.quick,
            "turns": args.turns,
            "warmup": args.warmup,
            "seed": args.seed,
            "text": TEXT,
            "councillor": COUNCILLOR,
            "profiled": args.profile,
            "dispatcher": not args.no_dispatcher,
            "runtime": args.runtime,
        },
        "database": load,
        "other_load": asdict(other),
    }
    goals: dict[str, bool] = {}
    if turns is not None:
        ours, echo = turns.ours, turns.echo
        ratio = (
            ours.cpu_ms_per_turn / echo.cpu_ms_per_turn if echo.cpu_ms_per_turn else float("nan")
        )
        rows = [("figure", "goal", "baseline", "value", "")]
        table = figures(turns, ratio)
        rows += [(f.name, f.goal, f.baseline, f.value, f.verdict) for f in table]
        print(
            f"\n{scale}; database load {load['load_seconds']:.1f} s"
            f"{' (cached)' if load['cached'] else ''}"
        )
        print_rows(rows)
        print(f"measured: the reply to {TEXT!r} was {turns.first_reply}")
        print(f"echo replied: {turns.echo_reply!r}")
        goals = {f.name: bool(f.met) for f in table if f.met is not None}
        result |= {
            "bot_turn_cpu_ratio": round(ratio, 3),
            "councillor_turn_cpu_ms": ours.cpu_ms_per_turn,
            "echo_turn_cpu_ms": echo.cpu_ms_per_turn,
            "councillor_turn_p50_ms": ours.p50_ms,
            "councillor_turn_p99_ms": ours.p99_ms,
            "echo_turn_p50_ms": echo.p50_ms,
            "echo_turn_p99_ms": echo.p99_ms,
            "first_reply": turns.first_reply,
            "echo_reply": turns.echo_reply,
            "responder_idle_cpu_share": turns.idle_cpu_share,
            "turns": [asdict(ours), asdict(echo)],
        }
    if other.other_share > OTHERS_NOTE_SHARE:
        print(
            f"note: other processes used {other.other_share:.0%} of the machine's CPUs "
            f"({other.other_cpu_s:.1f} CPU s in {other.seconds:.0f} s): the figures are skewed; "
            "run again on a quiet machine"
        )
    if args.profile and profile_path is not None:
        print("\nResponder was profiled (cProfile): its figures above are not comparable.")
        print(f"stats of the timed turns in {profile_path} (python -m pstats {profile_path})\n")
        print_profile(profile_path)
    result |= {"goals": goals, "invalid": invalid, "valid": not invalid}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {output}")
    if invalid:
        print(f"RUN INVALID: {invalid[0]}")
        return 2
    return 0 if goals and all(goals.values()) else 1


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
