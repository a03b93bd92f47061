"""Keeping the contact-event outbox bounded: a task of the daemon's, outside every call.

Once an hour (and a minute after the start) it deletes the events older than `event_retention`
days that no webhook has still to deliver (hotline.store.contact_events.prune), in batches, each
its own short transaction. Several daemons may prune at once: they delete disjoint or already
deleted rows, nothing else. A database away is said once per pass and tried at the next.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from psycopg_pool import AsyncConnectionPool

from hotline.cancellation import cancel_and_wait, raise_if_cancelled
from hotline.store import contact_events
from hotline.store.db import STORE_DOWN

log = logging.getLogger(__name__)

FIRST_PASS_S = 60.0
EVERY_S = 3600.0
BATCH_PAUSE_S = 0.5  # between batches: a large backlog never holds the shared pool for long


class EventPruner:
    def __init__(self, pool: AsyncConnectionPool, retention_days: int, *, first_s: float = FIRST_PASS_S,
                 every_s: float = EVERY_S) -> None:
        self.pool = pool
        self.retention_days = retention_days
        self.first_s = first_s
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="event-pruner")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def run(self) -> None:
        await asyncio.sleep(self.first_s)
        while True:
            raise_if_cancelled()
            try:
                await self.prune_once()
            except (*STORE_DOWN, TimeoutError) as exc:
                raise_if_cancelled()
                log.warning("events: pruning skipped, database away (%s)", exc)
            except psycopg.Error as exc:
                log.error("events: pruning failed: %s", exc)
            await asyncio.sleep(self.every_s)

    async def prune_once(self) -> contact_events.Pruned:
        """Delete every event past the retention that may go; what was deleted in all."""
        total = contact_events.Pruned(0, 0, 0, 0)
        while True:
            async with self.pool.connection() as conn:  # committed as it goes back to the pool
                batch = await contact_events.prune(conn, self.retention_days)
            total = total.then(batch)
            if batch.events < contact_events.PRUNE_BATCH:
                break
            await asyncio.sleep(BATCH_PAUSE_S)
        if total.events or total.held:
            log.info("events: %d older than %d day(s) deleted with %d deliveries; %d kept, still to be "
                     "delivered", total.events, self.retention_days, total.deliveries, total.held)
        return total
