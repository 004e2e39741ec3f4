"""The web pages over a million tasks (issue 18): the work list and the map's data for a
manager, and the task page, each beside a bare aiohttp page in the same run.

    python -m bench.web [--quick] [--database sqlite|postgresql] [--tasks N] [--rounds N]
                        [--rebuild]

The database is ``bench.open311``'s cached file (1,000,000 tasks over a year, with their
histories and reports; 200,000 with ``--quick``; built once and cached in bench/results/),
copied for the run (or, with ``--database postgresql``, its cached PostgreSQL copy).
Responder serves it (``bench.server responder``, pinned to a CPU of its own, no scheduler,
no background delivery) and the manager ``alice`` (two street-cleansing teams, about half
of all tasks) signs in through ``/auth/dev``.

What is timed, one request at a time, each followed by the same path on the baseline:

- **list**: ``/tasks`` as a manager opens it and narrows it: the default (open tasks, due
  soonest first), newest first over every status, one ward, one priority, overdue only,
  free text, and the second page (its keyset cursor);
- **map**: ``/map/data`` (the GeoJSON the map draws) for the default selection, one ward
  and one priority;
- **task**: ``/tasks/{reference}`` for tasks of the manager's teams, drawn at random
  (seeded) over the whole year;
- **performance** (for information; the issue sets no goal): ``/performance`` over the
  default 28 days, over 7 days, and for one ward.

The baseline is a bare aiohttp handler in a process of its own (pinned the same way) that
answers each path with the very bytes Responder answered it with (captured by a probe), so
the difference is Responder's own work: the session, the query and the rendering.

Goals: list p95 <= 150 ms, map data p95 <= 150 ms, task page p95 <= 50 ms. Exit status: 0
goals met, 1 a goal missed, 2 run invalid (a page not answered 200, a server that did not
start). Written to bench/results/web.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import (
    RESULTS,
    finish,
    machine,
    percentile,
    print_rows,
    run_main,
    server_process,
)
from bench.intake import POSTGRES_URL, SERVER_CPUS
from bench.open311 import (
    DEFAULT_TASKS,
    QUICK_TASKS,
    bench_council,
    cached_database,
    cached_postgres,
    postgres_cache_url,
)
from responder.domain.reference import format_reference

GOAL_LIST_P95_MS = 150.0
GOAL_MAP_P95_MS = 150.0
GOAL_TASK_P95_MS = 50.0
MANAGER = "alice"
MANAGER_TEAMS = ("sc-north", "sc-south")
PREFIX = "RSP"
TASK_PAGES = 60  # distinct tasks whose page is timed


def list_paths() -> list[str]:
    return [
        "/tasks",
        "/tasks?status=all&sort=-created",
        "/tasks?ward=Northgate",
        "/tasks?priority=urgent",
        "/tasks?overdue=1",
        "/tasks?q=bus+stop",
    ]


MAP_PATHS = ["/map/data", "/map/data?ward=Southmere", "/map/data?priority=high"]
# For information (no goal in the issue): the performance page over the default 28 days.
PERFORMANCE_PATHS = ["/performance", "/performance?period=7", "/performance?ward=Northgate"]


def sample_tasks(database: str, count: int, seed: int) -> list[int]:
    """Ids of tasks of the manager's teams, drawn at random over every id (seeded)."""
    rng = random.Random(seed)
    if database.startswith("sqlite:///"):
        conn = sqlite3.connect(database.removeprefix("sqlite:///"))
        try:
            top = conn.execute("SELECT max(id) FROM tasks").fetchone()[0]
            ids: list[int] = []
            while len(ids) < count:
                batch = [rng.randint(1, top) for _ in range(count * 3)]
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT id FROM tasks WHERE id IN ({marks}) AND team IN (?, ?)",
                    [*batch, *MANAGER_TEAMS],
                ).fetchall()
                ids.extend(r[0] for r in rows)
            return sorted(set(ids))[:count]
        finally:
            conn.close()
    return asyncio.run(_sample_postgres(database, count, rng))


async def _sample_postgres(database: str, count: int, rng: random.Random) -> list[int]:
    import asyncpg

    conn = await asyncpg.connect(database)
    try:
        top = await conn.fetchval("SELECT max(id) FROM tasks")
        ids: list[int] = []
        while len(ids) < count:
            batch = [rng.randint(1, top) for _ in range(count * 3)]
            rows = await conn.fetch(
                "SELECT id FROM tasks WHERE id = ANY($1::bigint[]) AND team = ANY($2::text[])",
                batch,
                list(MANAGER_TEAMS),
            )
            ids.extend(r["id"] for r in rows)
        return sorted(set(ids))[:count]
    finally:
        await conn.close()


