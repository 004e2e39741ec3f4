"""Building the managers' digest for a council with 100,000 open tasks.

    python -m bench.digest [--quick] [--open N] [--runs N] [--rebuild]

A SQLite file with N open tasks (100,000; 20,000 with ``--quick``) and three closed tasks
of history for each open one is built once and cached in bench/results/ (keyed by N, the
seed and a hash of the migrations, the council file and this generator): the schema and
the people come from Responder's migrations and ``sync_council``, the task rows from the
stdlib ``sqlite3`` module. The run opens the file read-only through SQLAlchemy, finds the
team with the most open tasks, and times ``build_digest`` for it over the last 24 hours
(one untimed first build, then ``--runs`` timed ones: median and max), beside a baseline
timed the same way on the same connection: ``SELECT count(*) FROM tasks WHERE status IN
(<open statuses>)``, one index-only count of the open tasks.

Goal: the median build <= 500 ms at 100,000 open tasks. It also reports ms per 10,000
open tasks (and, for a smaller file, the time scaled linearly to 100,000), the time of
each statement of the build, and checks the digest's open count against a plain count.
Exit status: 0 goal met, 1 goal missed, 2 run invalid (the digest's figures disagree with
the plain counts). Figures go to bench/results/digest.json (``digest_100k_ms``) or, with
``--quick`` or ``--open``, bench/results/digest-<N>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, event

from bench.common import COUNCIL_FILE, DESCRIPTIONS, RESULTS, ROOT, STREETS, machine, print_rows
from bench.councillor import INSERT_TASK, OPEN_MIX, TYPE_WEIGHTS, stamp, ward_points
from responder.config import load_council
from responder.config.model import Council
from responder.domain.context import Domain
from responder.domain.lifecycle import OPEN_STATUSES
from responder.domain.vocabulary import DEFAULT_OUTCOMES
from responder.queries.digest import build_digest

OUTCOMES = [o.code for o in DEFAULT_OUTCOMES]
GOAL_MS = 500.0
GOAL_OPEN = 100_000
QUICK_OPEN = 20_000
HISTORY = 3  # closed tasks per open task
OPEN_DAYS = 180  # open tasks were reported over this many days (a large backlog) ...
CLOSED_DAYS = 365  # ... closed ones over a year
POINT_POOL = 20_000
CHUNK = 100_000
DAY = 86_400.0
# Bump when what the generator writes changes, so cached files are rebuilt.
DATA_VERSION = 1
_OPEN = sorted(s.value for s in OPEN_STATUSES)


# --- the database -------------------------------------------------------------------------


def cache_key() -> str:
    digest = hashlib.sha256(f"digest data-version {DATA_VERSION}\n".encode())
    migrations = ROOT / "responder" / "store" / "migrations"
    council_files = [COUNCIL_FILE, COUNCIL_FILE.parent / "wards.geojson"]
    for path in [*sorted(migrations.rglob("*.py")), *council_files]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()[:12]


async def create_schema(path: Path, council: Council, now: datetime) -> None:
    """Migrations, then the council's people and teams, as the service does on start-up."""
    from responder.store.db import Database
    from responder.store.migrate import upgrade
    from responder.store.sync import sync_council

    db = Database(f"sqlite:///{path}")
    try:
        await upgrade(db)
        await sync_council(db, council, now)
    finally:
        await db.dispose()


