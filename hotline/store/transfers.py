"""Rows of `transfers` (migration 019) as the CLI reads them: the outcome of the transfer it
asked for, written by the daemon that runs the call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psycopg import AsyncConnection

POLL_S = 0.1
TRANSFER_PATIENCE_S = 10.0  # how long the CLI or a page waits for the daemon's word on a transfer


@dataclass(frozen=True)
class TransferOutcome:
    outcome: str  # transferred | refused | consulting | cancelled | unanswered
    detail: str
    target: str


async def transfer_outcome(conn: AsyncConnection, request: str, within_s: float) -> TransferOutcome | None:
    """The outcome of transfer `request` once its row is written, or None after `within_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        cur = await conn.execute("SELECT outcome, detail, target FROM transfers WHERE request = %s",
                                 (request,))
        row = await cur.fetchone()
        if row is not None:
            return TransferOutcome(str(row[0]), str(row[1]), str(row[2]))
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(POLL_S)
