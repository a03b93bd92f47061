"""Queued callback requests in PostgreSQL: durable, in the order the callers joined their queue,
and placed by one daemon at a time.

A request keeps the caller's join time (its place in the line). A daemon claims the oldest due
request of its queues (`FOR UPDATE SKIP LOCKED`, status 'placing' with its run and a lease): a
second daemon's claim skips it and can never take it while the lease lasts; a lease that ran out
(the daemon died) puts the request back in the line. When to retry and when to give up:
hotline.engine.queueing.callback_rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from hotline.errors import CallbackError
from hotline.store.hops import Hop

OPEN = ("pending", "placing")
ENDED = ("answered", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class CallbackRequest:
    id: int
    case_id: int
    hop_id: int | None
    queue_id: int
    number: str
    joined_at: datetime
    requested_at: datetime
    due_at: datetime
    expires_at: datetime | None
    attempts: int
    status: str
    placed_by: str | None
    lease_until: datetime | None
    ended_at: datetime | None
    detail: str
    language: str | None = None  # the asking leg's (its hop's): the callback's agent and customer hear it


COLUMNS = ("id, case_id, hop_id, queue_id, number, joined_at, requested_at, due_at, expires_at, attempts,"
           " status, placed_by, lease_until, ended_at, detail,"
           " (SELECT h.language FROM hops h WHERE h.id = callbacks.hop_id) AS language")


async def request(conn: AsyncConnection, *, case_id: int, hop_id: int | None, queue_id: int, number: str,
                  joined_at: datetime, due_at: datetime, expires_at: datetime | None) -> CallbackRequest:
    """A caller's request, or the one the case already has open in that queue (a second press)."""
    cur = conn.cursor(row_factory=class_row(CallbackRequest))
    await cur.execute(
        f"INSERT INTO callbacks (case_id, hop_id, queue_id, number, joined_at, due_at, expires_at)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (case_id, queue_id) WHERE status IN ('pending', 'placing') DO NOTHING"
        f" RETURNING {COLUMNS}",
        (case_id, hop_id, queue_id, number, joined_at, due_at, expires_at))
    made = await cur.fetchone()
    if made is not None:
        return made
    await cur.execute(f"SELECT {COLUMNS} FROM callbacks WHERE case_id = %s AND queue_id = %s"
                      " AND status IN ('pending', 'placing')", (case_id, queue_id))
    existing = await cur.fetchone()
    if existing is None:  # ended between the two statements: ask again
        return await request(conn, case_id=case_id, hop_id=hop_id, queue_id=queue_id, number=number,
                             joined_at=joined_at, due_at=due_at, expires_at=expires_at)
    return existing


async def claim(conn: AsyncConnection, queue_ids: list[int], run: str,
                lease_s: int) -> CallbackRequest | None:
    """The oldest-joined due request of `queue_ids`, now held by `run` for `lease_s` seconds; None
    when there is none (or every due one is being claimed by another daemon right now)."""
    cur = conn.cursor(row_factory=class_row(CallbackRequest))
    await cur.execute(
        f"UPDATE callbacks SET status = 'placing', placed_by = %s, waits_for_opening = false,"
        f" lease_until = now() + make_interval(secs => %s)"
        f" WHERE id = (SELECT id FROM callbacks WHERE status = 'pending' AND queue_id = ANY(%s)"
        f"             AND due_at <= now() AND (expires_at IS NULL OR expires_at > now())"
        f"             ORDER BY joined_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        f" RETURNING {COLUMNS}",
        (run, lease_s, queue_ids))
    return await cur.fetchone()


async def renew(conn: AsyncConnection, callback_id: int, run: str, lease_s: int) -> None:
    """Keep holding a request being placed; CallbackError when `run` no longer holds it."""
    await _held(conn, "UPDATE callbacks SET lease_until = now() + make_interval(secs => %s)"
                      " WHERE id = %s AND status = 'placing' AND placed_by = %s", (lease_s, callback_id, run),
                callback_id, run)


async def release(conn: AsyncConnection, callback_id: int, run: str) -> None:
    """Back in the line, its place and attempts unchanged (no agent took it, the daemon stops)."""
    await _held(conn, "UPDATE callbacks SET status = 'pending', placed_by = NULL, lease_until = NULL"
                      " WHERE id = %s AND status = 'placing' AND placed_by = %s", (callback_id, run),
                callback_id, run)


async def defer(conn: AsyncConnection, callback_id: int, run: str, due_at: datetime) -> None:
    """Back in the line, due no earlier than `due_at` (its hotline is closed until then)."""
    await _held(conn, "UPDATE callbacks SET status = 'pending', placed_by = NULL, lease_until = NULL,"
                      " due_at = %s, waits_for_opening = true"
                      " WHERE id = %s AND status = 'placing' AND placed_by = %s",
                (due_at, callback_id, run), callback_id, run)


