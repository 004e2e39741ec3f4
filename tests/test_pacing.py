"""The Teams pacer, in virtual time (looptime): the figures are exact, not timing-dependent.

Sends are driven the way ``TeamsDelivery`` drives them (64 at once, one request in flight
per conversation, each request taking 100 ms) and checked against Teams' own limits, as
Teams counts them, by a checker written out here rather than imported from the pacer.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from bisect import bisect_left
from collections import defaultdict

import looptime
import pytest

from responder.bot.pacing import TeamsPacer

TEAMS_PER_CONVERSATION = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
TEAMS_PER_BOT = ((50, 1.0),)


def breaches(times: list[float], limits: tuple[tuple[int, float], ...]) -> int:
    """Requests that arrived when one of Teams' windows already held its limit."""
    times = sorted(times)
    found = 0
    for i, t in enumerate(times):
        for count, seconds in limits:
            # Requests in (t - seconds, t) before this one: Teams' window ending at t.
            if i - bisect_left(times, t - seconds + 1e-9) >= count:
                found += 1
                break
    return found


def slope(times: list[float]) -> float:
    """Sends per second over the middle 80 % (as bench.teams measures it)."""
    ordered = sorted(times)
    middle = ordered[len(ordered) // 10 : len(ordered) * 9 // 10 + 1]
    return statistics.linear_regression(middle, list(range(len(middle)))).slope


def run(coro):
    loop = looptime.new_event_loop(start=1000.0)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def deliver(
    pacer: TeamsPacer, conversations: list[str], *, concurrency: int = 64, latency: float = 0.1
) -> dict[str, list[float]]:
    """Send one message per entry of ``conversations``; return each one's send times."""
    loop = asyncio.get_running_loop()
    sent: dict[str, list[float]] = defaultdict(list)
    locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    queue = iter(conversations)

    async def worker() -> None:
        for conversation in queue:
            async with locks[conversation]:
                await pacer.acquire(conversation)
                sent[conversation].append(loop.time())
                await asyncio.sleep(latency)  # the request's round trip

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent


def busy_periods(rng: random.Random, share: float, lengths: tuple[float, float]):
    """Random periods, ``share`` of the time in all, when the event loop is busy."""
    periods: list[tuple[float, float]] = []
    t, mean_length = 1000.0, sum(lengths) / 2
    while share and t < 1200.0:
        t += rng.expovariate(share / mean_length)
        length = rng.uniform(*lengths)
        periods.append((t, t + length))
        t += length
    return periods


def sleep_on_busy_loop(busy: list[tuple[float, float]]):
    """asyncio.sleep on an event loop that is busy now and then (a slow callback, a
    garbage collection): a sleep that would end while it is busy ends when it is free, so
    every waiter is late together, as on a real loop."""
    starts = [start for start, _ in busy]

    async def sleep(seconds: float) -> None:
        loop = asyncio.get_running_loop()
        wake = loop.time() + seconds
        i = bisect_left(starts, wake) - 1
        if i >= 0 and wake < busy[i][1]:
            wake = busy[i][1]
        await asyncio.sleep(wake - loop.time())

    return sleep


def pacer_on_loop(**kwargs) -> TeamsPacer:
    return TeamsPacer(clock=asyncio.get_running_loop().time, **kwargs)


@pytest.mark.parametrize(
    ("share", "lengths"),
    [(0.0, (0.0, 0.0)), (0.1, (0.001, 0.005)), (0.1, (0.005, 0.03))],
    ids=["idle-loop", "busy-loop", "stalling-loop"],
)
def test_a_backlog_leaves_at_48_a_second_inside_every_limit(share, lengths):
    rng = random.Random(7)
    conversations = [f"c{rng.randrange(104)}" for _ in range(3000)]

    async def scenario():
        pacer = pacer_on_loop(sleep=sleep_on_busy_loop(busy_periods(rng, share, lengths)))
        return await deliver(pacer, conversations)

    sent = run(scenario())
    every = [t for times in sent.values() for t in times]
    assert len(every) == 3000
    assert breaches(every, TEAMS_PER_BOT) == 0
    assert all(breaches(times, TEAMS_PER_CONVERSATION) == 0 for times in sent.values())
    # The goal is 47.5/s: a busy loop's late wake-ups must not eat into the schedule.
    assert slope(every) >= 47.8, slope(every)


def test_a_stall_is_made_up_without_a_breach():
    """Every sleep ending in a 120 ms window (a long garbage collection) ends after it:
    the sends held up go out together when the window allows, and the rate recovers."""
    stall_from, stall_for = 1010.0, 0.12
    stalled_sleep = sleep_on_busy_loop([(stall_from, stall_from + stall_for)])

    conversations = [f"c{i % 104}" for i in range(1500)]

    async def scenario():
        return await deliver(pacer_on_loop(sleep=stalled_sleep), conversations)

    sent = run(scenario())
    every = sorted(t for times in sent.values() for t in times)
    assert breaches(every, TEAMS_PER_BOT) == 0
    assert not [t for t in every if stall_from < t < stall_from + stall_for]
    # 1,500 sends at 48/s take 31.2 s; the stall costs less than its own length.
    assert every[-1] - every[0] < 1499 / 48 + stall_for


def test_one_conversation_is_held_to_its_own_limits():
    async def scenario():
        return await deliver(pacer_on_loop(), ["only"] * 200, concurrency=8, latency=0.0)

    sent = run(scenario())["only"]
    assert len(sent) == 200
    assert breaches(sent, TEAMS_PER_CONVERSATION) == 0
    # 60 in 30 s (plus the margin) is the binding limit: 200 sends need three windows.
    assert sent[-1] - sent[0] > 3 * 30


def test_a_paused_conversation_waits_and_the_others_go_on():
    async def scenario():
        loop = asyncio.get_running_loop()
        pacer = pacer_on_loop()
        await pacer.acquire("busy")
        paused_at = loop.time()
        pacer.pause("busy", 5.0)  # a 429 with Retry-After: 5
        sent = await deliver(pacer, ["busy", "other", "other"], concurrency=3, latency=0.0)
        return paused_at, sent

    paused_at, sent = run(scenario())
    assert sent["busy"][0] >= paused_at + 5.0
    assert all(t < paused_at + 1.0 for t in sent["other"])
