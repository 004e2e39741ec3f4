"""Teams delivery: report -> card latency, cards/s inside Teams' limits, CPU per bot turn.

    python -m bench.teams [--quick] [--only latency|throughput|turns ...]

Three processes: Responder (``bench.server responder --background``: SQLite in a temporary
directory, the dispatcher delivering cards), a fake Bot Connector (``bench.server
connector``, see bench/connector.py) whose URL is the serviceUrl of every officer's
install activity, and this one, which sends reports and Teams activities and reads the
connector's log (arrival times are CLOCK_MONOTONIC, comparable across processes).

1. latency: reports at a steady rate (20/s); for each, the time from its intake 201 to
   the arrival of its first card at the connector (0 ms connector latency).
2. throughput: a backlog of reports, then the rate at which cards arrive at a connector
   that answers after 100 ms, and any breach of Teams' limits the connector sees.
3. turns: server CPU per "my tasks" message turn (an officer with 10 open tasks), on each
   Teams runtime (the Agents SDK, botbuilder), beside the stock echo bot of the same SDK
   (``bench.server echo --runtime ...``) measured in the same run.

A missed goal gives exit status 1; a run that is not valid (an answer other than 201 or
200, a card that never came, a server that did not start) gives 2. The figures are
printed and written to bench/results/teams.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.common import (
    COUNCIL_FILE,
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
from bench.connector import Arrival
from bench.server import BENCH_KEY_SECRET

GOAL_P50_MS = 25.0
GOAL_P99_MS = 100.0
GOAL_CARDS_PER_S = 47.5
GOAL_TURN_RATIO = 0.5  # issue 15: a turn costs at most half the same SDK's echo bot's CPU

# Teams' documented limits, written out here rather than imported from
# responder/bot/pacing.py, so that a mistake there shows up as a breach.
PER_CONVERSATION_LIMITS: tuple[tuple[int, float], ...] = (
    (7, 1.0),
    (8, 2.0),
    (60, 30.0),
    (1800, 3600.0),
)
PER_BOT_LIMITS: tuple[tuple[int, float], ...] = ((50, 1.0),)

TENANT = "5b1c2d3e-0000-4000-8000-00000000c0de"  # examples/council.yaml's tenant_id
BOT = {"id": "28:responder-bot-id", "name": "Responder"}
QUEUE_SHARE = 0.05  # share of latency reports of queue types (a card to grace and henry each)
INTAKE_HEADERS = {"Authorization": f"Bearer {BENCH_KEY_SECRET}", "Content-Type": "application/json"}


class RunInvalid(RuntimeError):
    """The run cannot give figures (a refused request, a card that never came)."""


# --- the council and its Teams users ----------------------------------------------------


@dataclass(frozen=True)
class TeamsUser:
    person_id: str
    name: str
    aad_object_id: str

    @property
    def conversation(self) -> str:
        return f"a:personal-{self.person_id}"


@dataclass(frozen=True)
class BenchCouncil:
    path: Path
    users: dict[str, TeamsUser]
    direct_officers: list[str]  # officers of teams that route each task to one officer
    queue_officers: list[str]  # officers of queue teams (each gets every card of the team)
    direct_types: list[str]  # types of the services routed to one officer (no queue)
    queue_types: list[str]  # types offered to a queue team

    @property
    def officers(self) -> list[str]:
        return self.direct_officers + self.queue_officers


def write_council(directory: Path, extra_officers_per_team: int) -> BenchCouncil:
    """examples/council.yaml with ``extra_officers_per_team`` more officers in each team
    that routes to one officer (the queue team keeps grace and henry: every officer of a
    queue team gets each of its cards, so more officers there would not spread them)."""
    data = yaml.safe_load(COUNCIL_FILE.read_text())
    shutil.copy(COUNCIL_FILE.parent / data["wards"], directory / data["wards"])
    serial = itertools.count(1)
    for team in data["teams"]:
        if team.get("routing") == "queue":
            continue
        for n in range(1, extra_officers_per_team + 1):
            person_id = f"{team['code']}-{n:03d}"
            team["officers"].append(person_id)
            data["people"].append(
                {
                    "id": person_id,
                    "name": f"Officer {team['code']} {n}",
                    "role": "officer",
                    "aad_object_id": f"be4c0000-0000-4000-8000-{next(serial):012d}",
                }
            )
    path = directory / "council.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    users = {
        p["id"]: TeamsUser(p["id"], p["name"], p["aad_object_id"])
        for p in data["people"]
        if p.get("aad_object_id")
    }
    service_of = {t["code"]: t["service"] for t in data["task_types"]}
    queue_teams = [t for t in data["teams"] if t.get("routing") == "queue"]
    direct_teams = [t for t in data["teams"] if t.get("routing") != "queue"]
    queue_services = {s for t in queue_teams for s in t["services"]}
    return BenchCouncil(
        path=path,
        users=users,
        direct_officers=[o for t in direct_teams for o in t["officers"]],
        queue_officers=[o for t in queue_teams for o in t["officers"]],
        direct_types=[c for c, s in service_of.items() if s not in queue_services],
        queue_types=[c for c, s in service_of.items() if s in queue_services],
    )


def weighted_types(council: BenchCouncil, queue_share: float) -> list[str]:
    """A list to draw types from uniformly, with about ``queue_share`` of queue types."""
    direct, queue = council.direct_types, council.queue_types
    if queue_share <= 0 or not queue:
        return list(direct)
    repeat = max(1, round(len(queue) * (1 - queue_share) / (queue_share * len(direct))))
    return direct * repeat + queue


# --- Teams activities (as fakes/teams.py builds them) -------------------------------------

_activity_ids = itertools.count(1)


def activity(kind: str, user: TeamsUser, service_url: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "type": kind,
        "id": f"f:{next(_activity_ids)}",
        "timestamp": now,
        "localTimestamp": now,
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {
            "id": f"29:user-{user.person_id}",
            "name": user.name,
            "aadObjectId": user.aad_object_id,
        },
        "conversation": {
            "conversationType": "personal",
            "tenantId": TENANT,
            "id": user.conversation,
        },
        "recipient": BOT,
        "channelData": {"tenant": {"id": TENANT}},
        "locale": "en-GB",
        **extra,
    }


def install(user: TeamsUser, service_url: str) -> dict[str, Any]:
    """What Teams sends when a person adds the bot in personal scope."""
    member = {"id": f"29:user-{user.person_id}", "name": user.name}
    return activity("conversationUpdate", user, service_url, membersAdded=[BOT, member])


def message(user: TeamsUser, text: str, service_url: str) -> dict[str, Any]:
    return activity("message", user, service_url, text=text, textFormat="plain")


async def send_activity(session: aiohttp.ClientSession, bot: Server, body: dict) -> int:
    async with session.post(f"{bot.base}/api/messages", json=body) as response:
        await response.read()
        return response.status


async def install_all(
    session: aiohttp.ClientSession,
    responder: Server,
    users: Iterable[TeamsUser],
    service_url: str,
    concurrency: int = 4,
) -> None:
    """Install the bot for each user (their conversation reference is stored); a few at a
    time, as the welcome replies go to the connector unpaced."""
    pending = iter(users)

    async def worker() -> None:
        for user in pending:
            status = await send_activity(session, responder, install(user, service_url))
            if status != 200:
                raise RunInvalid(f"install of {user.person_id} answered {status}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# --- the connector's log ------------------------------------------------------------------


class ConnectorLog:
    """What the fake connector received, fetched incrementally from its process."""

    def __init__(self, session: aiohttp.ClientSession, connector: Server) -> None:
        self.session = session
        self.connector = connector
        self.arrivals: list[Arrival] = []

    @property
    def service_url(self) -> str:
        return f"{self.connector.base}/"

    async def fetch(self) -> list[Arrival]:
        """Arrivals since the last fetch (also appended to ``arrivals``)."""
        url = f"{self.connector.base}/bench/log?since={len(self.arrivals)}"
        async with self.session.get(url) as response:
            new = [Arrival.from_json(row) for row in await response.json()]
        self.arrivals.extend(new)
        return new

    async def wait_for(self, done: Callable[[], bool], within: float, *, poll: float = 0.2) -> bool:
        """Fetch until ``done()`` holds (True) or ``within`` seconds pass (False)."""
        deadline = time.monotonic() + within
        while True:
            await self.fetch()
            if done():
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(poll)


def first_cards(arrivals: Iterable[Arrival]) -> dict[int, float]:
    """Task id -> arrival time of the first card that carries it."""
    first: dict[int, float] = {}
    for a in arrivals:
        if a.card and a.method == "POST":
            for task_id in a.task_ids:
                first[task_id] = min(a.at, first.get(task_id, a.at))
    return first


def breaches(times: Sequence[float], limit: int, window: float) -> int:
    """Requests that arrived when ``limit`` others had already arrived in the ``window``
    seconds before: those Teams would have answered with a 429."""
    ordered = sorted(times)
    count, start = 0, 0
    for i, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        if i - start >= limit:
            count += 1
    return count


def most_in_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for i, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, i - start + 1)
    return best


@dataclass
class LimitCheck:
    conversations: int
    breaches_per_conversation: dict[str, int]  # "7/1s": requests over that limit
    breaches_per_bot: dict[str, int]
    most_per_conversation_1s: int
    most_per_conversation_30s: int
    most_per_bot_1s: int

    @property
    def total(self) -> int:
        return sum(self.breaches_per_conversation.values()) + sum(self.breaches_per_bot.values())


def check_limits(arrivals: Sequence[Arrival]) -> LimitCheck:
    """Every request the connector saw, against Teams' per-conversation and per-bot limits."""
    by_conversation: dict[str, list[float]] = defaultdict(list)
    for a in arrivals:
        by_conversation[a.conversation].append(a.at)
    everything = [a.at for a in arrivals]
    per_conversation = {
        f"{n}/{w:g}s": sum(breaches(ts, n, w) for ts in by_conversation.values())
        for n, w in PER_CONVERSATION_LIMITS
    }
    per_bot = {f"{n}/{w:g}s": breaches(everything, n, w) for n, w in PER_BOT_LIMITS}
    return LimitCheck(
        conversations=len(by_conversation),
        breaches_per_conversation=per_conversation,
        breaches_per_bot=per_bot,
        most_per_conversation_1s=max(
            (most_in_window(ts, 1.0) for ts in by_conversation.values()), default=0
        ),
        most_per_conversation_30s=max(
            (most_in_window(ts, 30.0) for ts in by_conversation.values()), default=0
        ),
        most_per_bot_1s=most_in_window(everything, 1.0),
    )


