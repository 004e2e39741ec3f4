"""The council's data out (issue 19): the CSV export of a million tasks, and an OData page.

    python -m bench.export [--quick] [--tasks N] [--pages N] [--rebuild]
                           [--database sqlite|postgresql]

The database is ``bench.open311``'s cached file of N tasks (1,000,000; 200,000 with
``--quick``) with their histories and reports, copied for the run (``--database
postgresql``: its cached PostgreSQL database). Responder serves it from a process of its
own (``python -m bench.export --serve-responder``: the app with one whole-council read
key, no background work), pinned to its own CPU as the other benches pin theirs.

**CSV** — ``GET /api/tasks.csv?status=all`` (every task), read to the end by a client that
counts rows and bytes; rows/s over the whole response (goal **>= 50,000**), and the server's
peak resident set (``VmHWM``, the kernel's own) once it is done (goal **<= 200 MB**), beside
its resident set before the export. Baseline in the same run: a bare ``SELECT`` of the same
rows and columns (the same correlated sub-selects for accepted time and rating) through the
stdlib ``sqlite3`` (or asyncpg) into ``csv.writer``, in this process: the ratio is printed.

**OData** — ``--pages`` GETs of ``/odata/Tasks`` pages of 1,000 rows one at a time: the
first page, and pages at random places reached as Power BI follows ``@odata.nextLink`` (a
``$skiptoken``, a keyset on the id); p50/p95 (goal **p95 <= 100 ms**), beside a bare aiohttp
handler answering the same JSON body (a probe page) in the same run. ``$top=1000&$skip=N``
pages (Power BI's other shape; OFFSET, so they cost more deep in) are measured for
information.

Exit status: 0 goals met, 1 a goal missed, 2 run invalid. Written to
bench/results/export.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import (
    RESULTS,
    ServerStartError,
    machine,
    percentile,
    print_rows,
    server_process,
)
from bench.intake import CLIENT_CPUS, POSTGRES_URL, SERVER_CPUS
from bench.open311 import (
    DEFAULT_TASKS,
    QUICK_TASKS,
    bench_council,
    cached_database,
    cached_postgres,
    postgres_cache_url,
)

GOAL_ROWS_PER_S = 50_000
GOAL_RSS_MB = 200.0
GOAL_PAGE_P95_MS = 100.0
READ_KEY = ("bench-read", "bench-read-secret-0001")
AUTH = {"Authorization": f"Bearer {READ_KEY[1]}"}

# The bare SELECT: the export's rows and columns, as Responder's statement reads them.
BARE_SELECT = """
SELECT t.id, t.type, t.priority, t.ward, t.team, t.assignee, t.source, t.status, t.outcome,
       t.created_at, t.due_at, t.closed_at,
       (SELECT min(e.at) FROM task_events e WHERE e.task_id = t.id AND e.action = 'accept'),
       (SELECT avg(f.rating) FROM feedback f WHERE f.task_id = t.id)