async def hotline_of(conn: AsyncConnection, callback: CallbackRequest) -> int | None:
    """The hotline the caller called when they asked (their hop's), if known."""
    if callback.hop_id is None:
        return None
    cur = await conn.execute("SELECT hotline_id FROM hops WHERE id = %s", (callback.hop_id,))
    row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def answered(conn: AsyncConnection, callback_id: int, run: str) -> None:
    await _held(conn, "UPDATE callbacks SET status = 'answered', attempts = attempts + 1, ended_at = now(),"
                      " placed_by = NULL, lease_until = NULL"
                      " WHERE id = %s AND status = 'placing' AND placed_by = %s", (callback_id, run),
                callback_id, run)


async def unanswered(conn: AsyncConnection, callback_id: int, run: str, *, retry_at: datetime | None,
                     give_up_as: str = "failed", detail: str = "") -> None:
    """The customer did not answer: back in the line from `retry_at`, or ended as `give_up_as`
    ('failed' or 'expired') when there is no retry."""
    if retry_at is None and give_up_as not in ("failed", "expired"):
        raise ValueError(f"a callback is given up as failed or expired, not {give_up_as!r}")
    await _held(conn, "UPDATE callbacks SET attempts = attempts + 1, placed_by = NULL, lease_until = NULL,"
                      " status = CASE WHEN %(retry)s::timestamptz IS NULL THEN %(end)s ELSE 'pending' END,"
                      " due_at = coalesce(%(retry)s::timestamptz, due_at),"
                      " ended_at = CASE WHEN %(retry)s::timestamptz IS NULL THEN now() END,"
                      " detail = %(detail)s"
                      " WHERE id = %(id)s AND status = 'placing' AND placed_by = %(run)s",
                {"retry": retry_at, "end": give_up_as, "detail": detail, "id": callback_id, "run": run},
                callback_id, run)


async def _held(conn: AsyncConnection, sql: str, params: Sequence[object] | Mapping[str, object],
                callback_id: int, run: str) -> None:
    cur = await conn.execute(sql, params)
    if cur.rowcount != 1:
        raise CallbackError(f"callback {callback_id} is not being placed by {run}")


async def recover(conn: AsyncConnection) -> list[int]:
    """Requests whose daemon's lease ran out, back in the line; their ids."""
    cur = await conn.execute("UPDATE callbacks SET status = 'pending', placed_by = NULL, lease_until = NULL"
                             " WHERE status = 'placing' AND lease_until < now() RETURNING id")
    return sorted(row[0] for row in await cur.fetchall())


async def wake_for_opening(conn: AsyncConnection) -> list[int]:
    """Requests waiting for their hotline's opening, due now (their hours changed: each is looked
    at again, and put back until its new opening if still closed); their ids."""
    cur = await conn.execute("UPDATE callbacks SET due_at = now() WHERE status = 'pending'"
                             " AND waits_for_opening AND due_at > now() RETURNING id")
    return sorted(row[0] for row in await cur.fetchall())


async def expire(conn: AsyncConnection) -> list[int]:
    """Pending requests past their expiry, ended 'expired'; their ids."""
    cur = await conn.execute("UPDATE callbacks SET status = 'expired', ended_at = now(), detail = 'expired'"
                             " WHERE status = 'pending' AND expires_at <= now() RETURNING id")
    return sorted(row[0] for row in await cur.fetchall())


async def cancel(conn: AsyncConnection, callback_id: int, by: str) -> CallbackRequest:
    """A supervisor's cancel: only a request still waiting; one clear CallbackError otherwise."""
    cur = conn.cursor(row_factory=class_row(CallbackRequest))
    await cur.execute(f"UPDATE callbacks SET status = 'cancelled', ended_at = now(), detail = %s"
                      f" WHERE id = %s AND status = 'pending' RETURNING {COLUMNS}",
                      (f"cancelled by {by}", callback_id))
    done = await cur.fetchone()
    if done is not None:
        return done
    await cur.execute(f"SELECT {COLUMNS} FROM callbacks WHERE id = %s", (callback_id,))
    found = await cur.fetchone()
    if found is None:
        raise CallbackError(f"callback {callback_id} does not exist")
    if found.status == "placing":
        raise CallbackError(f"callback {callback_id} is being placed now: it cannot be cancelled")
    raise CallbackError(f"callback {callback_id} has already ended ({found.status})")


