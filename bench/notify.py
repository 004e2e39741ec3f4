"""Notify throughput: messages per second GOV.UK Notify accepts from Responder, and the
event loop's lag meanwhile.

    python -m bench.notify [--quick | --messages N] [--notify-latency 0.1]

Three processes: a fake GOV.UK Notify (``bench.server notify``: ``fakes/notify.py``,
which checks the JWT and the body and models Notify's rate-limit bucket, answering 429
past it), Responder (``bench.server responder``, SQLite in a temporary directory, the
example council) and this one. A backlog of N reports whose reporters ask for e-mail
updates is posted with the dispatcher off; Responder is then restarted on the same
database with the dispatcher on, ``NOTIFY_BASE_URL`` the fake and ``NOTIFY_API_KEY`` its
live key, and sends the backlog (one ``received`` e-mail per report) with nothing else
running. The fake logs the ``time.monotonic()`` of each message it accepts (the same clock
in every process); Responder's server writes its sender's loop-lag figures on the way out.

A missed goal gives exit status 1; a run that is not valid (a report not answered 201,
a message not accepted in time, a server that did not start) gives 2. The figures are
printed and written to bench/results/notify.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    COUNCIL_FILE,
    RESULTS,
    Figure,
    Server,
    ServerStartError,
    finish,
    machine,
    make_bodies,
    print_rows,
    server_process,
)
from bench.intake import drive
from bench.teams import steady_rate
from responder.settings import Settings

GOAL_PER_S = 47.5  # 95 % of Notify's 3,000 a minute
GOAL_429 = 0
GOAL_LAG_MS = 10.0
NOTIFY_LIMIT_PER_S = 3000 / 60
PACER_PER_MINUTE = Settings.notify_per_minute  # the default, which the server uses
WINDOW_S = 10.0
OTHERS_NOTE = 0.1  # cores used by other processes above which the lag figure is suspect


class RunInvalid(RuntimeError):
    pass


@dataclass
class NotifyResult:
    messages: int
    notify_latency_ms: float
    intake_seconds: float
    accepted: int
    send_seconds: float  # first to last accepted
    per_second: float  # (accepted - 1) / send_seconds
    steady_per_second: float  # least-squares slope over the middle 80 % of acceptances
    best_window_per_s: float
    worst_window_per_s: float
    startup_to_first_s: float  # from the server announcing its port to the first acceptance
    statuses: dict[str, int]
    too_many_requests: int
    duplicates: int
    retry_after_violations: int
    server_cpu_share: float | None
    # CPU the rest of the machine used while sending (cores): the busy time in /proc/stat
    # less the three benchmark processes'. Loop lag counts time spent waiting for a CPU.
    other_cpu_share: float | None
    lag: dict[str, Any] = field(default_factory=dict)
    idle_lag: dict[str, Any] = field(default_factory=dict)


def windows(times: Sequence[float], width: float, step: float = 0.5) -> tuple[float, float]:
    """Most and fewest arrivals per second over the ``width``-second windows that fit
    between the first and last arrival (sliding by ``step``)."""
    ordered = sorted(times)
    if len(ordered) < 2 or ordered[-1] - ordered[0] < width:
        return (0.0, 0.0)
    counts: list[int] = []
    start, lo, hi = ordered[0], 0, 0
    while start + width <= ordered[-1]:
        while lo < len(ordered) and ordered[lo] < start:
            lo += 1
        while hi < len(ordered) and ordered[hi] < start + width:
            hi += 1
        counts.append(hi - lo)
        start += step
    return (max(counts) / width, min(counts) / width)


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (not idle nor waiting), from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def keep_only_notify(database: Path) -> tuple[int, int]:
    """Mark every outbox row but Notify's done: no officer has installed the bot, so each
    Teams card would be parked (a database write and a warning each) while the messages
    go out, and that is not what is measured. Answers (Notify rows pending, rows dropped)."""
    with sqlite3.connect(database) as conn:
        dropped = conn.execute(
            "UPDATE outbox SET status = 'done' WHERE kind != 'notify' AND status = 'pending'"
        ).rowcount
        owed = conn.execute(
            "SELECT count(*) FROM outbox WHERE kind = 'notify' AND status = 'pending'"
        ).fetchone()[0]
    return owed, dropped


async def fake_stats(
    session: aiohttp.ClientSession, notify: Server, since: int = 0
) -> dict[str, Any]:
    """What the fake has accepted and answered (acceptance times from ``since`` on)."""
    async with session.get(f"{notify.base}/bench/notify", params={"since": since}) as response:
        response.raise_for_status()
        return await response.json()


async def idle_lag(tmp: Path, notify: Server, api_key: str, seconds: float) -> dict[str, Any]:
    """The baseline: the same server, dispatcher and sender running, nothing owed, for
    ``seconds``: the loop lag the machine and the idle service give by themselves."""
    lag_file = tmp / "idle-lag.json"
    args = [
        "responder",
        "--database",
        f"sqlite:///{tmp / 'idle.db'}",
        "--config",
        str(COUNCIL_FILE),
        "--background",
        "--notify-url",
        notify.base,
        "--notify-key",
        api_key,
        "--lag-file",
        str(lag_file),
    ]
    async with server_process(args):
        await asyncio.sleep(seconds)
    return json.loads(lag_file.read_text()) if lag_file.exists() else {}


async def measure(
    tmp: Path, *, messages: int, latency: float, seed: int, idle_seconds: float
) -> NotifyResult:
    service_id, secret = str(uuid.uuid4()), str(uuid.uuid4())
    api_key = f"bench-live-{service_id}-{secret}"
    database = tmp / "notify.db"
    lag_file = tmp / "lag.json"
    bodies = make_bodies(messages, seed, f"bench-notify-{int(time.time())}")
    base_args = ["responder", "--database", f"sqlite:///{database}", "--config", str(COUNCIL_FILE)]
    notify_args = ["notify", "--service-id", service_id, "--secret", secret]
    async with (
        server_process([*notify_args, "--latency", str(latency)]) as notify,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
    ):
        # 0. The baseline: loop lag with nothing to send.
        idle = await idle_lag(tmp, notify, api_key, idle_seconds)

        # 1. The backlog, with the dispatcher off.
        async with server_process(base_args) as responder:
            started = time.monotonic()
            phase = await drive(session, f"{responder.base}/api/tasks", bodies, 20)
            intake_seconds = time.monotonic() - started
        if phase.failures:
            raise RunInvalid(f"{phase.failures} reports not answered 201: {phase.samples}")
        owed, dropped = await asyncio.to_thread(keep_only_notify, database)
        if owed != messages:
            raise RunInvalid(f"{owed} Notify messages owed for {messages} reports")

        # 2. The same database, the dispatcher on, Notify the fake.
        send_args = [
            *base_args,
            "--background",
            "--notify-url",
            notify.base,
            "--notify-key",
            api_key,
            "--lag-file",
            str(lag_file),
        ]
        timeout = messages / 40 + 60
        async with server_process(send_args) as responder:
            listening = time.monotonic()
            cpu_before = responder.cpu_seconds()
            ours_before = [notify.cpu_seconds(), own_cpu_seconds(), busy_cpu_seconds()]
            deadline = listening + timeout
            stats = await fake_stats(session, notify, messages)
            while stats["accepted"] < messages and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                stats = await fake_stats(session, notify, messages)
            cpu_after = responder.cpu_seconds()
            ours_after = [notify.cpu_seconds(), own_cpu_seconds(), busy_cpu_seconds()]
            cpu_wall = time.monotonic() - listening
        if stats["accepted"] < messages:
            raise RunInvalid(
                f"{stats['accepted']} of {messages} messages accepted in {timeout:.0f} s"
            )
        stats = await fake_stats(session, notify)
        lag = json.loads(lag_file.read_text()) if lag_file.exists() else {}

    times = sorted(stats["accepted_at"])
    span = times[-1] - times[0]
    best, worst = windows(times, WINDOW_S)
    statuses = stats["statuses"]
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    others = None
    if cpu is not None and None not in ours_before + ours_after:
        fake_cpu, own_cpu, busy = (a - b for a, b in zip(ours_after, ours_before, strict=True))
        others = round(max(0.0, busy - cpu - fake_cpu - own_cpu) / cpu_wall, 2)
    return NotifyResult(
        messages=messages,
        notify_latency_ms=latency * 1000,
        intake_seconds=round(intake_seconds, 2),
        accepted=len(times),
        send_seconds=round(span, 2),
        per_second=round((len(times) - 1) / span, 2) if span > 0 else 0.0,
        steady_per_second=round(steady_rate(times), 2),
        best_window_per_s=round(best, 2),
        worst_window_per_s=round(worst, 2),
        startup_to_first_s=round(times[0] - listening, 2),
        statuses=statuses,
        too_many_requests=statuses.get("429", 0),
        duplicates=stats["duplicates"],
        retry_after_violations=stats["retry_after_violations"],
        server_cpu_share=None if cpu is None else round(cpu / cpu_wall, 2),
        other_cpu_share=others,
        lag=lag or {},
        idle_lag=idle,
    )


def figures(r: NotifyResult) -> list[Figure]:
    pacer = f"pacer {PACER_PER_MINUTE / 60:.1f}/s, Notify {NOTIFY_LIMIT_PER_S:.0f}/s"
    max_lag = r.lag.get("max_lag_ms")
    idle_max = r.idle_lag.get("max_lag_ms")
    idle = "n/a" if idle_max is None else f"idle {idle_max:.1f} ms"
    return [
        Figure(
            f"messages/s accepted, first to last ({r.notify_latency_ms:g} ms at Notify)",
            f">= {GOAL_PER_S:g}/s",
            pacer,
            f"{r.per_second:.2f}/s",
            r.per_second >= GOAL_PER_S,
        ),
        Figure(
            "steady rate (slope over the middle 80 %)",
            "-",
            pacer,
            f"{r.steady_per_second:.2f}/s",
            None,
        ),
        Figure(
            f"best / worst {WINDOW_S:g} s window",
            "-",
            pacer,
            f"{r.best_window_per_s:.1f} / {r.worst_window_per_s:.1f}/s",
            None,
        ),
        Figure(
            "429s answered by Notify",
            f"= {GOAL_429}",
            "-",
            str(r.too_many_requests),
            r.too_many_requests == GOAL_429,
        ),
        Figure(
            "event loop's largest lag while sending",
            f"<= {GOAL_LAG_MS:g} ms",
            idle,
            "n/a" if max_lag is None else f"{max_lag:.1f} ms",
            max_lag is not None and max_lag <= GOAL_LAG_MS,
        ),
        Figure(
            "largest lag after the first 20 samples (~1 s)",
            "-",
            "-",
            "n/a"
            if len(r.lag.get("lags_ms", [])) <= 20
            else f"{max(r.lag['lags_ms'][20:]):.1f} ms",
            None,
        ),
        Figure(
            "event loop lag p50 / p99",
            "-",
            "n/a"
            if idle_max is None
            else f"idle {r.idle_lag['p50_lag_ms']:.2f} / {r.idle_lag['p99_lag_ms']:.2f} ms",
            "n/a"
            if max_lag is None
            else f"{r.lag['p50_lag_ms']:.2f} / {r.lag['p99_lag_ms']:.2f} ms",
            None,
        ),
    ]


def print_report(r: NotifyResult, figs: Sequence[Figure]) -> None:
    rows = [("figure", "goal", "baseline", "value", "")]
    rows += [(f.name, f.goal, f.baseline, f.value, f.verdict) for f in figs]
    print_rows(rows)
    cpu = "n/a" if r.server_cpu_share is None else f"{r.server_cpu_share:.2f} core"
    others = "n/a" if r.other_cpu_share is None else f"{r.other_cpu_share:.2f}"
    print(
        f"\n{r.messages} reports posted in {r.intake_seconds:.1f} s (dispatcher off); then "
        f"{r.accepted} messages accepted in {r.send_seconds:.1f} s, the first "
        f"{r.startup_to_first_s:.2f} s after the server listened; Notify answered "
        f"{r.statuses}; duplicate references {r.duplicates}; requests inside a Retry-After "
        f"{r.retry_after_violations}; server CPU {cpu}; loop-lag samples "
        f"{r.lag.get('samples', 'n/a')}; sender {r.lag.get('sender_stats', {})}; "
        f"other processes used {others} core(s) of {os.cpu_count()} meanwhile"
    )
    if r.other_cpu_share is not None and r.other_cpu_share > OTHERS_NOTE:
        print(
            "note: something else may have been using the CPUs while sending; loop lag includes "
            "time the server waited for a CPU, so compare it with the idle baseline, or run "
            "again on a quiet machine"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.notify", description=__doc__.split("\n\n", 1)[0]
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--messages", type=int, default=3000, help="reports (one e-mail each)")
    size.add_argument("--quick", action="store_true", help="1500 messages")
    p.add_argument(
        "--notify-latency", type=float, default=0.1, help="seconds the fake takes per call"
    )
    p.add_argument(
        "--idle-seconds",
        type=float,
        help="baseline: seconds of loop lag with nothing to send (default 30, quick 10)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed for the generated reports")
    p.add_argument("--output", type=Path, default=RESULTS / "notify.json")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    messages = 1500 if args.quick else args.messages
    idle_seconds = args.idle_seconds or (10.0 if args.quick else 30.0)
    print(
        f"notify: a backlog of {messages} reports, {args.notify_latency * 1000:g} ms at Notify ...",
        flush=True,
    )
    result: NotifyResult | None = None
    invalid: list[str] = []
    with tempfile.TemporaryDirectory(prefix="responder-bench-notify-") as tmp:
        try:
            result = await measure(
                Path(tmp),
                messages=messages,
                latency=args.notify_latency,
                seed=args.seed,
                idle_seconds=idle_seconds,
            )
        except (RunInvalid, ServerStartError) as exc:
            invalid.append(str(exc))

    figs = figures(result) if result else []
    if result:
        print()
        print_report(result, figs)
    goals = {f.name: f.met for f in figs if f.met is not None}
    output = {
        "benchmark": "notify",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "messages": messages,
            "quick": args.quick,
            "notify_latency_s": args.notify_latency,
            "idle_seconds": idle_seconds,
            "pacer_per_minute": PACER_PER_MINUTE,
            "seed": args.seed,
        },
        "figures": [asdict(f) | {"verdict": f.verdict} for f in figs],
        "result": asdict(result) if result else None,
        "goals": goals,
        "invalid": invalid,
        "valid": not invalid,
    }
    return finish(args.output, output, goals, invalid)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
