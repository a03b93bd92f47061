"""Closing the phone dials nobody watched to their end: a task of the daemon's, outside every call.

A move from video to the customer's phone (hotline.engine.phone_switch) records how the dial
ended when its phone answers or its channel ends. A daemon stopped while the phone rang (SIGTERM,
SIGKILL), or one that never heard of the channel again, leaves that outcome empty; the next
daemon cannot watch the ring (the channel is not in Stasis until answered), and an answer after
the token's expiry could not use it. So once a dial is older than any ring a daemon watches (a
trunk's longest ring_timeout and its grace), its switch is closed `failed`, saying how it ended is
not known: `hotline case show` and the `switch_failed` event tell the truth instead of "ringing"
for ever. Every daemon sweeps; the UPDATE's conditions make that harmless.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from hotline.cancellation import cancel_and_wait, raise_if_cancelled
from hotline.engine.phone_switch import RING_GRACE_S
from hotline.provision.model import TRUNK_RING_TIMEOUT_MAX_S
from hotline.store.db import STORE_DOWN
from hotline.store.switches import Switches

log = logging.getLogger(__name__)

EVERY_S = 60.0
# A dial older than this has no daemon watching its ring (the longest a trunk rings, its grace).
WATCHED_FOR_S = int(TRUNK_RING_TIMEOUT_MAX_S + RING_GRACE_S + 55)


class UnwatchedDials:
    def __init__(self, switches: Switches, *, every_s: float = EVERY_S,
                 watched_for_s: int = WATCHED_FOR_S) -> None:
        self.switches = switches
        self.every_s = every_s
        self.watched_for_s = watched_for_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="unwatched-dials")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def run(self) -> None:
        while True:
            raise_if_cancelled()
            try:
                await self.sweep()
            except (*STORE_DOWN, TimeoutError) as exc:
                raise_if_cancelled()
                log.warning("phone dials: sweep skipped, database away (%s)", exc)
            except psycopg.Error as exc:
                log.error("phone dials: sweep failed: %s", exc)
            await asyncio.sleep(self.every_s)

    async def sweep(self) -> list[int]:
        closed = await self.switches.close_unwatched_dials(self.watched_for_s)
        for switch_id in closed:
            log.info("switch %d: the phone dialled for it was never seen to answer or end; closed failed",
                     switch_id)
        return closed
