"""How late the event loop runs: the proof that sending never blocks it.

A small task sleeps for ``interval`` again and again and records by how much each sleep
overshot. Anything that holds the loop (a blocking call, a long computation) shows up as
overshoot, whatever the interval, because the monitor is always asleep on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque


class LoopLagMonitor:
    def __init__(self, interval: float = 0.05, keep: int = 2000) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)  # the latest lags, in seconds
        self.max_lag = 0.0
        self.count = 0
        self._epoch = 0  # bumped by reset(): a sleep begun before it is not counted
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="loop-lag-monitor"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def reset(self) -> None:
        """Forget what was seen so far (e.g. before a benchmark's measured run)."""
        self.samples.clear()
        self.max_lag = 0.0
        self.count = 0
        self._epoch += 1

    def percentile(self, share: float) -> float:
        """The lag at ``share`` (0..1) of the samples kept, e.g. 0.99."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    async def _run(self) -> None:
        while True:
            epoch, started = self._epoch, time.perf_counter()
            await asyncio.sleep(self.interval)
            if epoch != self._epoch:
                continue
            lag = max(0.0, time.perf_counter() - started - self.interval)
            self.samples.append(lag)
            self.count += 1
            self.max_lag = max(self.max_lag, lag)