# --- reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    status: int
    task_id: int | None
    answered_at: float  # time.monotonic() when the answer had been read
    answer: str


async def post_report(session: aiohttp.ClientSession, url: str, body: bytes) -> Posted:
    try:
        async with session.post(url, data=body, headers=INTAKE_HEADERS) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Posted(0, None, time.monotonic(), repr(exc))
    answered_at = time.monotonic()
    task_id = json.loads(raw).get("id") if status == 201 else None
    return Posted(status, task_id, answered_at, raw[:300].decode(errors="replace"))


async def post_steadily(
    session: aiohttp.ClientSession, url: str, bodies: Sequence[bytes], rate: float
) -> list[Posted]:
    """Open loop: report i is sent at start + i / rate, whether or not earlier ones answered."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sending: list[asyncio.Task[Posted]] = []
    for i, body in enumerate(bodies):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sending.append(asyncio.create_task(post_report(session, url, body)))
    return list(await asyncio.gather(*sending))


async def post_all(
    session: aiohttp.ClientSession, url: str, bodies: Sequence[bytes], concurrency: int
) -> list[Posted]:
    """As fast as the server answers, ``concurrency`` at a time."""
    pending = iter(bodies)
    posted: list[Posted] = []

    async def worker() -> None:
        for body in pending:
            posted.append(await post_report(session, url, body))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return posted


def report_bodies(
    council: BenchCouncil, count: int, types: Sequence[str], seed: int, tag: str
) -> list[bytes]:
    """Reports as bench/intake.py makes them, but without a reporter: with no NOTIFY_API_KEY
    every reporter's e-mail row is parked with a warning logged, and e-mail delivery is not
    what this benchmark measures."""
    run_tag = f"{tag}-{int(time.time())}"
    return make_bodies(count, seed, run_tag, council.path, types, reporter=False)


def refused(posted: Sequence[Posted]) -> list[Posted]:
    return [p for p in posted if p.status != 201 or p.task_id is None]


def require_201(posted: Sequence[Posted], what: str) -> None:
    bad = refused(posted)
    if bad:
        statuses = Counter(p.status for p in bad)
        raise RunInvalid(f"{what}: {len(bad)} reports not answered 201 {dict(statuses)}: {bad[0]}")


def responder_args(
    database: Path, config: Path, *, background: bool = True, runtime: str | None = None
) -> list[str]:
    args = ["responder", "--database", f"sqlite:///{database}", "--config", str(config)]
    if runtime is not None:  # the default otherwise (and code from before issue 15)
        args += ["--runtime", runtime]
    return args + ["--background"] if background else args


# --- 1. report -> card latency --------------------------------------------------------------


@dataclass
class LatencyResult:
    rate_per_s: float
    seconds: float
    reports: int
    warmup_reports: int
    officers_installed: int
    conversations_with_cards: int
    most_cards_per_conversation_per_s: float  # sustained, over the timed phase
    p50_ms: float
    p99_ms: float
    max_ms: float
    cards_before_201: int  # cards that arrived before the client had read the 201
    limits: LimitCheck


async def measure_latency(
    tmp: Path, *, rate: float, seconds: float, warmup_seconds: float, seed: int
) -> LatencyResult:
    council = write_council(tmp, extra_officers_per_team=15)
    warmup_count, count = round(rate * warmup_seconds), round(rate * seconds)
    types = weighted_types(council, QUEUE_SHARE)
    bodies = report_bodies(council, warmup_count + count, types, seed, "latency")
    async with (
        server_process(["connector"]) as connector,
        server_process(responder_args(tmp / "latency.db", council.path)) as responder,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
    ):
        log = ConnectorLog(session, connector)
        officers = [council.users[o] for o in council.officers]
        await install_all(session, responder, officers, log.service_url)
        url = f"{responder.base}/api/tasks"

        warm = await post_steadily(session, url, bodies[:warmup_count], rate)
        require_201(warm, "warm-up")
        warm_ids = {p.task_id for p in warm}
        if not await log.wait_for(lambda: warm_ids <= first_cards(log.arrivals).keys(), 30):
            raise RunInvalid("warm-up: not every task's card reached the connector in 30 s")

        timed_from = len(log.arrivals)
        started = time.monotonic()
        posted = await post_steadily(session, url, bodies[warmup_count:], rate)
        elapsed = time.monotonic() - started
        require_201(posted, "latency")
        wanted = {p.task_id for p in posted}
        if not await log.wait_for(lambda: wanted <= first_cards(log.arrivals).keys(), 30):
            missing = wanted - first_cards(log.arrivals).keys()
            raise RunInvalid(f"latency: {len(missing)} tasks got no card within 30 s")

    arrivals = log.arrivals[timed_from:]
    first = first_cards(arrivals)
    latencies = [first[p.task_id] - p.answered_at for p in posted if p.task_id is not None]
    cards_per_conversation = Counter(a.conversation for a in arrivals if a.card)
    return LatencyResult(
        rate_per_s=rate,
        seconds=round(elapsed, 2),
        reports=len(posted),
        warmup_reports=len(warm),
        officers_installed=len(officers),
        conversations_with_cards=len(cards_per_conversation),
        most_cards_per_conversation_per_s=round(
            max(cards_per_conversation.values(), default=0) / elapsed, 2
        ),
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        max_ms=round(max(latencies) * 1000, 2),
        cards_before_201=sum(1 for v in latencies if v < 0),
        limits=check_limits(arrivals),
    )


# --- 2. cards per second at 100 ms connector latency ------------------------------------------


@dataclass
class ThroughputResult:
    connector_latency_ms: float
    backlog: int
    live: bool  # reports were posted while the dispatcher delivered
    officers_installed: int
    intake_seconds: float  # posting the whole backlog
    cards: int
    steady_cards_per_s: float  # see steady_rate()
    overall_cards_per_s: float  # first card to last
    cards_while_posting: int
    most_cards_in_100ms: int  # how bursty delivery is (an even 50/s would be 5)
    limits: LimitCheck


async def measure_throughput(
    tmp: Path, *, backlog: int, latency: float, seed: int, live: bool
) -> ThroughputResult:
    """Officers installed and the backlog posted with the dispatcher off; then Responder is
    restarted on the same database with it on, and delivers the backlog with nothing else
    running. ``live``: one server, the dispatcher delivering while the backlog is posted."""
    council = write_council(tmp, extra_officers_per_team=50)
    bodies = report_bodies(council, backlog, council.direct_types, seed, "throughput")
    database = tmp / "throughput.db"
    async with (
        server_process(["connector", "--latency", str(latency)]) as connector,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
    ):
        log = ConnectorLog(session, connector)
        officers = [council.users[o] for o in council.direct_officers]
        wanted: set[int] = set()

        async def delivered() -> None:
            timeout = backlog / 40 + 60
            if not await log.wait_for(
                lambda: wanted <= first_cards(log.arrivals).keys(), timeout, poll=1.0
            ):
                missing = wanted - first_cards(log.arrivals).keys()
                raise RunInvalid(
                    f"throughput: {len(missing)} cards not delivered in {timeout:.0f} s"
                )

        args = responder_args(database, council.path, background=live)
        async with server_process(args) as responder:
            await install_all(session, responder, officers, log.service_url)
            await asyncio.sleep(1.5)  # the welcome replies leave the per-bot window
            await log.fetch()
            from_index = len(log.arrivals)
            started = time.monotonic()
            posted = await post_all(session, f"{responder.base}/api/tasks", bodies, concurrency=20)
            posted_at = time.monotonic()
            require_201(posted, "throughput")
            wanted = {p.task_id for p in posted if p.task_id is not None}
            if live:
                await delivered()
        if not live:
            async with server_process(responder_args(database, council.path)):
                await delivered()

    arrivals = log.arrivals[from_index:]
    cards = sorted(a.at for a in arrivals if a.card and set(a.task_ids) & wanted)
    overall = (len(cards) - 1) / (cards[-1] - cards[0]) if cards[-1] > cards[0] else 0.0
    return ThroughputResult(
        connector_latency_ms=latency * 1000,
        backlog=backlog,
        live=live,
        officers_installed=len(officers),
        intake_seconds=round(posted_at - started, 2),
        cards=len(cards),
        steady_cards_per_s=round(steady_rate(cards), 2),
        overall_cards_per_s=round(overall, 2),
        cards_while_posting=sum(1 for t in cards if t <= posted_at),
        most_cards_in_100ms=most_in_window(cards, 0.1),
        limits=check_limits(arrivals),
    )


def steady_rate(times: Sequence[float]) -> float:
    """Arrivals per second in steady state: the least-squares slope of the arrival count
    against time over the middle 80% of arrivals. The pacer lets cards out in bursts (up
    to 50 at once, then a pause), so a plain count / span between two arrivals misses one
    pause and overstates the rate on a short run; the slope does not."""
    ordered = sorted(times)
    middle = ordered[int(len(ordered) * 0.1) : int(len(ordered) * 0.9) + 1]
    if len(middle) < 2 or middle[-1] == middle[0]:
        return 0.0
    return statistics.linear_regression(middle, list(range(len(middle)))).slope


# --- 3. CPU per bot turn ----------------------------------------------------------------------


@dataclass
class TurnsResult:
    bot: str  # "responder" or "echo"
    runtime: str  # the Teams SDK: "agents" or "botbuilder"
    who: str
    turns: int
    cpu_ms_per_turn: float
    p50_ms: float
    p99_ms: float
    replies: int  # activities that reached the connector during the timed turns
    tasks_in_reply: int | None = None  # distinct task ids on the last reply card


async def run_turns(
    session: aiohttp.ClientSession,
    bot: Server,
    log: ConnectorLog,
    activity_for: Callable[[], dict],
    *,
    bot_name: str,
    runtime: str,
    who: str,
    turns: int,
    warmup: int,
) -> TurnsResult:
    """``warmup`` and then ``turns`` message turns, one after another (each waits for the
    bot's answer, and the bot replies through the connector before answering)."""
    for _ in range(warmup):
        await send_activity(session, bot, activity_for())
    await log.fetch()
    from_index = len(log.arrivals)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    cpu_before = bot.cpu_seconds()
    for _ in range(turns):
        started = time.perf_counter()
        statuses[await send_activity(session, bot, activity_for())] += 1
        latencies.append(time.perf_counter() - started)
    cpu_after = bot.cpu_seconds()
    if set(statuses) - {200, 201, 202}:  # the Agents SDK answers a message 202
        raise RunInvalid(f"{bot_name} turns ({who}): answers {dict(statuses)}")
    await log.wait_for(lambda: len(log.arrivals) - from_index >= turns, 10)
    replies = log.arrivals[from_index:]
    if len(replies) < turns:
        raise RunInvalid(f"{bot_name} turns ({who}): {len(replies)} replies for {turns} turns")
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    last_card = next((a for a in reversed(replies) if a.card), None)
    return TurnsResult(
        bot=bot_name,
        runtime=runtime,
        who=who,
        turns=turns,
        cpu_ms_per_turn=float("nan") if cpu is None else round(cpu / turns * 1000, 3),
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        replies=len(replies),
        tasks_in_reply=len(last_card.task_ids) if last_card else None,
    )


async def give_open_tasks(
    session: aiohttp.ClientSession,
    responder: Server,
    log: ConnectorLog,
    council: BenchCouncil,
    person_id: str,
    count: int,
    seed: int,
) -> int:
    """Report tasks until ``person_id`` holds ``count`` of them; wait for their cards."""
    bodies = report_bodies(council, count * 12, council.direct_types, seed, "turns")
    held: set[int] = set()
    url = f"{responder.base}/api/tasks"
    for body in bodies:
        async with session.post(url, data=body, headers=INTAKE_HEADERS) as response:
            task = await response.json()
            if response.status != 201:
                raise RunInvalid(f"turns: a report answered {response.status}: {task}")
        if task.get("assignee") == person_id:
            held.add(task["id"])
            if len(held) == count:
                break
    conversation = council.users[person_id].conversation
    if not await log.wait_for(
        lambda: (
            held <= first_cards(a for a in log.arrivals if a.conversation == conversation).keys()
        ),
        30,
    ):
        raise RunInvalid(f"turns: {person_id}'s task cards did not all arrive")
    return len(held)


RUNTIMES = ("agents", "botbuilder")


async def measure_turns(
    tmp: Path, *, turns: int, warmup: int, seed: int, runtimes: Sequence[str] = RUNTIMES
) -> list[TurnsResult]:
    """For each Teams runtime: Responder's 'my tasks' turns, then the same SDK's echo bot."""
    council = write_council(tmp, extra_officers_per_team=0)  # the example council as it is
    officer, councillor = council.users["bob"], council.users["cllr-hughes"]
    results: list[TurnsResult] = []
    async with (
        server_process(["connector"]) as connector,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
    ):
        log = ConnectorLog(session, connector)
        url = log.service_url
        for runtime in runtimes:
            database = tmp / f"turns-{runtime}.db"
            args = responder_args(database, council.path, runtime=runtime)
            async with server_process(args) as responder:
                users = [council.users[o] for o in council.officers] + [councillor]
                await install_all(session, responder, users, url)
                # carol (bob's team-mate) goes off duty, so bob gets the team's tasks.
                status = await send_activity(
                    session, responder, message(council.users["carol"], "off duty", url)
                )
                if status != 200:
                    raise RunInvalid(f"turns: 'off duty' answered {status}")
                held = await give_open_tasks(session, responder, log, council, "bob", 10, seed)
                print(f"  {runtime}: bob holds {held} open tasks", flush=True)
                await asyncio.sleep(1.5)  # let the dispatcher go idle
                for who, user in (("officer bob", officer), ("councillor cllr-hughes", councillor)):
                    results.append(
                        await run_turns(
                            session,
                            responder,
                            log,
                            lambda user=user: message(user, "my tasks", url),
                            bot_name="responder",
                            runtime=runtime,
                            who=who,
                            turns=turns,
                            warmup=warmup,
                        )
                    )
            async with server_process(["echo", "--runtime", runtime]) as echo:
                results.append(
                    await run_turns(
                        session,
                        echo,
                        log,
                        lambda: message(officer, "my tasks", url),
                        bot_name="echo",
                        runtime=runtime,
                        who="officer bob",
                        turns=turns,
                        warmup=warmup,
                    )
                )
        # The floor: a bot with no SDK, no token check and no database (bench.server).
        async with server_process(["bare-bot"]) as bare:
            results.append(
                await run_turns(
                    session,
                    bare,
                    log,
                    lambda: message(officer, "my tasks", url),
                    bot_name="bare",
                    runtime="none",
                    who="officer bob",
                    turns=turns,
                    warmup=warmup,
                )
            )
    return results


# --- report -----------------------------------------------------------------------------------


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    latency: LatencyResult | None = None
    throughput: ThroughputResult | None = None
    turns: list[TurnsResult] = field(default_factory=list)

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)


