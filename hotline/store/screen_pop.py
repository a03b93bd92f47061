"""What the pages' live views read from the database, on the pages' own pool: a ringing call's
leg (dialled number, hotline, menu keys) and its case's history for the agent's screen pop, and
today's numbers per queue for the wallboard (the statistics' own stats_queue).

The history: when, which agent, which queue, how each leg ended; the notes agents wrote on the
case and the customer's earlier cases are hotline.store.case_notes' (customer_notes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

# Earlier cases of the same customer shown, newest first.
EARLIER_CASES = 5
EARLIER_HOPS = 20

Row = dict[str, Any]


async def ringing_leg(conn: AsyncConnection, hop_id: int) -> Row | None:
    """The leg being offered: its case's customer key, what was dialled, the hotline, the keys."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT h.case_id, h.seq, h.dialled, h.dialled_e164, h.ivr_path AS keys, h.media,"
            "       h.channel_kind, c.customer_key, l.name AS hotline"
            "  FROM hops h JOIN cases c ON c.id = h.case_id"
            "  LEFT JOIN hotlines l ON l.id = h.hotline_id WHERE h.id = %(hop)s", {"hop": hop_id})
        return await cur.fetchone()


async def earlier_hops(conn: AsyncConnection, case_id: int, hop_id: int) -> list[Row]:
    """The case's other legs before this one: when, through which queue, who answered, how it ended."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT h.seq, h.entered_at, h.answered_at, h.ended_at, h.end_reason, h.channel_kind,"
            "       h.media, q.name AS queue, a.name AS agent, a.display_name AS agent_name"
            "  FROM hops h LEFT JOIN queues q ON q.id = h.queue_id LEFT JOIN agents a ON a.id = h.agent_id"
            " WHERE h.case_id = %(case)s AND h.id <> %(hop)s"
            "   AND h.seq < (SELECT seq FROM hops WHERE id = %(hop)s)"
            " ORDER BY h.seq DESC LIMIT %(n)s", {"case": case_id, "hop": hop_id, "n": EARLIER_HOPS})
        return await cur.fetchall()


async def earlier_cases(conn: AsyncConnection, customer_key: str, case_id: int) -> list[Row]:
    """The same customer's earlier cases, newest first: opened, its last agent, its legs, how its
    last leg ended."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT c.id AS case, c.opened_at, c.closed_at, c.status, a.name AS agent,"
            "       a.display_name AS agent_name, x.hops, x.end_reason"
            "  FROM cases c LEFT JOIN agents a ON a.id = c.last_agent_id"
            "  CROSS JOIN LATERAL (SELECT count(*) AS hops,"
            "       (array_agg(h.end_reason ORDER BY h.seq DESC))[1] AS end_reason"
            "       FROM hops h WHERE h.case_id = c.id) x"
            " WHERE c.customer_key = %(key)s AND c.id <> %(case)s AND c.customer_key <> ''"
            " ORDER BY c.opened_at DESC LIMIT %(n)s",
            {"key": customer_key, "case": case_id, "n": EARLIER_CASES})
        return await cur.fetchall()


async def queues_today(conn: AsyncConnection, since: datetime, until: datetime) -> dict[str, Row]:
    """Per queue since `since` (the day's start): answered, abandoned and the service level, as
    `hotline stats queue` counts them."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT queue, offered, answered, abandoned, service_level_pct, sl_threshold_s"
            "  FROM stats_queue(%(since)s, %(until)s)", {"since": since, "until": until})
        return {str(row.pop("queue")): row for row in await cur.fetchall()}