async def listing(conn: AsyncConnection, *, ended_within_s: int | None = None) -> list[dict[str, object]]:
    """The requests a supervisor reads, with their queue's name, in the line's order: those still
    open, and with `ended_within_s` those ended that recently too."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT c.id, q.name AS queue, c.number, c.status, c.joined_at, c.due_at, c.expires_at, c.attempts,"
        "       c.case_id, c.placed_by, c.ended_at, c.detail"
        "  FROM callbacks c JOIN queues q ON q.id = c.queue_id"
        " WHERE c.status IN ('pending', 'placing')"
        "    OR (%s::integer IS NOT NULL AND c.ended_at > now() - make_interval(secs => %s::integer))"
        " ORDER BY c.ended_at IS NOT NULL, q.name, c.joined_at, c.id", (ended_within_s, ended_within_s))
    return await cur.fetchall()


async def waiting_per_queue(conn: AsyncConnection) -> dict[int, int]:
    """How many callbacks each queue has not placed yet (pending or being placed)."""
    cur = await conn.execute("SELECT queue_id, count(*) FROM callbacks WHERE status IN ('pending', 'placing')"
                             " GROUP BY queue_id")
    return {int(queue_id): int(n) for queue_id, n in await cur.fetchall()}


async def open_requests(conn: AsyncConnection) -> list[CallbackRequest]:
    """Every request not yet ended, in the line's order (queue, then join time)."""
    cur = conn.cursor(row_factory=class_row(CallbackRequest))
    await cur.execute(f"SELECT {COLUMNS} FROM callbacks WHERE status IN ('pending', 'placing')"
                      " ORDER BY queue_id, joined_at, id")
    return await cur.fetchall()




# The outbound leg's hop, next in the request's case (reopened: the leg that asked has ended),
# with the asking leg's hotline and language; the hop dials the customer's number.
_OPEN_HOP = """
WITH reopened AS (UPDATE cases SET status = 'open', closed_at = NULL WHERE id = %(case)s)
INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, media, dialled, dialled_e164, caller_num,
                  hotline_id, queue_id, language)
SELECT %(case)s, (SELECT coalesce(max(seq), 0) + 1 FROM hops WHERE case_id = %(case)s), %(node)s,
       %(channel)s, 'pstn', 'audio', %(number)s, %(number)s, %(caller_id)s,
       (SELECT hotline_id FROM hops WHERE id = %(asked)s), %(queue)s,
       (SELECT language FROM hops WHERE id = %(asked)s)
RETURNING id, case_id, seq, node, channel_id, channel_kind, dialled, dialled_e164, caller_num, entered_at,
          ended_at, end_reason, hangup_cause, number_id, line, hotline_id, queue_id, agent_id, queued_at,
          answered_at, media, language
"""


async def open_hop(conn: AsyncConnection, callback: CallbackRequest, *, node: str, channel_id: str,
                   caller_id: str) -> Hop:
    """The hop of the leg that calls the customer back, in their case."""
    cur = conn.cursor(row_factory=class_row(Hop))
    await cur.execute(_OPEN_HOP, {"case": callback.case_id, "node": node, "channel": channel_id,
                                  "number": callback.number, "caller_id": caller_id,
                                  "asked": callback.hop_id, "queue": callback.queue_id})
    hop = await cur.fetchone()
    assert hop is not None
    return hop


class Callbacks:
    """What a call asks of the callback store, over the daemon's pool (engine.context.CallbackStore)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def request(self, *, case_id: int, hop_id: int | None, queue_id: int, number: str,
                      joined_at: datetime, due_at: datetime, expires_at: datetime | None) -> CallbackRequest:
        async with self.pool.connection() as conn:
            return await request(conn, case_id=case_id, hop_id=hop_id, queue_id=queue_id, number=number,
                                 joined_at=joined_at, due_at=due_at, expires_at=expires_at)

    async def claim(self, queue_ids: list[int], run: str, lease_s: int) -> CallbackRequest | None:
        async with self.pool.connection() as conn:
            return await claim(conn, queue_ids, run, lease_s)

    async def renew(self, callback_id: int, run: str, lease_s: int) -> None:
        async with self.pool.connection() as conn:
            await renew(conn, callback_id, run, lease_s)

    async def release(self, callback_id: int, run: str) -> None:
        async with self.pool.connection() as conn:
            await release(conn, callback_id, run)

    async def defer(self, callback_id: int, run: str, due_at: datetime) -> None:
        async with self.pool.connection() as conn:
            await defer(conn, callback_id, run, due_at)

    async def wake_for_opening(self) -> list[int]:
        async with self.pool.connection() as conn:
            return await wake_for_opening(conn)

    async def hotline_of(self, callback: CallbackRequest) -> int | None:
        async with self.pool.connection() as conn:
            return await hotline_of(conn, callback)

    async def answered(self, callback_id: int, run: str) -> None:
        async with self.pool.connection() as conn:
            await answered(conn, callback_id, run)

    async def unanswered(self, callback_id: int, run: str, *, retry_at: datetime | None,
                         give_up_as: str = "failed", detail: str = "") -> None:
        async with self.pool.connection() as conn:
            await unanswered(conn, callback_id, run, retry_at=retry_at, give_up_as=give_up_as, detail=detail)

    async def recover(self) -> list[int]:
        async with self.pool.connection() as conn:
            return await recover(conn)

    async def expire(self) -> list[int]:
        async with self.pool.connection() as conn:
            return await expire(conn)

    async def open_hop(self, callback: CallbackRequest, *, node: str, channel_id: str, caller_id: str) -> Hop:
        async with self.pool.connection() as conn:
            return await open_hop(conn, callback, node=node, channel_id=channel_id, caller_id=caller_id)
