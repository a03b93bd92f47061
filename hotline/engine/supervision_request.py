"""Asking for a supervision and waiting for the daemon's word, as the CLI (`hotline case
listen|whisper|barge`) and the agent page (/api/agent/supervise) both do: the case's live talk
from the database, the user event of engine.supervision, then the request's row of supervisions:
refused (with the daemon's reason), then answered or not."""

from __future__ import annotations

from psycopg import AsyncConnection

from hotline.engine.supervision import RING_TIMEOUT_S, SupervisionAsker, ask_supervision
from hotline.errors import SupervisionRefused
from hotline.store.supervisions import supervision_outcome

TAKEN_PATIENCE_S = 10.0  # how long the asker waits for the daemon to take (or refuse) the request
ANSWER_PATIENCE_S = RING_TIMEOUT_S + 10.0  # ... and then for the supervisor's phone to answer

SAYS = {  # what the asker is told once the supervisor is in
    "listen": "case {case}: {who} listens (the customer and the agent do not hear them)",
    "whisper": "case {case}: {who} whispers to the agent (the customer does not hear them)",
    "barge": "case {case}: {who} barged in (all three hear each other)",
}


async def request_supervision(conn: AsyncConnection, ari: SupervisionAsker, app: str, case_id: int,
                              mode: str, supervisor: str, asked_by: str) -> str:
    """Ask the daemon running case `case_id`'s live talk to ring `supervisor` to `mode` it; what
    to tell the asker once they are in. SupervisionRefused (one line why) otherwise; AriError
    when the request did not reach Asterisk."""
    channel_id = await live_talk_channel(conn, case_id)
    request = await ask_supervision(ari, app, channel_id, case_id, mode, supervisor, asked_by)
    await conn.commit()
    return await outcome_said(conn, request, case_id, mode, supervisor)


async def outcome_said(conn: AsyncConnection, request: str, case_id: int, mode: str, supervisor: str) -> str:
    taken = await supervision_outcome(conn, request, TAKEN_PATIENCE_S)
    if taken is None:
        raise SupervisionRefused(f"case {case_id}: no daemon took the request within "
                                 f"{TAKEN_PATIENCE_S:.0f} s (is `hotline run` running?)")
    if taken.outcome == "refused":
        raise SupervisionRefused(f"case {case_id}: {mode} refused: {taken.detail}")
    done = await supervision_outcome(conn, request, ANSWER_PATIENCE_S, past=("ringing",))
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
