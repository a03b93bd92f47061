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


@dataclass(frozen=True)
class OpenConsult:
    """An attended transfer whose `consulting` row has no row of its end yet."""

    target: str
    asked_by: str
    from_queue_id: int | None
    from_agent_id: int | None


# A hop's last step of an attended transfer (a refused step is no step of the one under way).
_LAST_CONSULT_STEP = """
SELECT target, asked_by, from_queue_id, from_agent_id, outcome FROM transfers
 WHERE case_id = %s AND hop_id = %s AND kind = 'attended' AND outcome <> 'refused'
 ORDER BY at DESC, id DESC LIMIT 1
"""


async def open_consult(conn: AsyncConnection, case_id: int, hop_id: int) -> OpenConsult | None:
    """The consult hop `hop_id` (of case `case_id`: its index) was in when its daemon stopped,
    or None: none under way."""
    cur = await conn.execute(_LAST_CONSULT_STEP, (case_id, hop_id))
    row = await cur.fetchone()
    if row is None or row[4] != "consulting":
        return None
    return OpenConsult(str(row[0]), str(row[1]), row[2], row[3])


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