def latency_figures(r: LatencyResult) -> list[Figure]:
    where = f"{r.rate_per_s:g} reports/s, {r.conversations_with_cards} conversations"
    return [
        Figure(
            f"report -> card p50 ({where})",
            f"<= {GOAL_P50_MS:g} ms",
            "-",
            f"{r.p50_ms:.1f} ms",
            r.p50_ms <= GOAL_P50_MS,
        ),
        Figure(
            "report -> card p99",
            f"<= {GOAL_P99_MS:g} ms",
            "-",
            f"{r.p99_ms:.1f} ms",
            r.p99_ms <= GOAL_P99_MS,
        ),
        Figure("Teams limit breaches (latency run)", "0", "-", str(r.limits.total), None),
    ]


def throughput_figures(r: ThroughputResult) -> list[Figure]:
    return [
        Figure(
            f"cards/s, connector latency {r.connector_latency_ms:g} ms ({r.cards} cards, "
            f"{r.limits.conversations} conversations)",
            f">= {GOAL_CARDS_PER_S:g}/s",
            "ceiling 50/s (Teams, per bot)",
            f"{r.steady_cards_per_s:.1f}/s",
            r.steady_cards_per_s >= GOAL_CARDS_PER_S,
        ),
        Figure(
            "Teams limit breaches (throughput run)",
            "0",
            "-",
            str(r.limits.total),
            r.limits.total == 0,
        ),
    ]