# --- the baseline: the same bytes from a bare handler ---------------------------------------


def build_static_app(bodies: dict[str, tuple[str, bytes]]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        content_type, body = bodies[request.path_qs]
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app


def serve_static(directory: Path) -> None:
    """``python -m bench.web --serve-static DIR``: the baseline server (prints PORT n)."""
    index = json.loads((directory / "index.json").read_text())
    bodies = {
        path: (entry["content_type"], (directory / entry["file"]).read_bytes())
        for path, entry in index.items()
    }

    async def main() -> None:
        runner = web.AppRunner(build_static_app(bodies), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"PORT {port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def static_server(directory: Path, cpus: set[int] | None):
    """The baseline as a process of its own (``--serve-static``), pinned like Responder."""
    return server_process(["--serve-static", str(directory)], cpus=cpus, module="bench.web")


# --- the run ----------------------------------------------------------------------------------


def ms(values: Sequence[float], p: float) -> float:
    return round(percentile(values, p) * 1000, 2)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "requests": len(values),
        "p50_ms": ms(values, 50),
        "p95_ms": ms(values, 95),
        "p99_ms": ms(values, 99),
        "max_ms": round(max(values, default=0) * 1000, 2),
    }


async def prepare_database(args: argparse.Namespace, tmp: Path) -> tuple[str, dict[str, Any]]:
    count = QUICK_TASKS if args.quick and args.tasks is None else (args.tasks or DEFAULT_TASKS)
    if args.database == "postgresql":
        database = postgres_cache_url(args.postgres_url)
        info = await cached_postgres(database, count, args.seed, args.rebuild)
        return database, info
    cached, info = await asyncio.to_thread(cached_database, count, args.seed, args.rebuild)
    copy = tmp / "web.db"
    shutil.copyfile(cached, copy)
    return f"sqlite:///{copy}", info


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as name:
        tmp = Path(name)
        database, info = await prepare_database(args, tmp)
        council = bench_council(tmp)
        tasks = await asyncio.to_thread(sample_tasks, database, TASK_PAGES, args.seed)
        task_paths = [f"/tasks/{format_reference(PREFIX, t)}" for t in tasks]
        server_args = ["responder", "--database", database, "--config", str(council)]
        server_args.append("--no-scheduler")
        problems: list[str] = []
        timings: dict[str, dict[str, list[float]]] = {
            kind: {"responder": [], "baseline": []}
            for kind in ("list", "map", "task", "performance")
        }
        probe: dict[str, Any] = {}
        async with server_process(server_args, cpus=SERVER_CPUS, start_timeout=300) as server:
            jar = aiohttp.CookieJar(unsafe=True)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as session:
                signed = await session.get(
                    f"{server.base}/auth/dev", params={"as": MANAGER}, allow_redirects=False
                )
                if signed.status != 302:
                    return _invalid(args, [f"/auth/dev answered {signed.status}"])

                async def get(base: str, path: str) -> tuple[int, str, bytes, float]:
                    t0 = time.perf_counter()
                    async with session.get(base + path, allow_redirects=False) as response:
                        body = await response.read()
                    seconds = time.perf_counter() - t0
                    return response.status, response.headers.get("Content-Type", ""), body, seconds

                # The second page of the default list: its keyset cursor, from the first.
                status, _ctype, first, _ = await get(server.base, "/tasks")
                paths = {
                    "list": list_paths(),
                    "map": MAP_PATHS,
                    "task": task_paths,
                    "performance": PERFORMANCE_PATHS,
                }
                marker = b'href="/tasks?after='
                if marker in first:
                    start = first.index(marker) + len(b'href="')
                    href = first[start : first.index(b'"', start)].decode().replace("&amp;", "&")
                    paths["list"].append(href)
                else:
                    problems.append("the first page of /tasks has no link to the next one")
                # Probe every path once: what it answers is what the baseline will serve.
                bodies = tmp / "static"
                bodies.mkdir()
                index: dict[str, Any] = {}
                for kind, group in paths.items():
                    for n, path in enumerate(group):
                        status, ctype, body, _ = await get(server.base, path)
                        if status != 200:
                            problems.append(f"{path} answered {status}: {body[:200]!r}")
                            continue
                        file = f"{kind}-{n}.body"
                        (bodies / file).write_bytes(body)
                        index[path] = {"content_type": ctype, "file": file}
                        probe.setdefault(kind, []).append({"path": path, "bytes": len(body)})
                (bodies / "index.json").write_text(json.dumps(index))
                if problems:
                    return _invalid(args, problems, probe=probe)
                features = json.loads((bodies / "map-0.body").read_bytes())
                probe["map_features"] = len(features.get("features", []))
                print(
                    f"probe: {len(index)} paths answered 200; the default map selection has "
                    f"{probe['map_features']:,} markers",
                    flush=True,
                )
                async with static_server(bodies, SERVER_CPUS) as static:
                    for group in paths.values():  # warm-up, untimed
                        for path in group[:10]:
                            await get(server.base, path)
                            await get(static.base, path)
                    print(f"timing {args.rounds} rounds ...", flush=True)
                    for _ in range(args.rounds):
                        for kind, group in paths.items():
                            for path in group:
                                status, _c, body, seconds = await get(server.base, path)
                                if status != 200:
                                    problems.append(f"{path} answered {status}")
                                    break
                                timings[kind]["responder"].append(seconds)
                                _s, _c, _b, base_seconds = await get(static.base, path)
                                timings[kind]["baseline"].append(base_seconds)
        if problems:
            return _invalid(args, problems, probe=probe)

    figures = {
        kind: {"responder": summary(t["responder"]), "baseline": summary(t["baseline"])}
        for kind, t in timings.items()
    }
    goals = {
        "list_p95_ms": figures["list"]["responder"]["p95_ms"] <= GOAL_LIST_P95_MS,
        "map_p95_ms": figures["map"]["responder"]["p95_ms"] <= GOAL_MAP_P95_MS,
        "task_p95_ms": figures["task"]["responder"]["p95_ms"] <= GOAL_TASK_P95_MS,
    }
    limits = {"list": GOAL_LIST_P95_MS, "map": GOAL_MAP_P95_MS, "task": GOAL_TASK_P95_MS}
    rows = [["page", "goal p95", "baseline p95", "p50", "p95", "p99", "verdict"]]
    for kind, figure in figures.items():
        ours, base = figure["responder"], figure["baseline"]
        met = goals.get(f"{kind}_p95_ms")
        verdict = "info" if met is None else ("PASS" if met else "FAIL")
        rows.append(
            [
                kind,
                f"<= {limits[kind]:.0f} ms" if kind in limits else "-",
                f"{base['p95_ms']:.2f} ms",
                f"{ours['p50_ms']:.1f} ms",
                f"{ours['p95_ms']:.1f} ms",
                f"{ours['p99_ms']:.1f} ms",
                verdict,
            ]
        )
    print()
    print_rows(rows)
    output = {
        "tasks": info.get("tasks"),
        "engine": args.database,
        "rounds": args.rounds,
        "probe": probe,
        "load": info,
        "figures": figures,
        "goals": goals,
        "machine": machine(),
    }
    # Flat figures for python -m bench's table.
    output["web_list_p95_ms"] = figures["list"]["responder"]["p95_ms"]
    output["web_map_p95_ms"] = figures["map"]["responder"]["p95_ms"]
    output["web_task_p95_ms"] = figures["task"]["responder"]["p95_ms"]
    output["web_performance_p95_ms"] = figures["performance"]["responder"]["p95_ms"]
    return finish(args.output, output, goals, [])


def _invalid(args: argparse.Namespace, problems: list[str], **extra: Any) -> int:
    return finish(args.output, {"engine": args.database, **extra}, {}, problems)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__)
    p.add_argument("--quick", action="store_true", help="200,000 tasks and 5 rounds")
    p.add_argument("--tasks", type=int, help="tasks in the database (default 1,000,000)")
    p.add_argument("--rounds", type=int, help="timed rounds over every path (default 12)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--postgres-url", default=POSTGRES_URL)
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    p.add_argument("--output", type=Path, default=RESULTS / "web.json")
    p.add_argument("--serve-static", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 5 if args.quick else 12
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_static is not None:
        serve_static(args.serve_static)
        return 0
    return run_main(run, args)


if __name__ == "__main__":
    sys.exit(main())
