"""Intake throughput: Responder's ``POST /api/tasks`` against a bare one-INSERT aiohttp handler.

    python -m bench.intake [--requests N | --quick] [--concurrency 50]
                           [--database sqlite|postgresql] [--profile]

Each side runs in its own server process (``bench.server``) on 127.0.0.1; the load
generator (``concurrency`` client coroutines over one aiohttp connector) runs here. Both
sides receive the same kind of body; each side gets a warm-up, then ``N`` timed requests.
Every answer must be 201: anything else makes the run invalid (exit status 2). A missed
goal gives exit status 1. The figures are printed and written to bench/results/intake.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg

from bench.common import (
    COUNCIL_FILE,
    RESULTS,
    machine,
    make_bodies,
    percentile,
    print_rows,
    run_main,
    server_process,
)
from bench.server import BENCH_KEY_SECRET

# Never `test`: the test suite uses that database, and --database postgresql drops the
# public schema of whatever it targets.
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/responder_bench"
)

GOAL_TASKS_PER_S = 500.0
GOAL_RATIO = 0.45

# Each side's server on a CPU of its own, the load generator on the rest: sharing the CPUs,
# the one-INSERT baseline swung between ~1,400 and ~3,500 inserts/s from run to run (its
# thread hops and the client's competing for the same cores), and the ratio with it.
_ALL_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = {_ALL_CPUS[-1]} if len(_ALL_CPUS) > 1 else None
CLIENT_CPUS = set(_ALL_CPUS[:-1]) if len(_ALL_CPUS) > 1 else None


# --- PostgreSQL ---------------------------------------------------------------------


async def reset_postgres(url: str) -> None:
    """An empty public schema in the bench's own database, created on first use."""
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        name = url.rsplit("/", 1)[1].split("?")[0]
        admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


# --- load ---------------------------------------------------------------------------


@dataclass
class Phase:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[str]
    samples: list[str]  # an example answer for each unexpected status

    @property
    def ok(self) -> int:
        return self.statuses.get("201", 0)

    @property
    def failures(self) -> int:
        return self.requests - self.ok