FROM tasks t ORDER BY t.id
"""


class _Sink:
    def write(self, text: str) -> int:
        return len(text)


def bare_sqlite(path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    writer = csv.writer(_Sink())
    rows = 0
    cursor = conn.execute(BARE_SELECT)
    while batch := cursor.fetchmany(5000):
        writer.writerows(batch)
        rows += len(batch)
    conn.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


async def bare_postgres(url: str) -> dict[str, Any]:
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    writer = csv.writer(_Sink())
    rows = 0
    async with conn.transaction():
        batch: list = []
        async for record in conn.cursor(BARE_SELECT, prefetch=5000):
            batch.append(tuple(record))
            if len(batch) == 5000:
                writer.writerows(batch)
                rows += len(batch)
                batch = []
        writer.writerows(batch)
        rows += len(batch)
    await conn.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def build_responder(database: str, config: Path) -> web.Application:
    from responder.app import build_app
    from responder.settings import Settings

    settings = Settings(
        database_url=database,
        config_path=config,
        read_keys={READ_KEY[0]: READ_KEY[1]},
        background=False,
        scheduler=False,
    )
    return build_app(settings)


def build_static(body: bytes) -> web.Application:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/odata/Tasks", page)
    return app


def own_server(args: list[str], cpus: set[int] | None):
    """``python -m bench.export ARGS`` as a server process, until the block ends."""
    return server_process(args, cpus=cpus, start_timeout=180, module="bench.export")


def memory(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    out = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            out[name] = round(int(value.split()[0]) / 1024, 1)
    return out


async def export_csv(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    started = time.perf_counter()
    rows = size = chunks = 0
    async with session.get(f"{base}/api/tasks.csv?status=all", headers=AUTH) as response:
        if response.status != 200:
            raise RuntimeError(f"the CSV export answered {response.status}")
        chunked = response.headers.get("Transfer-Encoding") == "chunked"
        async for chunk in response.content.iter_chunked(1 << 16):
            rows += chunk.count(b"\n")
            size += len(chunk)
            chunks += 1
    seconds = time.perf_counter() - started
    rows -= 1  # the header
    return {
        "rows": rows,
        "mb": round(size / 1e6, 1),
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "chunked": chunked,
    }


def skiptoken(after: int) -> str:
    raw = json.dumps({"a": after, "s": 0}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def timed(session: aiohttp.ClientSession, url: str, headers=None) -> tuple[float, bytes]:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {body[:200]!r}")
    return (time.perf_counter() - started) * 1000, body


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "max_ms": round(max(values), 1),
    }


async def run(args: argparse.Namespace) -> int:
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    count = QUICK_TASKS if args.quick and args.tasks is None else (args.tasks or DEFAULT_TASKS)
    pages = min(args.pages, 60) if args.quick else args.pages
    output: dict[str, Any] = {
        "benchmark": "export",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
        "database": args.database,
    }
    problems: list[str] = []
    goals: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="responder-bench-export-") as name:
        tmp = Path(name)
        council = bench_council(tmp)
        if args.database == "postgresql":
            database = postgres_cache_url(args.postgres_url)
            info = await cached_postgres(database, count, 1, args.rebuild)
            bare = await bare_postgres(database)
        else:
            cached, info = await asyncio.to_thread(cached_database, count, 1, args.rebuild)
            copy = tmp / "export.db"
            shutil.copyfile(cached, copy)
            database = f"sqlite:///{copy}"
            bare = await asyncio.to_thread(bare_sqlite, copy)
        output["tasks"] = info.get("tasks", count)
        output["bare_select"] = bare
        print(f"bare SELECT -> csv.writer: {bare['rows']:,} rows at {bare['rows_per_s']:,}/s")
        serve = ["--serve-responder", "--serve-database", database, "--config", str(council)]
        async with own_server(serve, SERVER_CPUS) as server:
            timeout = aiohttp.ClientTimeout(total=1800)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await timed(session, f"{server.base}/odata/Tasks?$top=10", AUTH)  # warm
                before = memory(server.process.pid)
                exported = await export_csv(session, server.base)
                after = memory(server.process.pid)
                exported["rss_before_mb"] = before["VmRSS"]
                exported["peak_rss_mb"] = after["VmHWM"]
                output["csv"] = exported
                print(
                    f"CSV: {exported['rows']:,} rows, {exported['mb']} MB in "
                    f"{exported['seconds']} s = {exported['rows_per_s']:,} rows/s; "
                    f"RSS {before['VmRSS']} MB before, peak {after['VmHWM']} MB"
                )
                if exported["rows"] != bare["rows"]:
                    problems.append(
                        f"the CSV had {exported['rows']} rows, the table {bare['rows']}"
                    )
                # OData pages: the first, then nextLink pages at random ids.
                rng = random.Random(1)
                top_id = bare["rows"]
                first_ms, probe = await timed(session, f"{server.base}/odata/Tasks", AUTH)
                body = json.loads(probe)
                if len(body["value"]) != 1000 or "@odata.nextLink" not in body:
                    problems.append("the first OData page was not 1,000 rows with a nextLink")
                ours: list[float] = [first_ms]
                skips: list[float] = []
                for _ in range(pages):
                    token = skiptoken(rng.randrange(1, max(2, top_id - 1000)))
                    ms, _ = await timed(
                        session, f"{server.base}/odata/Tasks?$skiptoken={token}", AUTH
                    )
                    ours.append(ms)
                for _ in range(max(5, pages // 10)):
                    skip = rng.randrange(0, max(1, top_id - 1000))
                    ms, _ = await timed(
                        session, f"{server.base}/odata/Tasks?$top=1000&$skip={skip}", AUTH
                    )
                    skips.append(ms)
        body_file = tmp / "page.json"
        body_file.write_bytes(probe)
        async with (
            own_server(["--serve-static", str(body_file)], SERVER_CPUS) as static,
            aiohttp.ClientSession() as session,
        ):
            base_ms = [
                (await timed(session, f"{static.base}/odata/Tasks"))[0] for _ in range(pages + 1)
            ]
    output["odata"] = {
        "page_bytes": len(probe),
        "responder": summary(ours),
        "bare_handler": summary(base_ms),
        "top_skip": summary(skips),
    }
    csv_ratio = round(exported["rows_per_s"] / bare["rows_per_s"], 2)
    output["csv_rows_per_s"] = exported["rows_per_s"]
    output["csv_bare_ratio"] = csv_ratio
    output["csv_peak_rss_mb"] = exported["peak_rss_mb"]
    output["odata_page_p95_ms"] = output["odata"]["responder"]["p95_ms"]
    goals[f"CSV >= {GOAL_ROWS_PER_S:,} rows/s"] = exported["rows_per_s"] >= GOAL_ROWS_PER_S
    goals[f"CSV peak RSS <= {GOAL_RSS_MB:.0f} MB"] = exported["peak_rss_mb"] <= GOAL_RSS_MB
    goals[f"OData page p95 <= {GOAL_PAGE_P95_MS:.0f} ms"] = (
        output["odata_page_p95_ms"] <= GOAL_PAGE_P95_MS
    )
    o = output["odata"]
    print()
    print_rows(
        [
            ("figure", "goal", "baseline (same run)", "value", "ratio"),
            (
                "CSV rows/s",
                f">= {GOAL_ROWS_PER_S:,}",
                f"bare SELECT -> csv.writer {bare['rows_per_s']:,}",
                f"{exported['rows_per_s']:,}",
                f"{csv_ratio}x",
            ),
            (
                "CSV peak RSS",
                f"<= {GOAL_RSS_MB:.0f} MB",
                f"before the export {exported['rss_before_mb']} MB",
                f"{exported['peak_rss_mb']} MB",
                "",
            ),
            (
                "OData page p95 (1,000 rows)",
                f"<= {GOAL_PAGE_P95_MS:.0f} ms",
                f"bare aiohttp {o['bare_handler']['p95_ms']} ms",
                f"{o['responder']['p95_ms']} ms (p50 {o['responder']['p50_ms']})",
                "",
            ),
            (
                "OData $top/$skip p95",
                "info",
                "",
                f"{o['top_skip']['p95_ms']} ms (p50 {o['top_skip']['p50_ms']})",
                "",
            ),
        ]
    )
    output["goals"] = goals
    output["problems"] = problems
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    for line in problems:
        print(f"RUN INVALID: {line}")
    if problems:
        return 2
    return 0 if all(goals.values()) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="200,000 tasks, 60 pages")
    p.add_argument("--tasks", type=int, help="tasks in the database (default 1,000,000)")
    p.add_argument("--pages", type=int, default=300, help="OData pages timed")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--postgres-url", default=POSTGRES_URL)
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    p.add_argument("--output", type=Path, default=RESULTS / "export.json")
    p.add_argument("--serve-responder", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--serve-static", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--serve-database", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_responder or args.serve_static is not None:
        from bench.server import serve

        if args.serve_static is not None:
            app = build_static(args.serve_static.read_bytes())
        else:
            app = build_responder(args.serve_database, args.config)
        asyncio.run(serve(app))
        return 0
    try:
        return asyncio.run(run(args))
    except ServerStartError as exc:
        print(f"RUN INVALID: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
