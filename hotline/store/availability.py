"""Whether the database is known to answer, shared by every call of one daemon.

A call that opens its hop asks the database at once, within a patience (2 s). When one call found
it away, the next callers must not each spend that patience again, nor each retry on their own:
they are served at once, and their hops go through the write-behind when they end. One probe,
every second or so, finds it back; and any query that succeeds says so too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

PROBE_EVERY_S = 1.0
PROBE_TIMEOUT_S = 2.0


class StoreAvailability:
    def __init__(self, probe: Callable[[], Awaitable[object]], *, probe_every_s: float = PROBE_EVERY_S,
                 probe_timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self._probe = probe  # one cheap query (SELECT 1); raises while the database is away
        self.probe_every_s = probe_every_s
        self.probe_timeout_s = probe_timeout_s
        self._down_since: float | None = None
        self._prober: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self._down_since is None

    def went_down(self, reason: BaseException | str) -> None:
        """A query failed for an outage: later calls stop asking until a probe finds it back."""
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        log.warning("database away (%s): calls are served without it, their records kept until it "
                    "is back", reason)
        self._prober = asyncio.create_task(self._probe_until_back(), name="store-probe")

    def came_back(self) -> None:
        if self._down_since is None:
            return
        log.warning("database back after %.1f s", time.monotonic() - self._down_since)
        self._down_since = None
        if self._prober is not None and self._prober is not asyncio.current_task():
            self._prober.cancel()
        self._prober = None

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
            self._prober = None

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(self.probe_every_s)
            with contextlib.suppress(Exception):  # any failure means: still away
                async with asyncio.timeout(self.probe_timeout_s):
                    await self._probe()
                self.came_back()
                return