async def drive(
    session: aiohttp.ClientSession, url: str, bodies: Sequence[bytes], concurrency: int
) -> Phase:
    """POST every body, ``concurrency`` at a time; time each request and the whole phase."""
    headers = {
        "Authorization": f"Bearer {BENCH_KEY_SECRET}",
        "Content-Type": "application/json",
    }
    queue = iter(bodies)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    samples: list[str] = []
    sampled: set[str] = set()

    async def client() -> None:
        for body in queue:  # one shared iterator: each body is sent once
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer, status = repr(exc).encode(), f"error:{type(exc).__name__}"
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if status != "201" and status not in sampled and len(sampled) < 5:
                sampled.add(status)  # one example answer per unexpected status
                samples.append(f"{status}: {answer[:300].decode(errors='replace')}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return Phase(len(bodies), time.perf_counter() - started, latencies, statuses, samples)


@dataclass
class SideResult:
    name: str
    database: str
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_s_per_request_ms: float | None
    server_cpu_share: float | None  # server CPU seconds / wall seconds (1.0 = one core busy)
    statuses: dict[str, int]
    warmup_statuses: dict[str, int]
    samples: list[str] = field(default_factory=list)
    rows_stored: int | None = None

    @property
    def failures(self) -> int:
        bad = sum(n for s, n in self.statuses.items() if s != "201")
        return bad + sum(n for s, n in self.warmup_statuses.items() if s != "201")


async def measure(
    name: str,
    database: str,
    server_args: Sequence[str],
    warmup: Sequence[bytes],
    timed: Sequence[bytes],
    concurrency: int,
) -> SideResult:
    async with server_process(server_args, cpus=SERVER_CPUS) as server:
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            url = f"{server.base}/api/tasks"
            warm = await drive(session, url, warmup, concurrency)
            cpu_before = server.cpu_seconds()
            phase = await drive(session, url, timed, concurrency)
            cpu_after = server.cpu_seconds()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return SideResult(
        name=name,
        database=database,
        requests=phase.requests,
        seconds=round(phase.seconds, 3),
        per_second=round(phase.ok / phase.seconds, 1),
        p50_ms=round(percentile(phase.latencies, 50) * 1000, 2),
        p99_ms=round(percentile(phase.latencies, 99) * 1000, 2),
        server_cpu_s_per_request_ms=None if cpu is None else round(cpu / phase.requests * 1000, 3),
        server_cpu_share=None if cpu is None else round(cpu / phase.seconds, 2),
        statuses=dict(phase.statuses),
        warmup_statuses=dict(warm.statuses),
        samples=warm.samples + phase.samples,
    )


# --- stored-row checks ----------------------------------------------------------------


def count_sqlite(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


async def count_postgres(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()


# --- report -------------------------------------------------------------------------


def print_table(baseline: SideResult, responder: SideResult, ratio: float) -> None:
    def cpu(r: SideResult) -> str:
        if r.server_cpu_s_per_request_ms is None:
            return "n/a"
        return f"{r.server_cpu_s_per_request_ms:.2f} ms ({r.server_cpu_share:.2f} core)"

    rows = [
        ("", "baseline", "responder"),
        ("database", baseline.database, responder.database),
        ("requests (timed)", str(baseline.requests), str(responder.requests)),
        (
            "throughput",
            f"{baseline.per_second:.0f} inserts/s",
            f"{responder.per_second:.0f} tasks/s",
        ),
        ("latency p50", f"{baseline.p50_ms:.1f} ms", f"{responder.p50_ms:.1f} ms"),
        ("latency p99", f"{baseline.p99_ms:.1f} ms", f"{responder.p99_ms:.1f} ms"),
        ("server CPU / request", cpu(baseline), cpu(responder)),
        ("non-201 answers", str(baseline.failures), str(responder.failures)),
    ]
    print_rows(rows)
    print(f"ratio responder/baseline: {ratio:.2f}")


def _area(filename: str) -> str:
    """A profiled function's package (or responder module), for the per-area summary."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/responder/" in filename:
        return "responder." + filename.rsplit("/responder/", 1)[1].removesuffix(".py")
    if filename.startswith("~") or filename == "":
        return "(built-in calls: I/O waits, C functions)"
    if "/lib/python3" in filename:
        return "stdlib." + filename.rsplit("/", 1)[1].removesuffix(".py")
    return filename


def print_profile(path: Path, top: int = 20) -> None:
    """Self time per package, then the costliest functions (cProfile's main thread only)."""
    stats = pstats.Stats(str(path))
    by_area: Counter[str] = Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        by_area[_area(filename)] += tottime
    total = sum(by_area.values()) or 1.0
    print("self time by area (main thread):")
    for area, seconds in by_area.most_common(12):
        print(f"  {seconds / total * 100:5.1f}%  {seconds:7.2f} s  {area}")
    print()
    stats.strip_dirs().sort_stats("tottime").print_stats(top)


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.intake", description=__doc__.split("\n\n", 1)[0]
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--requests", type=int, default=3000, help="timed requests per side")
    size.add_argument("--quick", action="store_true", help="1000 timed requests per side")
    p.add_argument(
        "--concurrency", type=int, default=50, help="client coroutines (and connections)"
    )
    p.add_argument("--warmup", type=int, default=200, help="untimed requests per side first")
    p.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Responder's database (postgresql: see --postgres-url); the baseline is always SQLite",
    )
    p.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help=(
            "database for --database postgresql (default: $BENCH_POSTGRES_URL or "
            "responder_bench, created if missing); its public schema is DROPPED first"
        ),
    )
    p.add_argument("--seed", type=int, default=1, help="seed for the generated reports")
    p.add_argument(
        "--profile",
        action="store_true",
        help="run Responder's server under cProfile (slower: figures are not comparable) "
        "and print the top costs",
    )
    p.add_argument("--output", type=Path, default=RESULTS / "intake.json")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    requests = 1000 if args.quick else args.requests
    run_tag = f"bench-{int(time.time())}"
    bodies = make_bodies(args.warmup + requests, args.seed, run_tag)
    warmup, timed = bodies[: args.warmup], bodies[args.warmup :]
    RESULTS.mkdir(parents=True, exist_ok=True)
    profile_path = RESULTS / "intake-responder.prof"

    with tempfile.TemporaryDirectory(prefix="responder-bench-") as tmp:
        baseline_file = Path(tmp) / "baseline.db"
        print(f"baseline: {args.warmup} warm-up + {requests} timed requests ...", flush=True)
        baseline = await measure(
            "baseline",
            "sqlite",
            ["baseline", "--database", str(baseline_file)],
            warmup,
            timed,
            args.concurrency,
        )
        baseline.rows_stored = count_sqlite(baseline_file, "reports")

        if args.database == "postgresql":
            url = args.postgres_url
            if url.rstrip("/").rsplit("/", 1)[-1] == "test":
                print("RUN INVALID: refusing to drop the schema of `test` (the test suite's)")
                return 2
            await reset_postgres(url)
        else:
            responder_file = Path(tmp) / "responder.db"
            url = f"sqlite:///{responder_file}"
        server_args = ["responder", "--database", url, "--config", str(COUNCIL_FILE)]
        if args.profile:
            server_args += ["--profile", str(profile_path)]
        print(f"responder ({args.database}): same load ...", flush=True)
        responder = await measure(
            "responder", args.database, server_args, warmup, timed, args.concurrency
        )
        if args.database == "postgresql":
            responder.rows_stored = await count_postgres(url, "tasks")
        else:
            responder.rows_stored = count_sqlite(responder_file, "tasks")

    ratio = responder.per_second / baseline.per_second if baseline.per_second else 0.0
    goals = {
        f">= {GOAL_TASKS_PER_S:.0f} tasks/s": responder.per_second >= GOAL_TASKS_PER_S,
        f">= {GOAL_RATIO} of baseline": ratio >= GOAL_RATIO,
    }
    valid = baseline.failures == 0 and responder.failures == 0
    expected_rows = args.warmup + requests
    for side in (baseline, responder):
        if side.rows_stored != expected_rows:
            valid = False
            print(f"{side.name}: {side.rows_stored} rows stored, expected {expected_rows}")

    print()
    print_table(baseline, responder, ratio)
    for goal, met in goals.items():
        print(f"goal {goal}: {'PASS' if met else 'FAIL'}")
    for side in (baseline, responder):
        if side.failures:
            print(
                f"{side.name}: unexpected answers {side.statuses} (warm-up {side.warmup_statuses})"
            )
            for sample in side.samples:
                print(f"  {sample}")
    if args.profile:
        print("\nResponder was profiled (cProfile): its figures above are not comparable.")
        print(f"stats in {profile_path} (open with: python -m pstats {profile_path})")
        print_profile(profile_path)

    report = {
        "benchmark": "intake",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "requests": requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "database": args.database,
            "seed": args.seed,
            "profiled": args.profile,
        },
        "baseline": asdict(baseline),
        "responder": asdict(responder),
        "ratio": round(ratio, 3),
        "goals": goals,
        "valid": valid,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    if not valid:
        print("RUN INVALID: not every request was answered 201 and stored")
        return 2
    return 0 if all(goals.values()) else 1


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
