"""Resilience scenarios (issue 7): a SIGKILL mid-burst, a minute of faults, two instances.

    python -m bench.resilience [--quick] [--only crash|faults|two] [--postgres-url URL]

The first two are the core of ``tests/test_durability.py``, counted instead of asserted;
the fakes (``fakes/connector.py``, ``fakes/notify.py``) and the helpers
(``fakes/durability.py``) are the test's own, not copies:

- **crash**: the real service (``python app.py``) on a fresh SQLite file, everyone in the
  example council installed, a burst of 150 reports (each with a reporter wanting e-mail)
  with both fakes answering after 50 ms; SIGKILL once 60 are acknowledged; the leases of
  rows the dead process had claimed are ended (what 120 s of waiting would do), the
  service is started again and the outbox left to settle. ``crash_lost``: acknowledged
  reports not stored, plus owed messages (a card per officer owed one, a Notify e-mail per
  report) that never reached the fakes. ``crash_duplicates``: cards POSTed more than once
  for the same task and conversation, plus Notify references accepted more than once,
  summed over the crashes (1 with ``--quick``, 3 otherwise); goal <= 1 per crash.
- **faults**: the service as a process (``bench.server responder --background``, no
  scheduler), with the dispatcher's ``max_backoff`` capped at 4 s as in the test (without
  it, full-jitter backoff after a minute of 40 % failures can leave a row waiting up to
  300 s), both fakes (in this process) answering 30 % 5xx and 10 % 429
  (Retry-After: 1) while reports arrive at 2.5/s for 60 s (30 s with ``--quick``), then
  healthy; up to 90 s to settle. ``faults_delivered_pct``: owed messages that reached
  their fake, over all outbox rows.
- **two**: two ``bench.server responder --background`` processes on one PostgreSQL
  (``--postgres-url``, default ``responder_bench``; its ``public`` schema is DROPPED first), with
  ``bench.teams``'s council (50 extra officers per street-cleansing team, so Teams'
  per-conversation limits do not set the pace) and ``fakes/connector.py`` in this
  process. The officers are installed through a first instance without background work;
  then both start at once (both schedulers race for the start-up digest on a fresh
  database) and 2,000 reports (1,000 with ``--quick``) are split between them.
  ``two_instance_doubles``: cards POSTed more than once for the same task and
  conversation, plus digest cards beyond one per managed team per manager, counted over
  the whole scenario (the start-up digest can go out while the officers are installed).

Results go to ``bench/results/resilience.json``. Exit status: 0 goals met, 1 a goal
missed, 2 a scenario could not run (its figures are then null).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml
from aiohttp import web

from bench.common import RESULTS, machine, server_process
from fakes.connector import FakeConnector
from fakes.notify import FakeNotify

POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/responder_bench"
)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free 127.0.0.1 port in this loop; (runner, base URL with no slash)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def fakes() -> tuple[FakeConnector, FakeNotify, list[web.AppRunner]]:
    connector, notify = FakeConnector(), FakeNotify()
    c_runner, c_url = await serve(connector.app())
    n_runner, n_url = await serve(notify.app())
    connector.url, notify.url = c_url + "/", n_url
    return connector, notify, [c_runner, n_runner]


def account(rows: list, connector: FakeConnector, notify: FakeNotify) -> dict[str, int]:
    """Owed messages (outbox rows) that reached their fake, and duplicates at the fakes."""
    from fakes import durability as td

    posted = td._posted_cards(connector)
    by_reference = Counter(a.reference for a in notify.accepted if a.reference)
    delivered = 0
    for r in rows:
        if r.kind == "teams.card" and r.payload.get("person"):
            conv = f"a:personal-{r.payload['person']}"
            delivered += posted[r.task_id, conv] >= 1
        elif r.kind == "notify":
            delivered += by_reference[r.idempotency_key] >= 1
        else:
            delivered += r.status == "done"
    return {
        "rows": len(rows),
        "delivered": delivered,
        "undelivered": len(rows) - delivered,
        "card_duplicates": sum(n - 1 for n in posted.values()),
        "max_posts_per_card": max(posted.values(), default=0),
        "notify_duplicates": sum(n - 1 for n in by_reference.values()),
    }


# --- crash -----------------------------------------------------------------------------------


async def crash_round(tmp: Path, total: int = 150, kill_after: int = 60) -> dict[str, Any]:
    from fakes import durability as td
    from fakes.teams import install

    connector, notify, runners = await fakes()
    database_url = f"sqlite:///{tmp / 'durable.db'}"
    service = td.Process(tmp, database_url, notify)
    connector.latency = notify.latency = 0.05
    acknowledged: dict[int, int] = {}
    killed = asyncio.Event()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            await service.start(session)
            for person in td.PEOPLE:
                async with session.post(
                    f"{service.url}/api/messages", json=install(person, connector.url)
                ) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"install of {person}: {resp.status}")

            async def report(i: int) -> None:
                try:
                    async with session.post(
                        f"{service.url}/api/tasks", json=td._report("burst", i), headers=td.AUTH
                    ) as resp:
                        if resp.status != 201:
                            return
                        body = await resp.json()
                except (aiohttp.ClientError, TimeoutError):
                    return
                if killed.is_set():
                    return
                acknowledged[body["id"]] = i
                if len(acknowledged) >= kill_after:
                    service.kill()
                    killed.set()

            await asyncio.gather(*(report(i) for i in range(total)))
            if not killed.is_set():
                raise RuntimeError(f"only {len(acknowledged)} reports acknowledged")
            await asyncio.to_thread(service.proc.wait, 10)
            in_flight = await asyncio.to_thread(td._end_leases, database_url)
            connector.latency = notify.latency = 0.0
            await service.start(session)
            try:
                rows = await td._settle_db(database_url, within=60)
            except AssertionError:
                rows = await asyncio.to_thread(td._outbox_rows, database_url)
            missing_tasks = 0
            for task_id in acknowledged:
                async with session.get(
                    f"{service.url}/api/tasks/{task_id}", headers=td.AUTH
                ) as resp:
                    missing_tasks += resp.status != 200
    finally:
        service.stop()
        for runner in runners:
            await runner.cleanup()
    counts = account(rows, connector, notify)
    # Each acknowledged report owes a Notify e-mail: one with no outbox row at all is lost too.
    notify_rows = {r.task_id for r in rows if r.kind == "notify"}
    no_rows = sum(1 for t in acknowledged if t not in notify_rows)
    return {
        "acknowledged": len(acknowledged),
        "rows_pending_at_kill": in_flight,
        "missing_tasks": missing_tasks,
        "acknowledged_without_rows": no_rows,
        "lost": missing_tasks + no_rows + counts["undelivered"],
        "duplicates": counts["card_duplicates"] + counts["notify_duplicates"],
        **counts,
    }


async def crash(quick: bool) -> dict[str, Any]:
    rounds = []
    for n in range(1 if quick else 3):
        with tempfile.TemporaryDirectory(prefix="responder-crash-") as tmp:
            r = await crash_round(Path(tmp))
        print(
            f"crash {n + 1}: acknowledged {r['acknowledged']}, rows {r['rows']}, "
            f"lost {r['lost']}, duplicates {r['duplicates']}",
            flush=True,
        )
        rounds.append(r)
    return {
        "crashes": len(rounds),
        "crash_lost": sum(r["lost"] for r in rounds),
        "crash_duplicates": sum(r["duplicates"] for r in rounds),
        "crash_max_duplicates_per_crash": max(r["duplicates"] for r in rounds),
        "rounds": rounds,
    }


# --- faults ----------------------------------------------------------------------------------


async def faults(quick: bool) -> dict[str, Any]:
    from bench.server import BENCH_KEY_SECRET
    from fakes import durability as td
    from fakes.teams import install

    seconds = 30.0 if quick else td.FAULT_SECONDS
    auth = {"Authorization": f"Bearer {BENCH_KEY_SECRET}"}
    connector, notify, runners = await fakes()
    with tempfile.TemporaryDirectory(prefix="responder-faults-") as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'faults.db'}"
        args = [
            "responder",
            "--database",
            database_url,
            "--config",
            str(td.EXAMPLES / "council.yaml"),
            "--background",
            "--no-scheduler",
            "--max-backoff",
            "4",
            "--notify-url",
            notify.url,
            "--notify-key",
            notify.api_key(),
        ]
        try:
            async with (
                server_process(args) as service,
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
            ):
                for person in td.PEOPLE:
                    async with session.post(
                        f"{service.base}/api/messages", json=install(person, connector.url)
                    ) as resp:
                        if resp.status != 200:
                            raise RuntimeError(f"install of {person}: {resp.status}")
                connector.fault_rates = notify.fault_rates = (0.3, 0.1, 1.0)
                started = time.monotonic()
                i = refused = 0
                while time.monotonic() - started < seconds:
                    async with session.post(
                        f"{service.base}/api/tasks", json=td._report("faults", i), headers=auth
                    ) as resp:
                        refused += resp.status != 201
                        await resp.read()
                    i += 1
                    await asyncio.sleep(1 / td.REPORTS_PER_SECOND)
                connector.fault_rates = notify.fault_rates = (0.0, 0.0, 1.0)
                try:
                    rows = await td._settle_db(database_url, within=90)
                except AssertionError:
                    rows = await asyncio.to_thread(td._outbox_rows, database_url)
                pending = [r for r in rows if r.status == "pending"]
                settled = time.monotonic() - started - seconds
        finally:
            for r in reversed(runners):
                await r.cleanup()
    counts = account(rows, connector, notify)
    pct = 100.0 * counts["delivered"] / counts["rows"] if counts["rows"] else 0.0
    failures = Counter(str(a.status) for a in notify.arrivals if a.status >= 400)
    print(
        f"faults: {i} reports over {seconds:.0f} s, rows {counts['rows']}, "
        f"delivered {pct:.1f} %, settled {settled:.1f} s after",
        flush=True,
    )
    return {
        "fault_seconds": seconds,
        "reports": i,
        "reports_refused": refused,
        "faults_delivered_pct": round(pct, 2),
        "pending_at_end": len(pending),
        "settled_after_s": round(settled, 1),
        "most_attempts": max((r.attempts for r in rows), default=0),
        "notify_failures": dict(failures),
        "retry_after_violations": connector.retry_after_violations + notify.retry_after_violations,
        **counts,
    }


# --- two instances ------------------------------------------------------------------------


async def two_instances(quick: bool, postgres_url: str) -> dict[str, Any]:
    from bench.teams import (
        QUEUE_SHARE,
        install_all,
        post_all,
        refused,
        report_bodies,
        weighted_types,
        write_council,
    )

    reports = 1000 if quick else 2000
    if postgres_url.rstrip("/").rsplit("/", 1)[-1] == "test":
        raise RuntimeError("refusing to drop the schema of `test` (the test suite's database)")
    from bench.intake import reset_postgres

    await reset_postgres(postgres_url)  # creates the bench's database on first use

    connector = FakeConnector()
    c_runner, c_url = await serve(connector.app())
    connector.url = c_url + "/"
    with tempfile.TemporaryDirectory(prefix="responder-two-") as tmp:
        council = write_council(Path(tmp), 50)
        teams_data = yaml.safe_load(council.path.read_text())["teams"]
        base = ["responder", "--database", postgres_url, "--config", str(council.path)]
        bodies = report_bodies(
            council, reports, weighted_types(council, QUEUE_SHARE), seed=3, tag="two"
        )
        try:
            async with aiohttp.ClientSession() as session:
                async with server_process(base) as first:
                    await install_all(session, first, council.users.values(), connector.url)
                # A failed turn is still answered 200: check the references were stored.
                db = await asyncpg.connect(postgres_url)
                try:
                    stored = await db.fetchval("SELECT count(*) FROM conversations")
                finally:
                    await db.close()
                if stored < len(council.users):
                    raise RuntimeError(f"{stored} of {len(council.users)} installs stored")
                async with (
                    server_process([*base, "--background"]) as a,
                    server_process([*base, "--background"]) as b,
                ):
                    started = time.monotonic()
                    posted = await asyncio.gather(
                        post_all(session, f"{a.base}/api/tasks", bodies[0::2], 10),
                        post_all(session, f"{b.base}/api/tasks", bodies[1::2], 10),
                    )
                    posted_all = posted[0] + posted[1]
                    bad = refused(posted_all)
                    db = await asyncpg.connect(postgres_url)
                    try:
                        deadline = time.monotonic() + reports / 20 + 90
                        while time.monotonic() < deadline:
                            pending = await db.fetchval(
                                "SELECT count(*) FROM outbox WHERE status = 'pending'"
                            )
                            if pending == 0:
                                break
                            await asyncio.sleep(0.5)
                        await asyncio.sleep(2.0)  # time for any double to arrive
                        pending = await db.fetchval(
                            "SELECT count(*) FROM outbox WHERE status = 'pending'"
                        )
                        owed = await db.fetch(
                            "SELECT task_id, payload FROM outbox WHERE kind = 'teams.card'"
                        )
                        tasks = await db.fetchval("SELECT count(*) FROM tasks")
                    finally:
                        await db.close()
                    elapsed = time.monotonic() - started
        finally:
            await c_runner.cleanup()

    # The whole scenario, installs included: on the fresh schema every card the connector
    # saw is this scenario's (digests went out during the installs too).
    received = connector.received
    posts: Counter[tuple[int, str]] = Counter()
    digests: Counter[str] = Counter()
    for r in received:
        card = r.card
        if r.method != "POST" or card is None:
            continue
        heading = (card.get("body") or [{}])[0].get("text") or ""
        if "digest" in heading.lower():
            digests[r.conversation_id] += 1
            continue
        from fakes import durability as td

        for task_id in td._task_ids(card):
            posts[task_id, r.conversation_id] += 1
    managed: Counter[str] = Counter(
        f"a:personal-{m}" for t in teams_data for m in t.get("managers") or []
    )
    card_doubles = sum(n - 1 for n in posts.values())
    digest_doubles = sum(max(0, n - managed[c]) for c, n in digests.items())
    missing_digests = sum(max(0, n - digests[c]) for c, n in managed.items())
    owed_cards = set()
    for row in owed:
        payload = row["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        if payload.get("person"):
            owed_cards.add((row["task_id"], f"a:personal-{payload['person']}"))
    missing_cards = sum(1 for k in owed_cards if posts[k] < 1)
    print(
        f"two instances: {len(posted_all)} reports ({len(bad)} refused), {tasks} tasks, "
        f"card doubles {card_doubles}, digests {dict(digests)}, "
        f"missing cards {missing_cards}, pending {pending}, {elapsed:.1f} s",
        flush=True,
    )
    return {
        "reports": reports,
        "refused": len(bad),
        "tasks": tasks,
        "cards_owed": len(owed_cards),
        "cards_missing": missing_cards,
        "pending_at_end": pending,
        "card_doubles": card_doubles,
        "digests": dict(digests),
        "digests_expected": dict(managed),
        "digest_doubles": digest_doubles,
        "digests_missing": missing_digests,
        "two_instance_doubles": card_doubles + digest_doubles,
        "seconds": round(elapsed, 1),
    }


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.resilience", description=__doc__.split("\n\n", 1)[0]
    )
    p.add_argument("--quick", action="store_true", help="1 crash, 30 s of faults, 1000 reports")
    p.add_argument("--only", choices=("crash", "faults", "two"), action="append")
    p.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help="database for the two-instance scenario (env BENCH_POSTGRES_URL); its public "
        "schema is DROPPED first",
    )
    p.add_argument("--output", type=Path, default=RESULTS / "resilience.json")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    parts = args.only or ["crash", "faults", "two"]
    report: dict[str, Any] = {
        "benchmark": "resilience",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
        "crash_lost": None,
        "crash_duplicates": None,
        "faults_delivered_pct": None,
        "two_instance_doubles": None,
        "errors": {},
    }
    scenarios = {
        "crash": lambda: crash(args.quick),
        "faults": lambda: faults(args.quick),
        "two": lambda: two_instances(args.quick, args.postgres_url),
    }
    for part in parts:
        print(f"--- {part} ---", flush=True)
        try:
            result = await scenarios[part]()
        except Exception as exc:  # a scenario that cannot run leaves its figures null
            traceback.print_exc()
            report["errors"][part] = repr(exc)
            continue
        report[part] = result
        for key in ("crash_lost", "crash_duplicates", "faults_delivered_pct"):
            if key in result:
                report[key] = result[key]
        if "two_instance_doubles" in result:
            report["two_instance_doubles"] = result["two_instance_doubles"]
            report["two_instance_valid"] = (
                result["refused"] == 0
                and result["cards_missing"] == 0
                and result["digests_missing"] == 0
            )
    crashes = report.get("crash", {}).get("crashes", 1)
    goals = {
        "crash_lost == 0": report["crash_lost"] == 0,
        f"crash_duplicates <= {crashes} (1 per crash)": report["crash_duplicates"] is not None
        and report["crash_duplicates"] <= crashes,
        "faults_delivered_pct == 100": report["faults_delivered_pct"] == 100.0,
        "two_instance_doubles == 0": report["two_instance_doubles"] == 0,
    }
    report["goals"] = {g: m for g, m in goals.items() if any(p in g for p in _keys(parts))}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    for goal, met in report["goals"].items():
        print(f"goal {goal}: {'PASS' if met else 'FAIL'}")
    print(f"written to {args.output}")
    if report["errors"]:
        return 2
    return 0 if all(report["goals"].values()) else 1


def _keys(parts: list[str]) -> list[str]:
    names = {"crash": "crash_", "faults": "faults_", "two": "two_instance"}
    return [names[p] for p in parts]


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
