"""Pacing sends under GOV.UK Notify's rate limit, and pausing them when Notify says 429.

Notify allows 3,000 requests a minute per API key, counted by a token bucket that refills
at 50 a second and holds at most 1,001. Sending a minute's allowance in a burst would
empty that bucket, so requests are spread evenly (one every 60/N seconds, with a burst of
at most one second's worth after a quiet spell) and, as a hard cap, never more than N in
any 60 seconds (a sliding window). A 429 pauses every send until its Retry-After is over.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class NotifyPacer:
    def __init__(
        self,
        per_minute: int,
        *,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self.burst = max(1, per_minute // 60)
        self.margin = margin
        # The times of the last ``per_minute`` sends (kept here rather than borrowing
        # bot.pacing's windows: notify/ stays free of Teams code).
        self._sent: deque[float] = deque(maxlen=per_minute)
        self._clock = clock
        self._next = 0.0  # the earliest clock time the next send is due (GCRA's TAT)
        self._paused_until = 0.0
        # One waiter at a time computes and sleeps; the others queue behind it in order.
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """No send, of any message, for ``seconds`` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())

    def wait_needed(self, now: float) -> float:
        return max(
            self._paused_until - now,
            self._next - (self.burst - 1) * self.interval - now,
            self._window_wait(now),
        )

    def _window_wait(self, now: float) -> float:
        if len(self._sent) < self.per_minute:
            return 0.0
        # Full: the oldest of the last N sends must leave the (widened) minute first.
        return self._sent[0] + 60.0 + self.margin - now

    async def acquire(self, max_wait: float | None = None) -> float:
        """Wait for a slot and take it: 0.0. Or, when that would take longer than
        ``max_wait`` seconds, take nothing and answer how long the wait would be."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self.wait_needed(now)
                if wait <= 0:
                    self._sent.append(now)
                    self._next = max(self._next, now) + self.interval
                    return 0.0
                if max_wait is not None and wait > max_wait:
                    return wait
                await asyncio.sleep(wait)
