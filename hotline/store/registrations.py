"""Agents' phones registered at Kamailio (several nodes behind it: README "Several nodes"):
Kamailio's usrloc writes its contacts through to `kamailio.location` (migration 044; expired ones
are deleted by its timer), and a trigger there NOTIFYs `hotline_registrations`. The daemon follows
the set of registered endpoints: a phone registered there is reachable from every node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "hotline_registrations"
REREAD_S = 10.0  # read again this often anyway: a NOTIFY is lost while the connection is


async def registered(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute("SELECT DISTINCT username FROM kamailio.location")
    return {str(row[0]) for row in await cur.fetchall()}


class Registrations:
    """Follows Kamailio's registered endpoints; `on_change(endpoints)` with the whole set, at
    start and after each change."""

    def __init__(self, dsn: str, on_change: Callable[[set[str]], None]) -> None:
        self.dsn = dsn
        self.on_change = on_change
        self.endpoints: set[str] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="registrations")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _follow(self) -> None:
        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.5, max=10), stop=stop_never,
                                           retry=retry_if_exception_type(psycopg.Error)):
            with attempt:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while True:
                        await self._read(conn)
                        await self._next_news(conn)

    async def _read(self, conn: psycopg.AsyncConnection) -> None:
        endpoints = await registered(conn)
        if endpoints != self.endpoints:
            log.info("registered at Kamailio: %d phone(s)", len(endpoints))
            self.endpoints = endpoints
            self.on_change(endpoints)

    @staticmethod
    async def _next_news(conn: psycopg.AsyncConnection) -> None:
        """Until a NOTIFY (several in a burst count as one) or REREAD_S."""
        async for _ in conn.notifies(timeout=REREAD_S, stop_after=1):
            break
