"""Rows of `supervisions` (migration 031): the daemon writes each step of a supervision it took
(hotline.engine.supervision); the CLI that asked reads how it went.

Written at once, not through the write-behind: a supervision is rare, a row per step, and the
CLI waits on it; a write the database refuses is logged by the supervision, which goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

POLL_S = 0.1
OPEN = ("ringing", "supervising")  # the outcomes a supervision has while it runs

_INSERT = """
INSERT INTO supervisions (request, case_id, hop_id, agent_id, supervisor_id, supervisor, mode, asked_by,
                          node, channel_id, outcome, detail)
VALUES (%(request)s, %(case_id)s, %(hop_id)s, %(agent_id)s, %(supervisor_id)s, %(supervisor)s, %(mode)s,
        %(asked_by)s, %(node)s, %(channel_id)s, %(outcome)s, %(detail)s)
ON CONFLICT (request) DO NOTHING
"""


class Supervisions:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def ringing(self, ids: Mapping[str, object], channel_id: str) -> None:
        """The supervisor's phone is rung for the request `ids` describe."""
        await self._insert({**ids, "channel_id": channel_id, "outcome": "ringing", "detail": ""})

    async def refused(self, ids: Mapping[str, object], detail: str) -> None:
        await self._insert({**ids, "channel_id": None, "outcome": "refused", "detail": detail})

    async def started(self, request: str) -> None:
        await self._execute("UPDATE supervisions SET outcome = 'supervising', started_at = now()"
                            " WHERE request = %s AND outcome = 'ringing'", (request,))

    async def ended(self, request: str, outcome: str, detail: str) -> None:
        """`outcome`: ended (it had started) or unanswered."""
        await self._execute("UPDATE supervisions SET outcome = %s, detail = %s, ended_at = now()"
                            " WHERE request = %s AND ended_at IS NULL", (outcome, detail, request))

    async def close_unowned(self, node: str, running: Collection[str]) -> int:
        """Rows of this node left open by a daemon that stopped (its legs hung up since): ended."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE supervisions SET outcome = CASE WHEN outcome = 'ringing' THEN 'unanswered'"
                " ELSE 'ended' END, detail = 'the daemon restarted', ended_at = now()"
                " WHERE node = %s AND ended_at IS NULL AND outcome IN ('ringing', 'supervising')"
                " AND NOT (request = ANY(%s))", (node, list(running)))
            return cur.rowcount

    async def _insert(self, row: Mapping[str, object]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_INSERT, dict(row))

    async def _execute(self, sql: str, params: tuple[object, ...]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(sql, params)


@dataclass(frozen=True)
class SupervisionOutcome:
    outcome: str  # ringing | supervising | ended | unanswered | refused
    detail: str


async def supervision_outcome(conn: AsyncConnection, request: str, within_s: float, *,
                              past: Collection[str] = ()) -> SupervisionOutcome | None:
    """The outcome of supervision `request` once its row says something other than `past`, or
    None after `within_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        cur = await conn.execute("SELECT outcome, detail FROM supervisions WHERE request = %s", (request,))
        row = await cur.fetchone()
        await conn.commit()  # the next look sees what the daemon wrote since
        if row is not None and row[0] not in past:
            return SupervisionOutcome(str(row[0]), str(row[1]))
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(POLL_S)
