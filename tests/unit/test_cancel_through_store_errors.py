"""A stop reaches a loop that rides out database outages even when psycopg turns the cancellation
into the dead connection's OperationalError (a query cancelled on a connection the server ended)."""

from __future__ import annotations

import asyncio

import psycopg

from hotline.cancellation import cancel_and_wait, raise_if_cancelled
from hotline.store.db import STORE_DOWN


async def outage_riding_loop(attempts: list[int], on_cancel: type[BaseException]) -> None:
    """The daemon's loops' shape: an outage is logged and tried again."""
    while True:
        try:
            attempts.append(1)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise on_cancel("terminating connection due to administrator command") from None
        except STORE_DOWN:
            raise_if_cancelled()
        await asyncio.sleep(0.01)


async def test_a_cancellation_turned_into_an_operational_error_still_stops_the_loop() -> None:
    attempts: list[int] = []
    task = asyncio.create_task(outage_riding_loop(attempts, psycopg.OperationalError))
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert done and task.cancelled()
    assert len(attempts) == 1  # not tried again


async def test_an_outage_without_a_stop_is_ridden_out() -> None:
    async def once() -> str:
        try:
            raise psycopg.OperationalError("connection refused")
        except STORE_DOWN:
            raise_if_cancelled()
            return "tried again"
    assert await once() == "tried again"


async def test_a_cancel_lost_in_wait_for_is_made_again_until_the_task_ends() -> None:
    """Python 3.11's wait_for returns the result when it came in the same turn as the cancel."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    turns: list[str] = []

    async def waits_then_loops() -> None:
        turns.append(await asyncio.wait_for(ready, 10))
        while True:  # a loop that does not check: only a second cancel stops it
            await asyncio.sleep(0.05)

    task = asyncio.create_task(waits_then_loops())
    await asyncio.sleep(0.01)
    ready.set_result("connection")  # handed over, then cancelled before the task runs again
    await cancel_and_wait(task)
    assert task.cancelled()
    assert turns == ["connection"]  # the first cancel was lost: the wait returned its result
