"""Cases and hops: one case per customer contact, one hop per channel leg (plain SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection, errors
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

END_REASONS = frozenset({"completed", "abandoned", "busy", "overflow", "transferred", "switched",
                         "failed", "closed"})
CHANNEL_KINDS = frozenset({"pstn", "sip", "webrtc"})


@dataclass(frozen=True)
class NewHop:
    """What is known of a leg when it enters: enough to open its hop."""

    node: str
    channel_id: str
    channel_name: str
    channel_kind: str
    media: str
    dialled: str
    dialled_e164: str | None
    caller_num: str
    caller_name: str
    entered_at: datetime | None = None


@dataclass(frozen=True)
class Hop:
    id: int
    case_id: int
    seq: int
    node: str
    channel_id: str
    channel_kind: str
    dialled: str
    dialled_e164: str | None
    caller_num: str
    entered_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    hangup_cause: int | None


_HOP_COLUMNS = ("id, case_id, seq, node, channel_id, channel_kind, dialled, dialled_e164, caller_num,"
                " entered_at, ended_at, end_reason, hangup_cause")


class Contacts:
    """Repository of cases and hops over a pool; every write is one short transaction."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def open_case_with_hop(self, hop: NewHop, customer_key: str) -> Hop:
        """A new contact: its case and first hop, together or not at all.

        Idempotent per channel: a retry after a commit whose answer was lost returns the hop the
        first attempt wrote instead of opening a second case.
        """
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO cases (customer_key, opened_at) VALUES (%s, coalesce(%s, now()))"
                    " RETURNING id", (customer_key, hop.entered_at))
                row = await cur.fetchone()
                assert row is not None
                return await _insert_hop(conn, row[0], 1, hop)
        except errors.UniqueViolation:
            existing = await self.hop_by_channel(hop.node, hop.channel_id)
            if existing is None:
                raise
            return existing

    async def close_hop(self, hop_id: int, end_reason: str, *, cause: int | None = None,
                        cause_text: str | None = None) -> bool:
        """End a hop once (a second close is a no-op, returns False); closes the case with its last hop."""
        if end_reason not in END_REASONS:
            raise ValueError(f"end reason {end_reason!r} is not one of {sorted(END_REASONS)}")
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE hops SET ended_at = now(), end_reason = %s, hangup_cause = %s,"
                " hangup_cause_text = %s WHERE id = %s AND ended_at IS NULL RETURNING case_id",
                (end_reason, cause, cause_text, hop_id))
            row = await cur.fetchone()
            if row is None:
                return False
            await conn.execute(
                "UPDATE cases SET status = 'closed', closed_at = now() WHERE id = %s"
                " AND status = 'open' AND NOT EXISTS"
                " (SELECT 1 FROM hops WHERE case_id = %s AND ended_at IS NULL)", (row[0], row[0]))
            return True

    async def open_hops(self, node: str) -> list[Hop]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Hop))
            await cur.execute(f"SELECT {_HOP_COLUMNS} FROM hops WHERE node = %s AND ended_at IS NULL",
                              (node,))
            return await cur.fetchall()

    async def hop_by_channel(self, node: str, channel_id: str) -> Hop | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Hop))
            await cur.execute(f"SELECT {_HOP_COLUMNS} FROM hops WHERE node = %s AND channel_id = %s",
                              (node, channel_id))
            return await cur.fetchone()


async def _insert_hop(conn: AsyncConnection, case_id: int, seq: int, hop: NewHop) -> Hop:
    if hop.channel_kind not in CHANNEL_KINDS:
        raise ValueError(f"channel kind {hop.channel_kind!r} is not one of {sorted(CHANNEL_KINDS)}")
    cur = conn.cursor(row_factory=class_row(Hop))
    await cur.execute(
        "INSERT INTO hops (case_id, seq, node, channel_id, channel_name, channel_kind, media, dialled,"
        " dialled_e164, caller_num, caller_name, entered_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))"
        f" RETURNING {_HOP_COLUMNS}",
        (case_id, seq, hop.node, hop.channel_id, hop.channel_name, hop.channel_kind, hop.media,
         hop.dialled, hop.dialled_e164, hop.caller_num, hop.caller_name, hop.entered_at))
    row = await cur.fetchone()
    assert row is not None
    return row
