"""Asking for a supervision and waiting for the daemon's word, as the CLI (`hotline case
listen|whisper|barge`) and the agent page (/api/agent/supervise) both do: the case's live talk
from the database, the user event of engine.supervision, then the request's row of supervisions:
refused (with the daemon's reason), then answered or not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from hotline.engine.supervision import RING_TIMEOUT_S, SupervisionAsker, ask_supervision
from hotline.errors import SupervisionRefused
from hotline.store.supervisions import POLL_S, SupervisionOutcome, supervision_outcome

TAKEN_PATIENCE_S = 10.0  # how long the asker waits for the daemon to take (or refuse) the request
ANSWER_PATIENCE_S = RING_TIMEOUT_S + 10.0  # ... and then for the supervisor's phone to answer

SAYS = {  # what the asker is told once the supervisor is in
    "listen": "case {case}: {who} listens (the customer and the agent do not hear them)",
    "whisper": "case {case}: {who} whispers to the agent (the customer does not hear them)",
    "barge": "case {case}: {who} barged in (all three hear each other)",
}


# Waits for a request's row to say something other than `past`, up to `within_s`: (request,
# within_s, past) -> the outcome, or None.
Look = Callable[[str, float, Collection[str]], Awaitable[SupervisionOutcome | None]]


async def ask(conn: AsyncConnection, ari: Callable[[str], SupervisionAsker], app: str, case_id: int,
              mode: str, supervisor: str, asked_by: str) -> str:
    """Ask the daemon running case `case_id`'s live talk to ring `supervisor` to `mode` it, through
    `ari(channel)`, the ARI of the node the talk's channel is on; the request id its row will
    carry. SupervisionRefused when the case has no live talk; AriError when the request did not
    reach Asterisk."""
    channel_id = await live_talk_channel(conn, case_id)
    request = await ask_supervision(ari(channel_id), app, channel_id, case_id, mode, supervisor, asked_by)
    await conn.commit()
    return request


def look_on(conn: AsyncConnection) -> Look:
    """Looks on one connection, held all along (the CLI's own)."""
    return lambda request, within_s, past: supervision_outcome(conn, request, within_s, past=past)


def look_in(pool: AsyncConnectionPool) -> Look:
    """Looks with a connection of `pool` per look, never held across the wait (the pages' small
    pool serves every page meanwhile)."""

    async def look(request: str, within_s: float, past: Collection[str]) -> SupervisionOutcome | None:
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            async with pool.connection() as conn:
                outcome = await supervision_outcome(conn, request, 0, past=past)
            if outcome is not None or asyncio.get_running_loop().time() >= deadline:
                return outcome
            await asyncio.sleep(POLL_S)

    return look


async def outcome_said(look: Look, request: str, case_id: int, mode: str, supervisor: str) -> str:
    """What to tell the asker once the supervisor is in; SupervisionRefused (one line why) when
    the daemon refused, took no request, or the supervisor did not answer."""
    taken = await look(request, TAKEN_PATIENCE_S, ())
    if taken is None:
        raise SupervisionRefused(f"case {case_id}: no daemon took the request within "
                                 f"{TAKEN_PATIENCE_S:.0f} s (is `hotline run` running?)")
    if taken.outcome == "refused":
        raise SupervisionRefused(f"case {case_id}: {mode} refused: {taken.detail}")
    done = await look(request, ANSWER_PATIENCE_S, ("ringing",))
    if done is None or done.outcome == "unanswered":
        why = done.detail if done is not None else "no answer"
        raise SupervisionRefused(f"case {case_id}: {supervisor} did not take the {mode}: {why}")
    if done.outcome == "ended":
        return f"case {case_id}: {supervisor}'s {mode} already ended: {done.detail}"
    return SAYS[mode].format(case=case_id, who=supervisor)


async def live_talk_channel(conn: AsyncConnection, case_id: int) -> str:
    """The customer's channel of case `case_id`'s live talk with an agent."""
    cur = await conn.execute(
        "SELECT h.channel_id, h.answered_at IS NOT NULL AND h.agent_id IS NOT NULL AND h.ended_at IS NULL"
        " FROM cases c LEFT JOIN LATERAL (SELECT * FROM hops WHERE case_id = c.id AND ended_at IS NULL"
        " ORDER BY seq DESC LIMIT 1) h ON true WHERE c.id = %s", (case_id,))
    row = await cur.fetchone()
    if row is None:
        raise SupervisionRefused(f"case {case_id} does not exist")
    if not row[1]:
        raise SupervisionRefused(f"case {case_id} has no live talk with an agent")
    return str(row[0])
