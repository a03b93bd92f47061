"""Delivering the contact events to the webhooks: a task of the daemon's, outside every call.

Each round claims the heads of the (webhook, case) lines that are due (hotline.store.webhooks:
FOR UPDATE SKIP LOCKED under a lease, so several daemons never post the same delivery at once)
and POSTs them at once, one per line: a case's events reach a URL in their order, and a URL that
fails holds back only that case's later events. A 2xx answer is delivered; anything else (an
HTTP error status, a redirect, a refused connection, no answer within `timeout_s`) is tried
again after an exponential backoff (retry_first_s, doubling, at most retry_max_s), up to
`attempts` tries, then recorded as failed (`hotline webhook list` shows it) and the line goes on.

The retry state lives in the rows (attempts, next_try_at), not in a tenacity loop: a restart or
a second daemon picks a backoff up where it was, and no task sleeps holding a delivery. A daemon
killed between a receiver's 2xx and the row's update leaves a lease that runs out: the event is
posted again, with the same X-Hotline-Event-Id for the receiver to drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import aiohttp
import psycopg
from psycopg_pool import AsyncConnectionPool

from hotline.cancellation import cancel_and_wait, raise_if_cancelled
from hotline.config import DeliveryTiming
from hotline.store import webhooks
from hotline.store.contact_events import body
from hotline.store.db import STORE_DOWN
from hotline.store.webhooks import Delivery
from hotline.webhook_signing import headers

log = logging.getLogger(__name__)

# How long a stop waits for a connection to give its claims back before leaving them to their lease.
RELEASE_WAIT_S = 2.0


def retry_in(attempts_done: int, timing: DeliveryTiming) -> float | None:
    """Seconds until the next try after `attempts_done` failed tries; None: give up."""
    if attempts_done >= timing.attempts:
        return None
    return float(min(timing.retry_max_s, timing.retry_first_s * 2 ** (attempts_done - 1)))


class WebhookDeliverer:
    def __init__(self, pool: AsyncConnectionPool, timing: DeliveryTiming | None = None) -> None:
        self.pool = pool
        self.timing = timing or DeliveryTiming()
        self.run_id = f"webhooks-{uuid.uuid4()}"
        self._http: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._posting = False  # a round's POSTs are in flight: a stop lets them finish
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="webhook-deliverer")

    async def run(self) -> None:
        while not self._stopping.is_set():
            raise_if_cancelled()
            try:
                served = await self.round()
            except (*STORE_DOWN, TimeoutError) as exc:
                raise_if_cancelled()
                log.warning("webhooks: database away (%s); trying again", exc)
                served = 0
            except psycopg.Error as exc:  # a bug or a refused statement: said, and tried again
                log.error("webhooks: a delivery round failed: %s", exc)
                served = 0
            if served == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.timing.poll_s)

    async def round(self) -> int:
        """Claim what is due and post it; how many deliveries were tried."""
        async with self.pool.connection() as conn:
            claimed = await webhooks.claim(conn, self.run_id, lease_s=self.timing.lease_s,
                                           limit=self.timing.batch)
        self._posting = True
        try:
            await asyncio.gather(*(self._deliver(d) for d in claimed))
        finally:
            self._posting = False
        return len(claimed)

    async def close(self) -> None:
        """Stop after the round in flight (its POSTs answered and recorded: a stop delivers
        nothing twice), then give back any claim still held, so the next daemon need not wait
        for a lease to run out. Idempotent."""
        self._stopping.set()
        if self._task is not None:
            if not self._posting:  # waiting for the database or the next poll: nothing to finish
                self._task.cancel()
            await asyncio.wait({self._task}, timeout=self.timing.timeout_s + 5)
            await cancel_and_wait(self._task)
            self._task = None
            # With the database away the stop does not wait for it: the claims' lease runs out.
            with contextlib.suppress(*STORE_DOWN):
                async with self.pool.connection(timeout=RELEASE_WAIT_S) as conn:
                    await webhooks.release(conn, self.run_id)
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _deliver(self, delivery: Delivery) -> None:
        error = await self._post(delivery)
        async with self.pool.connection() as conn:
            if error is None:
                if not await webhooks.delivered(conn, delivery, self.run_id):
                    log.warning("webhook %s: event %d delivered after this daemon's claim ran out",
                                delivery.webhook, delivery.event.id)
                return
            retry = retry_in(delivery.attempts + 1, self.timing)
            await webhooks.not_delivered(conn, delivery, self.run_id, error, retry_in_s=retry)
        if retry is None:
            log.error("webhook %s: event %d (case %d) given up after %d tries: %s", delivery.webhook,
                      delivery.event.id, delivery.event.case_id, delivery.attempts + 1, error)
        else:
            log.warning("webhook %s: event %d not delivered (%s); again in %.1f s", delivery.webhook,
                        delivery.event.id, error, retry)

    async def _post(self, delivery: Delivery) -> str | None:
        """POST the event signed; None when the receiver took it (2xx), else what went wrong."""
        payload = body(delivery.event)
        signed = headers(delivery.secret, delivery.event.id, int(time.time()), payload)
        try:
            async with self._session().post(delivery.url, data=payload, headers=signed,
                                             allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status} {response.reason or ''}".strip()
        except TimeoutError:
            return f"no answer within {self.timing.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timing.timeout_s))
        return self._http
