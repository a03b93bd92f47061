"""Cases and hops: one case per customer contact, one hop per channel leg (plain SQL)."""

from __future__ import annotations

from psycopg import AsyncConnection, errors
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from hotline.store.hops import CHANNEL_KINDS, Hop, NewHop
from hotline.store.recordings import OpenRecording, open_recordings
from hotline.store.records import (
    QueueEvent,
    Record,
    close_hop_record,
    queue_event_record,
    write_records,
)
from hotline.store.transfers import OpenConsult, open_consult


class LinesBusy(Exception):  # noqa: N818 - control flow, not an error
    """Control flow, not an error: every line of the dialled number is held by a live leg (the
    call answers busy)."""


_HOP_COLUMNS = ("id, case_id, seq, node, channel_id, channel_kind, dialled, dialled_e164, caller_num,"
                " entered_at, ended_at, end_reason, hangup_cause, number_id, line, hotline_id, queue_id,"
                " agent_id, queued_at, answered_at, media, priority")

# Every write is one statement (a data-modifying CTE here, record_call_events() for what calls
# record), so one round trip on an autocommit connection, atomic all the same: the daemon writes
# several per call, at call-centre rates.

# A new case and its first hop, its line taken one leg at a time (migration 006), or the
# customer's recent case continued (012) with the agent who last talked with them; no row: every
# line of the number is held.
_OPEN_CASE_WITH_HOP = f"""
SELECT {_HOP_COLUMNS},
       CASE WHEN h.seq > 1 THEN (SELECT c.last_agent_id FROM cases c WHERE c.id = h.case_id) END
           AS case_last_agent_id
  FROM open_contact_hop(%(number)s, %(limit)s, %(key)s, %(entered)s, %(node)s, %(channel_id)s,
                        %(channel_name)s, %(kind)s, %(media)s, %(dialled)s, %(e164)s, %(caller_num)s,
                        %(caller_name)s, %(hotline)s, make_interval(secs => %(within)s)) h
"""

LINE_HELD_CONSTRAINT = "hops_line_held"


class Contacts:
    """Repository of cases and hops over a pool; every write is one short transaction."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def open_case_with_hop(self, hop: NewHop, customer_key: str, *,
                                 line_limit: int | None = None, continue_within_s: int | None = None) -> Hop:
        """A new contact: its case and first hop, together or not at all; or, when the customer's
        last case closed less than `continue_within_s` ago, that case reopened with this hop next.

        A leg on a number with `line_limit` lines takes the lowest free one or raises LinesBusy;
        legs of one number take lines one at a time, daemons included (an advisory lock in the
        database); the partial unique index on live (number, line) stays the guarantee, and a
        leg that still meets it (a hop written some other way) looks again. A leg on a number
        with unlimited lines (None) takes no line and waits for no other leg.
        Idempotent per channel: a retry after a commit whose answer was lost returns the hop the
        first attempt wrote instead of opening a second case.
        """
        for _ in range(20):
            try:
                return await self._open(hop, customer_key, line_limit, continue_within_s)
            except errors.UniqueViolation as exc:
                if exc.diag.constraint_name == LINE_HELD_CONSTRAINT:
                    continue  # another leg took that line between our look and our insert
                existing = await self.hop_by_channel(hop.node, hop.channel_id)
                if existing is None:
                    raise
                return existing
        raise LinesBusy(f"no line of number {hop.number_id} could be taken")

    async def _open(self, hop: NewHop, customer_key: str, line_limit: int | None,
                    continue_within_s: int | None) -> Hop:
        _check_kind(hop)
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Hop))
            await cur.execute(_OPEN_CASE_WITH_HOP, {
                "number": hop.number_id, "limit": line_limit, "key": customer_key, "entered": hop.entered_at,
                "node": hop.node, "channel_id": hop.channel_id, "channel_name": hop.channel_name,
                "kind": hop.channel_kind, "media": hop.media, "dialled": hop.dialled,
                "e164": hop.dialled_e164, "caller_num": hop.caller_num, "caller_name": hop.caller_name,
                "hotline": hop.hotline_id, "within": continue_within_s})
            opened = await cur.fetchone()
        if opened is None:
            raise LinesBusy(f"all {line_limit} line(s) of number {hop.number_id} are held")
        return opened

    async def add_hop(self, case_id: int, hop: NewHop) -> Hop:
        """A leg the daemon placed for case `case_id` (an outside number a transfer dials): its
        next hop. Idempotent per channel, like opening a case."""
        try:
            async with self.pool.connection() as conn, conn.transaction():
                # the case row locked: two legs added at once take seq one after the other
                await conn.execute("SELECT id FROM cases WHERE id = %s FOR UPDATE", (case_id,))
                cur = await conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM hops WHERE case_id = %s",
                                         (case_id,))
                seq = (await cur.fetchone() or (1,))[0]
                return await insert_hop(conn, case_id, seq, hop, None)
        except errors.UniqueViolation:
            existing = await self.hop_by_channel(hop.node, hop.channel_id)
            if existing is None:
                raise
            return existing

    async def close_hop(self, hop_id: int, end_reason: str, *, cause: int | None = None,
                        cause_text: str | None = None) -> bool:
        """End a hop once (a second close is a no-op, returns False); closes the case with its last hop."""
        record = close_hop_record(hop_id, end_reason, cause=cause, cause_text=cause_text)
        return await self.write([record]) > 0

    async def queue_event(self, event: QueueEvent) -> None:
        await self.write([queue_event_record(event)])

    async def write(self, records: list[Record]) -> int:
        """Apply `records` in order, in one statement; returns how many hops they closed."""
        async with self.pool.connection() as conn:
            return await write_records(conn, records)

    async def open_hops(self, node: str) -> list[Hop]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Hop))
            await cur.execute(f"SELECT {_HOP_COLUMNS} FROM hops WHERE node = %s AND ended_at IS NULL",
                              (node,))
            return await cur.fetchall()

    async def live_talk_of_agent(self, agent_id: int) -> Hop | None:
        """The live hop the agent is talking on now (the latest answered, if several)."""
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Hop))
            await cur.execute(f"SELECT {_HOP_COLUMNS} FROM hops WHERE agent_id = %s AND ended_at IS NULL"
                              " AND answered_at IS NOT NULL ORDER BY answered_at DESC LIMIT 1", (agent_id,))
            return await cur.fetchone()

    async def open_hop_in_case(self, case_id: int, hop: NewHop) -> Hop:
        """A leg that comes back into a live case (a customer's page reloaded after its leg
        dropped): its next hop, taking no line (the case holds one already)."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT id FROM cases WHERE id = %s FOR UPDATE", (case_id,))
            cur = await conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM hops WHERE case_id = %s",
                                     (case_id,))
            row = await cur.fetchone()
            assert row is not None
            return await insert_hop(conn, case_id, int(row[0]), hop, None)

    async def hop_by_channel(self, node: str, channel_id: str) -> Hop | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Hop))
            await cur.execute(f"SELECT {_HOP_COLUMNS} FROM hops WHERE node = %s AND channel_id = %s",
                              (node, channel_id))
            return await cur.fetchone()

    async def joined_first_in_line(self, hop_id: int) -> bool:
        async with self.pool.connection() as conn:
            return await joined_first_in_line(conn, hop_id)

    async def open_consult(self, hop: Hop) -> OpenConsult | None:
        """The attended transfer `hop` was in when its daemon stopped (None: none)."""
        async with self.pool.connection() as conn:
            return await open_consult(conn, hop.case_id, hop.id)

    async def last_queue_event(self, hop_id: int) -> str | None:
        """The hop's latest queue event (None: it never queued): a stopped daemon may have written
        its visit's end (a complete, an abandon) and not yet the hop's close."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT event FROM queue_events WHERE hop_id = %s"
                                     " ORDER BY id DESC LIMIT 1", (hop_id,))
            row = await cur.fetchone()
            return None if row is None else str(row[0])

    async def open_recordings(self, hop_id: int) -> list[OpenRecording]:
        """The hop's recordings a stopped daemon left with no end (engine.recording adopts them)."""
        async with self.pool.connection() as conn:
            return await open_recordings(conn, hop_id)