def turn_figures(results: Sequence[TurnsResult]) -> list[Figure]:
    """Each runtime's turns beside the echo bot of the same SDK, measured in the same run."""
    figures: list[Figure] = []
    bare = next((r for r in results if r.bot == "bare"), None)
    for r in results:
        if r.bot != "responder":
            continue
        echo = next(e for e in results if e.bot == "echo" and e.runtime == r.runtime)
        ratio = r.cpu_ms_per_turn / echo.cpu_ms_per_turn if echo.cpu_ms_per_turn else float("nan")
        figures += [
            Figure(
                f"server CPU per turn ({r.runtime}), {r.who} 'my tasks'",
                f"ours/echo <= {GOAL_TURN_RATIO:g}",
                f"{r.runtime} echo {echo.cpu_ms_per_turn:.2f} ms",
                f"{r.cpu_ms_per_turn:.2f} ms (x{ratio:.2f} echo)",
                ratio <= GOAL_TURN_RATIO,
            ),
            Figure(
                f"turn latency p50/p99 ({r.runtime}), {r.who}",
                "info",
                f"echo {echo.p50_ms:.1f}/{echo.p99_ms:.1f} ms",
                f"{r.p50_ms:.1f}/{r.p99_ms:.1f} ms",
                None,
            ),
        ]
    if bare is not None:
        figures.append(
            Figure(
                "floor: CPU per turn of a bare aiohttp bot (no SDK, no database)",
                "info",
                "-",
                f"{bare.cpu_ms_per_turn:.2f} ms",
                None,
            )
        )
    return figures


