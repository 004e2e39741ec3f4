"""One channel never waits for another: report -> card latency behind a Notify backlog.

    python -m bench.lanes [--quick] [--queued 2000] [--rate 20] [--seconds S]

Four processes: Responder (``bench.server responder``, SQLite in a temporary directory),
a fake Bot Connector (``bench.server connector``) whose URL is every officer's
serviceUrl, a fake GOV.UK Notify (``bench.server notify``, 100 ms a call, its JWT checks
and rate-limit bucket) and this one. Two cases, measured the same way in the same run:

- baseline: the Notify queue empty;
- queued: ``--queued`` reports whose reporters want e-mail updates posted first with the
  dispatcher off (their cards marked sent: only their Notify messages are left owed), then
  Responder restarted with it on, so the backlog goes out at Notify's pace (~48/s) while
  the timed reports come in.

In each: two seconds of warm-up reports, then reports at ``--rate`` a second (no reporter)
for ``--seconds``; a report's latency is from its intake 201 to the arrival of its first
card at the connector. A run in which the Notify backlog drained before the last timed
report is not valid (the cards would not have been measured behind it). Before the
dispatcher had lanes, 360 queued Notify messages held the next card ~10 s.

A missed goal gives exit status 1; a run that is not valid gives 2. The figures are
printed and written to bench/results/lanes.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    RESULTS,
    Figure,
    Server,
    ServerStartError,
    finish,
    machine,
    make_bodies,
    percentile,
    print_rows,
    run_main,
    server_process,
)
from bench.teams import (
    ConnectorLog,
    RunInvalid,
    first_cards,
    install_all,
    post_all,
    post_steadily,
    require_201,
    responder_args,
    write_council,
)

GOAL_P99_MS = 100.0
NOTIFY_LATENCY_S = 0.1  # as bench.notify
WARMUP_S = 2.0


@dataclass
class Case:
    name: str  # baseline | queued
    queued: int  # Notify messages owed when the dispatcher started
    reports: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    notify_sent_while_timed: int  # Notify messages accepted during the timed reports
    notify_per_s_while_timed: float
    notify_left: int  # still owed when the last timed card had arrived


async def accepted(session: aiohttp.ClientSession, notify: Server) -> int:
    async with session.get(f"{notify.base}/bench/notify", params={"since": 10**9}) as response:
        response.raise_for_status()
        return int((await response.json())["accepted"])


def without_reporter(body: bytes) -> bytes:
    """A timed report owes a card and nothing else (as bench.teams' reports)."""
    data = json.loads(body)
    data.pop("reporter", None)
    return json.dumps(data).encode()


def keep_only_notify(database: Path) -> int:
    """Mark every pending row but Notify's sent (the backlog's own cards are not what is
    measured); answer the Notify rows owed."""
    with sqlite3.connect(database) as conn:
        notify = "(kind = 'notify' OR kind LIKE 'notify.%')"  # by kind: also before lanes
        conn.execute(f"UPDATE outbox SET status = 'done' WHERE NOT {notify}")
        return conn.execute(
            f"SELECT count(*) FROM outbox WHERE {notify} AND status = 'pending'"
        ).fetchone()[0]


async def measure(
    tmp: Path, name: str, *, queued: int, rate: float, seconds: float, seed: int
) -> Case:
    council = write_council(tmp, extra_officers_per_team=15)
    database = tmp / f"{name}.db"
    service_id, secret = str(uuid.uuid4()), str(uuid.uuid4())
    api_key = f"bench-live-{service_id}-{secret}"
    # One call, so that no report lands on an earlier one's spot (a duplicate answers 200).
    warm_count, timed_count = round(rate * WARMUP_S), round(rate * seconds)
    tag = f"lanes-{name}-{int(time.time())}"
    bodies = make_bodies(
        queued + warm_count + timed_count, seed, tag, council.path, council.direct_types
    )
    backlog = bodies[:queued]  # with a reporter who wants e-mail updates
    warm_bodies = [without_reporter(b) for b in bodies[queued : queued + warm_count]]
    timed_bodies = [without_reporter(b) for b in bodies[queued + warm_count :]]
    notify_args = ["notify", "--service-id", service_id, "--secret", secret]
    async with (
        server_process(["connector"]) as connector,
        server_process([*notify_args, "--latency", str(NOTIFY_LATENCY_S)]) as notify,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
    ):
        log = ConnectorLog(session, connector)
        # 1. Officers installed and the backlog posted, with the dispatcher off.
        async with server_process(responder_args(database, council.path, background=False)) as r:
            officers = [council.users[o] for o in council.officers]
            await install_all(session, r, officers, log.service_url)
            if queued:
                require_201(await post_all(session, f"{r.base}/api/tasks", backlog, 20), "backlog")
        owed = await asyncio.to_thread(keep_only_notify, database)
        if owed != queued:
            raise RunInvalid(f"{name}: {owed} Notify messages owed, not {queued}")

        # 2. The dispatcher on: the backlog goes out while reports come in.
        args = [
            *responder_args(database, council.path),
            "--no-scheduler",
            "--notify-url",
            notify.base,
            "--notify-key",
            api_key,
        ]
        async with server_process(args) as responder:
            url = f"{responder.base}/api/tasks"
            warm = await post_steadily(session, url, warm_bodies, rate)
            require_201(warm, f"{name} warm-up")
            warm_ids = {p.task_id for p in warm}
            if not await log.wait_for(lambda: warm_ids <= first_cards(log.arrivals).keys(), 30):
                raise RunInvalid(f"{name} warm-up: not every card reached the connector in 30 s")

            timed_from = len(log.arrivals)
            sent_before = await accepted(session, notify)
            started = time.monotonic()
            posted = await post_steadily(session, url, timed_bodies, rate)
            elapsed = time.monotonic() - started
            require_201(posted, name)
            wanted = {p.task_id for p in posted}
            if not await log.wait_for(lambda: wanted <= first_cards(log.arrivals).keys(), 30):
                missing = wanted - first_cards(log.arrivals).keys()
                raise RunInvalid(f"{name}: {len(missing)} tasks got no card within 30 s")
            sent_after = await accepted(session, notify)

    first = first_cards(log.arrivals[timed_from:])
    latencies = [first[p.task_id] - p.answered_at for p in posted if p.task_id is not None]
    left = queued - sent_after
    if queued and left <= 0:
        raise RunInvalid(f"{name}: the Notify backlog drained before the timed reports ended")
    return Case(
        name=name,
        queued=queued,
        reports=len(posted),
        seconds=round(elapsed, 2),
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        max_ms=round(max(latencies) * 1000, 2),
        notify_sent_while_timed=sent_after - sent_before,
        notify_per_s_while_timed=round((sent_after - sent_before) / elapsed, 1),
        notify_left=max(0, left),
    )


def figures(baseline: Case, queued: Case) -> list[Figure]:
    return [
        Figure(
            f"card latency p99, {queued.queued:,} Notify messages queued",
            f"<= {GOAL_P99_MS:g} ms @ {queued.reports / queued.seconds:.0f}/s",
            f"empty queue {baseline.p99_ms:.1f} ms",
            f"{queued.p99_ms:.1f} ms",
            queued.p99_ms <= GOAL_P99_MS,
        ),
        Figure(
            "card latency p50",
            "info",
            f"empty queue {baseline.p50_ms:.1f} ms",
            f"{queued.p50_ms:.1f} ms",
            None,
        ),
        Figure(
            "Notify messages/s meanwhile (its own pace)",
            "info (pacer 48/s)",
            f"{baseline.notify_per_s_while_timed:g}/s",
            f"{queued.notify_per_s_while_timed:g}/s, {queued.notify_left:,} left at the end",
            None,
        ),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.lanes", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10 s of timed reports (default 30 s)")
    p.add_argument("--queued", type=int, default=2000, help="Notify messages queued first")
    p.add_argument("--rate", type=float, default=20.0, help="reports per second")
    p.add_argument("--seconds", type=float, help="seconds of timed reports (default 30, quick 10)")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated reports")
    p.add_argument("--output", type=Path, default=RESULTS / "lanes.json")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    cases: dict[str, Case] = {}
    invalid: list[str] = []
    with tempfile.TemporaryDirectory(prefix="responder-bench-lanes-") as tmp:
        for name, queued in (("baseline", 0), ("queued", args.queued)):
            directory = Path(tmp) / name
            directory.mkdir()
            print(
                f"{name}: {queued:,} Notify messages queued, {args.rate:g} reports/s "
                f"for {seconds:g} s ...",
                flush=True,
            )
            try:
                cases[name] = await measure(
                    directory, name, queued=queued, rate=args.rate, seconds=seconds, seed=args.seed
                )
            except (RunInvalid, ServerStartError) as exc:
                print(f"  {name}: RUN INVALID: {exc}", flush=True)
                invalid.append(f"{name}: {exc}")

    shown: list[Figure] = []
    if len(cases) == 2:
        shown = figures(cases["baseline"], cases["queued"])
        print()
        rows = [("figure", "goal", "baseline", "value", "")]
        rows += [(f.name, f.goal, f.baseline, f.value, f.verdict) for f in shown]
        print_rows(rows)
    for case in cases.values():
        print(
            f"{case.name}: {case.reports} reports in {case.seconds:.1f} s, card latency "
            f"p50 {case.p50_ms:.1f} ms, p99 {case.p99_ms:.1f} ms, max {case.max_ms:.1f} ms; "
            f"Notify accepted {case.notify_sent_while_timed} meanwhile"
        )
    queued_case, baseline_case = cases.get("queued"), cases.get("baseline")
    goals = {f.name: f.met for f in shown if f.met is not None}
    output: dict[str, Any] = {
        "benchmark": "lanes",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "quick": args.quick,
            "queued": args.queued,
            "rate": args.rate,
            "seconds": seconds,
            "notify_latency_s": NOTIFY_LATENCY_S,
            "seed": args.seed,
        },
        "lanes_card_p50_ms": queued_case.p50_ms if queued_case else None,
        "lanes_card_p99_ms": queued_case.p99_ms if queued_case else None,
        "baseline_p50_ms": baseline_case.p50_ms if baseline_case else None,
        "baseline_p99_ms": baseline_case.p99_ms if baseline_case else None,
        "cases": {name: asdict(case) for name, case in cases.items()},
        "figures": [asdict(f) | {"verdict": f.verdict} for f in shown],
        "goals": goals,
        "invalid": invalid,
        "valid": not invalid,
    }
    return finish(args.output, output, goals, invalid)


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
