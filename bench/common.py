"""Helpers shared by the benchmarks: server processes, report bodies, percentiles, tables."""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import random
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from shapely.geometry import Point
from shapely.ops import unary_union

from responder.config import load_council
from responder.domain.geo import haversine_m

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
COUNCIL_FILE = ROOT / "examples" / "council.yaml"

# Points of one type are kept this far apart (the council's duplicate radius is 25 m),
# so no report is linked to an earlier task and every answer should be a 201.
MIN_SPACING_M = 40.0
GRID_DEG = 0.001  # spatial hash cell for the spacing check (~70 m x 110 m here)

DESCRIPTIONS = [
    "Reported by a resident on the way to work.",
    "Next to the bus stop, blocking part of the pavement.",
    "Behind the row of shops, been there a few days.",
    "By the school gates; children walk past here.",
    "On the corner by the post box.",
    "Along the footpath into the park.",
]
STREETS = ["High Street", "Church Lane", "Station Road", "Mill Road", "Park Avenue", "Queens Way"]


# --- bodies -------------------------------------------------------------------------


def make_bodies(
    count: int,
    seed: int,
    run_tag: str,
    config: Path = COUNCIL_FILE,
    types: Sequence[str] | None = None,
    reporter: bool = True,
) -> list[bytes]:
    """``count`` encoded intake bodies: council task types, points spread over the wards.

    ``types`` is the list each report's type is drawn from (uniformly: repeat a code to
    weight it); all of the council's types by default. With ``reporter``, each report has a
    reporter who wants e-mail updates. A seeded RNG makes the sequence repeatable. A point
    is redrawn when it falls outside every ward, or within ``MIN_SPACING_M`` of an earlier
    point of the same type.
    """
    council = load_council(config)
    if types is None:
        types = [t.code for t in council.file.task_types]
    area = unary_union([w.geometry for w in council.wards])
    min_lon, min_lat, max_lon, max_lat = area.bounds
    rng = random.Random(seed)
    taken: dict[tuple[str, int, int], list[tuple[float, float]]] = {}
    bodies: list[bytes] = []
    while len(bodies) < count:
        kind = rng.choice(types)
        lat = round(rng.uniform(min_lat, max_lat), 6)
        lon = round(rng.uniform(min_lon, max_lon), 6)
        if not area.contains(Point(lon, lat)):
            continue
        cell = (int(lat / GRID_DEG), int(lon / GRID_DEG))
        near = [
            p
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            for p in taken.get((kind, cell[0] + dy, cell[1] + dx), ())
        ]
        if any(haversine_m(lat, lon, plat, plon) < MIN_SPACING_M for plat, plon in near):
            continue
        taken.setdefault((kind, *cell), []).append((lat, lon))
        i = len(bodies)
        body: dict[str, object] = {
            "type": kind,
            "description": rng.choice(DESCRIPTIONS),
            "location": {
                "lat": lat,
                "lon": lon,
                "address": f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
            },
        }
        if reporter:
            body["reporter"] = {
                "name": f"Resident {i}",
                "email": f"resident{i}@example.org",
                "updates": ["email"],
            }
        body["external_id"] = f"{run_tag}-{i}"
        bodies.append(json.dumps(body).encode())
    return bodies


# --- server processes -----------------------------------------------------------------


class ServerStartError(RuntimeError):
    pass


@dataclass
class Server:
    process: asyncio.subprocess.Process
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process has used so far (Linux /proc)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def server_process(
    args: Sequence[str],
    *,
    start_timeout: float = 60.0,
    cpus: set[int] | None = None,
    stderr: Any = None,
    module: str = "bench.server",
) -> AsyncIterator[Server]:
    """Start ``python -m bench.server ARGS``, wait for its port, stop it (SIGTERM) on exit.

    ``module``: another module that serves the same way (prints ``PORT <n>``, stops on
    SIGTERM), e.g. a benchmark's own baseline: ``bench.web --serve-static DIR``.

    ``cpus``: the CPUs the server may run on (``sched_setaffinity``), e.g. one of its own.
    ``stderr``: where the server's stderr goes (a file, or ``asyncio.subprocess.PIPE``);
    ours by default. Its stdout is a pipe, read up to the ``PORT`` line: a caller that
    wants what follows reads ``server.process.stdout`` itself."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    try:
        try:
            async with asyncio.timeout(start_timeout):
                port = await _announced_port(process)
        except TimeoutError:
            raise ServerStartError(f"{module} did not start in {start_timeout:.0f} s") from None
        yield Server(process, port)
    finally:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _announced_port(process: asyncio.subprocess.Process) -> int:
    """The port from the server's ``PORT <n>`` line (other output before it is skipped)."""
    assert process.stdout is not None
    while line := await process.stdout.readline():
        if line.startswith(b"PORT "):
            return int(line.split()[1])
    raise ServerStartError("the server exited before listening (see its output above)")


# --- figures ----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
    }


def print_rows(rows: Sequence[Sequence[str]]) -> None:
    """A plain text table: each column as wide as its widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@dataclass
class Figure:
    """One line of a benchmark's table: a figure beside its goal and baseline."""

    name: str
    goal: str
    baseline: str
    value: str
    met: bool | None  # None: for information

    @property
    def verdict(self) -> str:
        return "info" if self.met is None else ("PASS" if self.met else "FAIL")


def finish(path: Path, output: dict, goals: dict[str, bool], invalid: list[str]) -> int:
    """Write a bench's JSON; its exit status: 0 goals met, 1 a goal missed, 2 run invalid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=2) + "\n")
    print(f"\nwritten to {path}")
    if invalid:
        for line in invalid:
            print(f"RUN INVALID: {line}")
        return 2
    return 0 if all(goals.values()) else 1


def run_main(run: Callable[[Any], Awaitable[int]], args: Any) -> int:
    """Run a bench's ``run(args)``; a server that would not start makes the run invalid."""
    try:
        return asyncio.run(run(args))
    except ServerStartError as exc:
        print(f"RUN INVALID: {exc}", file=sys.stderr)
        return 2


T = TypeVar("T")


async def in_parallel(
    count: int,
    concurrency: int,
    make: Callable[[], T],
    send: Callable[[aiohttp.ClientSession, T], Awaitable[None]],
) -> None:
    """``count`` requests over ``concurrency`` workers, each with a client session of its
    own. ``make`` runs under a lock, one at a time, so a seeded generator gives the same
    requests in the same order on every run; ``send`` runs concurrently."""
    made = 0
    lock = asyncio.Lock()

    async def worker() -> None:
        nonlocal made
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                async with lock:
                    if made >= count:
                        return
                    made += 1
                    item = make()
                await send(session, item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
