"""Event-loop lag: how late a short sleep wakes up. A call's events, the write-behind and the web
pages all wait behind whatever holds the loop, so this is the delay every one of them pays."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

INTERVAL_S = 0.1  # one sample every tenth of a second: 600 in the window
WINDOW_S = 60.0


@dataclass(frozen=True)
class LagSummary:
    p99_ms: float
    max_ms: float
    samples: int


class LoopLagMonitor:
    """Sleeps `interval_s` in a loop and keeps each wake-up's overshoot for the last `window_s`."""

    def __init__(self, interval_s: float = INTERVAL_S, window_s: float = WINDOW_S) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()  # (monotonic time, lag in seconds)
        self._task: asyncio.Task[None] | None = None
        # Told every sample too (the metrics' histogram), so none is lost between two scrapes.
        self.on_sample: Callable[[float], None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def add(self, at: float, lag_s: float) -> None:
        """One measurement; those older than the window are forgotten."""
        lag_s = max(lag_s, 0.0)
        self._samples.append((at, lag_s))
        if self.on_sample is not None:
            self.on_sample(lag_s)
        while self._samples and self._samples[0][0] < at - self.window_s:
            self._samples.popleft()

    def summary(self) -> LagSummary:
        lags = sorted(lag for _, lag in self._samples)
        if not lags:
            return LagSummary(0.0, 0.0, 0)
        p99 = lags[min(len(lags) - 1, math.ceil(0.99 * len(lags)) - 1)]
        return LagSummary(round(p99 * 1000, 1), round(lags[-1] * 1000, 1), len(lags))

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval_s)
            woke = time.monotonic()
            self.add(woke, woke - asked - self.interval_s)