def print_report(report: Report) -> None:
    rows = [("figure", "goal", "baseline", "value", "")]
    rows += [(f.name, f.goal, f.baseline, f.value, f.verdict) for f in report.figures]
    print_rows(rows)
    if report.latency:
        r = report.latency
        print(
            f"\nlatency: {r.reports} reports in {r.seconds:.1f} s to {r.officers_installed} "
            f"installed officers; cards went to {r.conversations_with_cards} conversations, "
            f"at most {r.most_cards_per_conversation_per_s:.2f} cards/s to one; max "
            f"{r.max_ms:.1f} ms; {r.cards_before_201} cards arrived before their 201 was read"
        )
    if report.throughput:
        r = report.throughput
        lim = r.limits
        posting = (
            f"{r.cards_while_posting} cards meanwhile"
            if r.live
            else "dispatcher off, then a restart to deliver them"
        )
        print(
            f"throughput: {r.backlog} reports posted in {r.intake_seconds:.1f} s "
            f"({posting}); first to last card "
            f"{r.overall_cards_per_s:.1f}/s; busiest second {lim.most_per_bot_1s} requests, "
            f"busiest 100 ms {r.most_cards_in_100ms} cards; "
            f"busiest conversation {lim.most_per_conversation_1s} in 1 s and "
            f"{lim.most_per_conversation_30s} in 30 s; breaches per conversation "
            f"{lim.breaches_per_conversation}, per bot {lim.breaches_per_bot}"
        )
    for t in report.turns:
        extra = f", {t.tasks_in_reply} tasks on the reply card" if t.tasks_in_reply else ""
        print(
            f"turns: {t.bot} on {t.runtime} ({t.who}): {t.turns} turns, "
            f"{t.cpu_ms_per_turn:.2f} ms CPU each, "
            f"p50 {t.p50_ms:.1f} ms, p99 {t.p99_ms:.1f} ms{extra}"
        )