# The hop's last join, and the join or transfer just before it: a transfer to one agent or to a
# number placed that visit first in line (engine.queueing.visit's Handoff).
_LAST_JOIN_AFTER = """
SELECT p.event, p.detail FROM queue_events j
  JOIN LATERAL (SELECT event, detail FROM queue_events p
                 WHERE p.hop_id = j.hop_id AND p.id < j.id AND p.event IN ('join', 'transfer')
                 ORDER BY p.id DESC LIMIT 1) p ON true
 WHERE j.hop_id = %s AND j.event = 'join'
 ORDER BY j.id DESC LIMIT 1
"""
FIRST_IN_LINE_AFTER = ("agent:", "number:")


async def joined_first_in_line(conn: AsyncConnection, hop_id: int) -> bool:
    """Whether the hop's current visit began first in line: a transfer to one agent (rung, not
    answered) or to a number (not answered) sent the caller back so."""
    cur = await conn.execute(_LAST_JOIN_AFTER, (hop_id,))
    row = await cur.fetchone()
    return row is not None and row[0] == "transfer" and str(row[1]).startswith(FIRST_IN_LINE_AFTER)


def _check_kind(hop: NewHop) -> None:
    if hop.channel_kind not in CHANNEL_KINDS:
        raise ValueError(f"channel kind {hop.channel_kind!r} is not one of {sorted(CHANNEL_KINDS)}")


async def insert_hop(conn: AsyncConnection, case_id: int, seq: int, hop: NewHop,
                      line: int | None) -> Hop:
    _check_kind(hop)
    cur = conn.cursor(row_factory=class_row(Hop))
    await cur.execute(
        "INSERT INTO hops (case_id, seq, node, channel_id, channel_name, channel_kind, media, dialled,"
        " dialled_e164, caller_num, caller_name, entered_at, number_id, hotline_id, line)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()), %s, %s, %s)"
        f" RETURNING {_HOP_COLUMNS}",
        (case_id, seq, hop.node, hop.channel_id, hop.channel_name, hop.channel_kind, hop.media,
         hop.dialled, hop.dialled_e164, hop.caller_num, hop.caller_name, hop.entered_at,
         hop.number_id, hop.hotline_id, line))
    row = await cur.fetchone()
    assert row is not None
    return row
