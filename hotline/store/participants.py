"""Conference participants: parties an agent brought into a case's bridge (migration 013)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


class Participants:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def joined(self, case_id: int, agent_id: int | None, node: str, channel_id: str,
                     invited_by: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO case_participants (case_id, agent_id, node, channel_id, invited_by)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (node, channel_id) DO NOTHING",
                (case_id, agent_id, node, channel_id, invited_by))

    async def left(self, node: str, channel_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE case_participants SET left_at = now()"
                               " WHERE node = %s AND channel_id = %s AND left_at IS NULL", (node, channel_id))