# --- the rest of the machine ---------------------------------------------------------------

OTHERS_NOTE_SHARE = 0.05  # above this share of the machine, a part's figures get a note


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and of its children that have been waited for (the
    servers of a part, once it is over)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class OtherLoad:
    """CPU the rest of the machine used while a part ran: on a small machine another job
    (a test suite, another benchmark) takes CPU from the servers and skews the figures."""

    seconds: float
    other_cpu_s: float
    other_share: float  # of all the machine's CPUs over the part (0.5: one of two CPUs)


class OtherLoadMeter:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy = machine_busy_seconds()
        self.own = own_seconds()

    def stop(self) -> OtherLoad:
        wall = time.monotonic() - self.started
        other = max(0.0, (machine_busy_seconds() - self.busy) - (own_seconds() - self.own))
        share = other / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0
        return OtherLoad(round(wall, 1), round(other, 2), round(share, 3))


# --- main -------------------------------------------------------------------------------------

PARTS = ("latency", "throughput", "turns")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.teams", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="15 s of reports, a backlog of 600, 500 turns"
    )
    p.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    p.add_argument("--rate", type=float, default=20.0, help="latency: reports per second")
    p.add_argument(
        "--seconds", type=float, help="latency: seconds of reports (default 60, quick 15)"
    )
    p.add_argument("--backlog", type=int, help="throughput: reports (default 3000, quick 600)")
    p.add_argument(
        "--connector-latency", type=float, default=0.1, help="throughput: seconds per call"
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="throughput: post the backlog while the dispatcher delivers (one server)",
    )
    p.add_argument("--turns", type=int, default=500, help="turns: timed turns per bot")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated reports")
    p.add_argument("--output", type=Path, default=RESULTS / "teams.json")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    parts = args.only or list(PARTS)
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    backlog = args.backlog or (600 if args.quick else 3000)
    report = Report()
    invalid: list[str] = []
    others: dict[str, OtherLoad] = {}
    with tempfile.TemporaryDirectory(prefix="responder-bench-teams-") as tmp:
        for part in parts:
            directory = Path(tmp) / part
            directory.mkdir()
            meter = OtherLoadMeter()
            try:
                if part == "latency":
                    print(f"latency: {args.rate:g} reports/s for {seconds:g} s ...", flush=True)
                    report.latency = await measure_latency(
                        directory, rate=args.rate, seconds=seconds, warmup_seconds=2, seed=args.seed
                    )
                    report.add(*latency_figures(report.latency))
                elif part == "throughput":
                    print(f"throughput: a backlog of {backlog} reports ...", flush=True)
                    report.throughput = await measure_throughput(
                        directory,
                        backlog=backlog,
                        latency=args.connector_latency,
                        seed=args.seed,
                        live=args.live,
                    )
                    report.add(*throughput_figures(report.throughput))
                else:
                    print(f"turns: {args.turns} 'my tasks' turns per bot ...", flush=True)
                    report.turns = await measure_turns(
                        directory, turns=args.turns, warmup=50, seed=args.seed
                    )
                    report.add(*turn_figures(report.turns))
            except (RunInvalid, ServerStartError) as exc:
                print(f"  {part}: RUN INVALID: {exc}", flush=True)
                invalid.append(f"{part}: {exc}")
            others[part] = meter.stop()

    print()
    print_report(report)
    for part, load in others.items():
        if load.other_share > OTHERS_NOTE_SHARE:
            print(
                f"note: other processes used {load.other_share:.0%} of the machine's CPUs "
                f"during {part} ({load.other_cpu_s:.1f} CPU s in {load.seconds:.0f} s): its "
                "figures are skewed; run it again on a quiet machine"
            )
    goals = {f.name: f.met for f in report.figures if f.met is not None}
    output = {
        "benchmark": "teams",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "parts": parts,
            "quick": args.quick,
            "rate": args.rate,
            "seconds": seconds,
            "backlog": backlog,
            "connector_latency_s": args.connector_latency,
            "live": args.live,
            "turns": args.turns,
            "seed": args.seed,
        },
        "other_load": {part: asdict(load) for part, load in others.items()},
        "figures": [asdict(f) | {"verdict": f.verdict} for f in report.figures],
        "latency": asdict(report.latency) if report.latency else None,
        "throughput": asdict(report.throughput) if report.throughput else None,
        "turns": [asdict(t) for t in report.turns],
        "goals": goals,
        "invalid": invalid,
        "valid": not invalid,
    }
    return finish(args.output, output, goals, invalid)


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
