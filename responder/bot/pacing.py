"""Pacing sends inside Teams' limits, which are hard: past them Teams answers 429.

Per conversation: 7 messages a second, 8 in 2 s, 60 in 30 s, 1,800 an hour; per bot and
tenant: 50 requests a second. Teams counts on arrival, and arrival times wobble by a few
tens of milliseconds (more during a garbage-collection pause), so each window is
widened by a margin: a quarter second per conversation, where bursts are rare anyway
(the 60-in-30-s rule caps the sustained rate at 2/s), 40 ms for the per-bot rate.
A 429's Retry-After pauses that conversation. (The ``limits`` package only offers
whole-second windows, which cannot carry that margin; this is the few lines it would
have replaced.)

Two steps per send:

1. **Schedule.** The bot's sends take evenly spaced slots (48 a second), each reserved
   the moment it is asked for. A sender woken late by the event loop does not push the
   later slots back, so the rate holds however the loop jitters. (Checking the per-bot
   window at reservation time instead reserved slots just in time, and every late
   wake-up then cost the schedule its lateness: about 1 % of the rate.)
2. **Limits.** At its slot, the send is checked against every window using the times
   sends really left, and recorded at once. If sends were bunched (a stall let several
   slots pass at once), this is what spreads them out again: the schedule sets the
   pace, the windows are the guarantee.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence

Rate = tuple[int, float]  # at most <count> requests in any <seconds>

PER_CONVERSATION: tuple[Rate, ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
PER_BOT: tuple[Rate, ...] = ((50, 1.0),)
# Sends from the bot are also spaced evenly: a burst of 50 at once reaches Teams spread
# over the time it takes to absorb it, and can then overlap the next second's burst.
# 48/s with the 40 ms margin: 50 sends span 1.021 s, so the 51st never meets a full window.
BOT_SPACING = 1 / 48
# The shortest wait: a window that frees up in 1e-13 s (float rounding) must not spin.
MIN_WAIT = 0.001


class SlidingWindows:
    """Timestamps of past requests per key; answers how long until one more fits."""

    def __init__(self, rates: Sequence[Rate], margin: float) -> None:
        self.rates = tuple(rates)
        self.margin = margin
        self._longest = max(seconds for _, seconds in self.rates) + margin
        self._sent: dict[str, list[float]] = {}

    def wait_needed(self, key: str, now: float) -> float:
        times = self._sent.get(key)
        if not times:
            return 0.0
        del times[: bisect_left(times, now - self._longest)]  # forget what no window sees
        if not times:
            del self._sent[key]  # no growth per conversation ever seen
            return 0.0
        wait = 0.0
        for count, seconds in self.rates:
            window = seconds + self.margin
            inside = len(times) - bisect_left(times, now - window)
            if inside >= count:
                # Wait until the oldest request that blocks us leaves the window.
                oldest_blocking = times[len(times) - count]
                wait = max(wait, oldest_blocking + window - now)
        return wait

    def record(self, key: str, now: float) -> None:
        self._sent.setdefault(key, []).append(now)


class TeamsPacer:
    def __init__(
        self,
        per_conversation: Sequence[Rate] = PER_CONVERSATION,
        per_bot: Sequence[Rate] = PER_BOT,
        *,
        conversation_margin: float = 0.25,
        bot_margin: float = 0.04,
        spacing: float = BOT_SPACING,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._conversations = SlidingWindows(per_conversation, conversation_margin)
        self._bot = SlidingWindows(per_bot, bot_margin)
        self._spacing = spacing
        self._next_slot = 0.0  # the earliest clock time the next bot request may leave
        self._paused: dict[str, float] = {}  # conversation -> clock time it may resume
        self._clock = clock
        self._sleep = sleep

    def pause(self, conversation_id: str, seconds: float) -> None:
        until = self._clock() + seconds
        self._paused[conversation_id] = max(until, self._paused.get(conversation_id, 0.0))

    def _conversation_wait(self, conversation_id: str, now: float) -> float:
        paused_for = self._paused.get(conversation_id, now) - now
        if paused_for <= 0:
            self._paused.pop(conversation_id, None)  # over: no growth per conversation
        return max(paused_for, self._conversations.wait_needed(conversation_id, now))

    async def acquire(self, conversation_id: str) -> None:
        """Wait until one more request to this conversation stays inside every limit.

        The caller sends as soon as this returns: the send is recorded as leaving now.
        """
        # The conversation first, so a bot slot is not taken by a send that must wait.
        while (wait := self._conversation_wait(conversation_id, self._clock())) > 0:
            await self._sleep(max(wait, MIN_WAIT))
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._spacing
        if slot > now:
            await self._sleep(slot - now)
        while True:
            now = self._clock()
            wait = max(
                self._conversation_wait(conversation_id, now),
                self._bot.wait_needed("bot", now),
            )
            if wait <= 0:
                self._conversations.record(conversation_id, now)
                self._bot.record("bot", now)
                return
            await self._sleep(max(wait, MIN_WAIT))
