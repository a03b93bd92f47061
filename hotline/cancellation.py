"""Stopping a task for sure. A cancellation can be lost on the way in Python 3.11: asyncio.wait_for
returns its result when what it waited for finished in the same loop turn as the cancel (psycopg's
pool waits for a connection that way, and a stop often hands one back just before cancelling),
and psycopg answers the cancel of a query on a connection the server has ended with that
connection's OperationalError, which an outage-riding loop catches. Either way the task's
`cancelling()` count stays up: loops check it, and the stop cancels until the task is done."""

from __future__ import annotations

import asyncio

# Between two cancels of a task that carried on: one turn of any of the daemon's loops.
RECANCEL_EVERY_S = 1.0


def raise_if_cancelled() -> None:
    """CancelledError when the running task was cancelled but carried on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel `task`, again every RECANCEL_EVERY_S while it runs on, until it is done."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_EVERY_S)
    if not task.cancelled():
        task.exception()  # retrieved: a failure of its own was its own to log, not the stop's