class Generator:
    """Task rows: ids in creation order, open ones over OPEN_DAYS, closed over CLOSED_DAYS."""

    def __init__(self, council: Council, open_count: int, now: float, seed: int) -> None:
        file = council.file
        self.rng = random.Random(seed)
        self.now = now
        self.hours = {p: float(h) for p, h in file.priorities.items()}
        self.service_of = {t.code: t.service for t in file.task_types}
        self.priority_of = {t.code: t.priority for t in file.task_types}
        self.types = [t.code for t in file.task_types]
        self.type_weights = [TYPE_WEIGHTS.get(t, 1) for t in self.types]
        self.teams = {t.code: t for t in file.teams}
        self.team_for: dict[tuple[str, str], str] = {}
        for team in file.teams:  # the first team serving a service in a ward takes it
            for service in team.services:
                for ward in team.wards:
                    self.team_for.setdefault((service, ward), team.code)
        self.places = ward_points(council, POINT_POOL, seed)
        np_rng = np.random.default_rng(seed)
        closed_count = open_count * HISTORY
        created = np.concatenate(
            [
                np_rng.uniform(now - OPEN_DAYS * DAY, now - 60, open_count),
                np_rng.uniform(now - CLOSED_DAYS * DAY, now - 600, closed_count),
            ]
        )
        is_open = np.concatenate([np.ones(open_count, bool), np.zeros(closed_count, bool)])
        order = np.argsort(created, kind="stable")
        self.created = created[order].tolist()
        self.is_open = is_open[order].tolist()
        self.count = len(self.created)

    def _open_status(self) -> str:
        u = self.rng.random()
        for status, share in OPEN_MIX:
            u -= share
            if u < 0:
                return status
        return OPEN_MIX[-1][0]

    def rows(self, start: int, stop: int) -> list[tuple]:
        rng = self.rng
        out = []
        types = rng.choices(self.types, self.type_weights, k=stop - start)
        for i in range(start, stop):
            type_code = types[i - start]
            service = self.service_of[type_code]
            while True:
                lat, lon, ward = rng.choice(self.places)
                team_code = self.team_for.get((service, ward))
                if team_code is not None:
                    break
            team = self.teams[team_code]
            created = self.created[i]
            priority = self.priority_of[type_code]
            hours = self.hours[priority]
            due = created + hours * 3600
            closed = outcome = None
            if self.is_open[i]:
                status = self._open_status()
                if team.routing == "queue" and status == "assigned":
                    status = "unassigned"
            else:
                status = "completed" if rng.random() < 0.96 else "cancelled"
                # Most work is done within its due time, some of it late.
                closed = min(
                    self.now - 1, created + 600 + rng.expovariate(1 / (0.6 * hours * 3600))
                )
                if status == "completed":
                    outcome = "resolved" if rng.random() < 0.8 else rng.choice(OUTCOMES)
            assignee = None
            if status != "unassigned" and team.officers:
                assignee = rng.choice(team.officers)
            updated = closed if closed is not None else created + 0.3 * (self.now - created)
            out.append(
                (
                    i + 1,
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
                    "website",
                    "resident",
                    None,
                    "[]",
                    "[]",
                    "[]",
                    1,
                    outcome,
                    1,
                )
            )
        return out


@dataclass
class LoadStats:
    open_tasks: int
    tasks: int
    seconds: float
    size_mb: int
    now: str  # the generator's "now": the digest period ends here
    off_duty: str | None  # the busiest team's officer marked off duty


def build_database(path: Path, open_count: int, seed: int) -> LoadStats:
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    council = load_council(COUNCIL_FILE)
    now = datetime.now(UTC).replace(microsecond=0)
    asyncio.run(create_schema(path, council, now))
    generator = Generator(council, open_count, now.timestamp(), seed)
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
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name = 'tasks'"
        ).fetchall()
        for name, _sql in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for start in range(0, generator.count, CHUNK):
            stop = min(generator.count, start + CHUNK)
            con.execute("BEGIN")
            con.executemany(INSERT_TASK, generator.rows(start, stop))
            con.execute("COMMIT")
            print(f"  {stop:,} tasks ({time.perf_counter() - started:.0f} s)", flush=True)
        for _name, sql in indexes:
            con.execute(sql)
        marks = ",".join("?" * len(_OPEN))
        stored_open = con.execute(
            f"SELECT count(*) FROM tasks WHERE status IN ({marks})", _OPEN
        ).fetchone()[0]
        # The busiest team's last officer is off duty (the digest says so).
        busiest = con.execute(
            f"SELECT team FROM tasks WHERE status IN ({marks})"
            " GROUP BY team ORDER BY count(*) DESC LIMIT 1",
            _OPEN,
        ).fetchone()[0]
        officers = generator.teams[busiest].officers
        off_duty = officers[-1] if officers else None
        con.execute("UPDATE people SET on_duty = 0 WHERE id = ?", (off_duty,))
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()
    if stored_open != open_count:
        raise RuntimeError(f"load: {stored_open} open tasks, expected {open_count}")
    return LoadStats(
        open_tasks=open_count,
        tasks=generator.count,
        seconds=round(time.perf_counter() - started, 1),
        size_mb=path.stat().st_size >> 20,
        now=now.isoformat(),
        off_duty=off_duty,
    )


def cached_database(open_count: int, seed: int, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    path = RESULTS / f"digest-{open_count}-{seed}-{key}.db"
    info_path = path.with_suffix(".json")
    for stale in RESULTS.glob("digest-*-*-*.db"):  # an older schema or generator
        if not stale.name.endswith(f"-{key}.db"):
            stale.unlink()
            stale.with_suffix(".json").unlink(missing_ok=True)
    if path.exists() and info_path.exists() and not rebuild:
        info = json.loads(info_path.read_text())
        print(f"database: {info['tasks']:,} tasks from the cache ({path.name})", flush=True)
        return path, info | {"cached": True}
    print(
        f"database: building {open_count:,} open + {open_count * HISTORY:,} closed tasks "
        f"(cached afterwards as {path.name}) ...",
        flush=True,
    )
    building = path.with_name(f".building-{path.name}")
    stats = build_database(building, open_count, seed)
    building.rename(path)
    info = asdict(stats)
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"database: {stats.tasks:,} tasks ({stats.open_tasks:,} open) in {stats.seconds:.1f} s; "
        f"{stats.size_mb} MB",
        flush=True,
    )
    return path, info | {"cached": False}


# --- the timing ---------------------------------------------------------------------------


class StatementTimer:
    """Wall time of each statement the connection runs (SQLAlchemy cursor events)."""

    def __init__(self, engine) -> None:
        self.times: list[tuple[str, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_started")
        self.times.append((statement, elapsed))


def describe(statement: str) -> str:
    """A statement's gist for the table: what it selects and groups or orders by."""
    flat = " ".join(statement.split())
    head = flat[7 : flat.find(" FROM ")] if flat.startswith("SELECT") else flat[:40]
    tail = ""
    for clause in (" GROUP BY ", " ORDER BY "):
        at = flat.find(clause)
        if at >= 0:
            tail = flat[at : at + 60].split(" LIMIT ")[0]
            break
    where = "period" if "created_at >=" in flat or "closed_at >=" in flat else ""
    where = where or ("open" if "status IN" in flat else "")
    words = f"{head[:50]}{'…' if len(head) > 50 else ''}"
    return f"{words} [{where}]{tail}".strip()


def run(args: argparse.Namespace) -> int:
    open_count = args.open or (QUICK_OPEN if args.quick else GOAL_OPEN)
    scale = f"{open_count:,} open tasks"
    if open_count != GOAL_OPEN:
        scale += f" (NOT the goal's {GOAL_OPEN:,}{': --quick' if args.quick else ''})"
    print(f"digest bench: {scale}, {args.runs} timed runs", flush=True)
    path, load = cached_database(open_count, args.seed, args.rebuild)

    council = load_council(COUNCIL_FILE)
    domain = Domain.for_council(council)
    until = datetime.fromisoformat(load["now"])
    since = until - timedelta(hours=24)
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    timer = StatementTimer(engine)
    invalid: list[str] = []
    with engine.connect() as conn:
        sql = conn.exec_driver_sql
        marks = ",".join("?" * len(_OPEN))
        team, team_open = sql(
            f"SELECT team, count(*) FROM tasks WHERE status IN ({marks})"
            " GROUP BY team ORDER BY 2 DESC LIMIT 1",
            tuple(_OPEN),
        ).one()
        total_tasks = sql("SELECT count(*) FROM tasks").scalar_one()
        timer.times.clear()

        def build():
            return build_digest(conn, domain, team, since, until, until)

        started = time.perf_counter()
        digest = build()
        first_ms = (time.perf_counter() - started) * 1000
        builds: list[float] = []
        statements: list[list[tuple[str, float]]] = []
        for _ in range(args.runs):
            timer.times.clear()
            started = time.perf_counter()
            build()
            builds.append((time.perf_counter() - started) * 1000)
            statements.append(list(timer.times))
        baseline: list[float] = []
        count_open = f"SELECT count(*) FROM tasks WHERE status IN ({marks})"
        for _ in range(args.runs):
            started = time.perf_counter()
            sql(count_open, tuple(_OPEN)).scalar_one()
            baseline.append((time.perf_counter() - started) * 1000)

        # The digest's own numbers against plain counts of the same rows.
        plain_new = sql(
            "SELECT count(*) FROM tasks WHERE team = ? AND created_at >= ? AND created_at < ?",
            (team, stamp(since.timestamp()), stamp(until.timestamp())),
        ).scalar_one()
        checks = {
            "open": (digest.open, team_open),
            "new": (digest.new, plain_new),
            "officer loads + unassigned": (
                sum(o.open for o in digest.officers) + digest.unassigned,
                team_open,
            ),
        }
        for name, (ours, plain) in checks.items():
            if ours != plain:
                invalid.append(f"digest {name} {ours} != plain count {plain}")

    median_ms = statistics.median(builds)
    max_ms = max(builds)
    base_ms = statistics.median(baseline)
    per_10k = median_ms / (open_count / 10_000)
    scaled = median_ms * GOAL_OPEN / open_count
    met = median_ms <= GOAL_MS if open_count == GOAL_OPEN else None
    # The statements of the median run, slowest first.
    median_run = statements[builds.index(sorted(builds)[len(builds) // 2])]
    by_statement = sorted(
        ((describe(s), t * 1000) for s, t in median_run), key=lambda x: x[1], reverse=True
    )

    print(
        f"\n{total_tasks:,} tasks, {open_count:,} open; busiest team {team} "
        f"({team_open:,} open); period {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"digest: new {digest.new}, completed {digest.completed} "
        f"({digest.completed_in_time} in time), open {digest.open}, overdue {digest.overdue}, "
        f"off duty {', '.join(digest.off_duty) or 'nobody'}"
    )
    rows = [("figure", "goal", "value", "")]
    verdict = "info" if met is None else ("PASS" if met else "FAIL")
    rows.append(
        (
            f"build_digest, median of {args.runs}",
            f"<= {GOAL_MS:.0f} ms",
            f"{median_ms:.1f} ms",
            verdict,
        )
    )
    rows.append((f"build_digest, max of {args.runs}", "info", f"{max_ms:.1f} ms", "info"))
    rows.append(("build_digest, first build", "info", f"{first_ms:.1f} ms", "info"))
    rows.append(("baseline: count(*) of open tasks", "info", f"{base_ms:.1f} ms", "info"))
    rows.append(("ratio to the baseline", "info", f"{median_ms / base_ms:.1f}x", "info"))
    rows.append(("per 10,000 open tasks", "info", f"{per_10k:.1f} ms", "info"))
    if open_count != GOAL_OPEN:
        rows.append(
            (
                f"scaled to {GOAL_OPEN:,} (linear)",
                f"<= {GOAL_MS:.0f} ms",
                f"{scaled:.0f} ms",
                "info",
            )
        )
    print_rows(rows)
    print("\nstatements of the median build, slowest first:")
    print_rows([("ms", "statement")] + [(f"{t:7.2f}", d) for d, t in by_statement])
    for problem in invalid:
        print(f"RUN INVALID: {problem}")

    result: dict[str, Any] = {
        "benchmark": "digest",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "open_tasks": open_count,
        "tasks": total_tasks,
        "team": team,
        "team_open_tasks": team_open,
        "runs": args.runs,
        "digest_ms_median": round(median_ms, 2),
        "digest_ms_max": round(max_ms, 2),
        "digest_ms_first": round(first_ms, 2),
        "baseline_count_open_ms": round(base_ms, 2),
        "ratio_to_baseline": round(median_ms / base_ms, 2),
        "ms_per_10k_open": round(per_10k, 2),
        "statements_ms": [(d, round(t, 2)) for d, t in by_statement],
        "figures": {
            "new": digest.new,
            "completed": digest.completed,
            "completed_in_time": digest.completed_in_time,
            "open": digest.open,
            "overdue": digest.overdue,
            "checked_against_plain_counts": not invalid,
        },
        "database": load,
        "goal_ms": GOAL_MS,
        "invalid": invalid,
    }
    if open_count == GOAL_OPEN:
        result["digest_100k_ms"] = round(median_ms, 2)
        result["goal_met"] = met
        output = args.output or RESULTS / "digest.json"
    else:
        result["scaled_100k_ms"] = round(scaled, 1)
        output = args.output or RESULTS / f"digest-{open_count}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {output}")
    if invalid:
        return 2
    return 1 if met is False else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.digest", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help=f"{QUICK_OPEN:,} open tasks instead of {GOAL_OPEN:,}"
    )
    p.add_argument("--open", type=int, help=f"open tasks in the database (default {GOAL_OPEN:,})")
    p.add_argument("--runs", type=int, default=9, help="timed builds (and baseline counts)")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated database")
    p.add_argument("--rebuild", action="store_true", help="build the database even if cached")
    p.add_argument("--output", type=Path, help="default bench/results/digest.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
