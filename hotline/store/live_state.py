"""The live snapshot supervisors watch (`hotline stats live`, wallboards): per queue who waits and
how the agents are, per agent the state it is in, and the waiting callers themselves in the
order they will be served (`queue_waiting`: position, priority, since when). The daemon
publishes it; each publish is one transaction that ends with `NOTIFY hotline_live`, delivered at
commit, so a watcher never reads half a snapshot.

Waits are stored as the moment they began (`longest_waiting_since`, `since`): readers compute
the wait from now(), so it advances between publishes.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import datetime

from psycopg import AsyncConnection

NOTIFY_CHANNEL = "hotline_live"
AGENT_STATES = frozenset({"free", "ringing", "busy", "wrapup", "paused", "logged_out", "unreachable"})


@dataclass(frozen=True)
class QueueLive:
    queue_id: int
    waiting: int
    longest_waiting_since: datetime | None
    agents_free: int = 0
    agents_ringing: int = 0
    agents_busy: int = 0
    agents_wrapup: int = 0
    agents_paused: int = 0
    agents_logged_out: int = 0


@dataclass(frozen=True)
class WaitingLive:
    """One caller in a queue's line, where it stands (1: served next)."""

    queue_id: int
    position: int
    node: str
    channel_id: str
    priority: int
    waiting_since: datetime
    ringing: bool = False


@dataclass(frozen=True)
class AgentLive:
    agent_id: int
    state: str  # one of AGENT_STATES
    since: datetime


_UPSERT_QUEUE = """
INSERT INTO queue_live (queue_id, waiting, longest_waiting_since, agents_free, agents_ringing, agents_busy,
                        agents_wrapup, agents_paused, agents_logged_out, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (queue_id) DO UPDATE SET
    waiting = excluded.waiting, longest_waiting_since = excluded.longest_waiting_since,
    agents_free = excluded.agents_free, agents_ringing = excluded.agents_ringing,
    agents_busy = excluded.agents_busy, agents_wrapup = excluded.agents_wrapup,
    agents_paused = excluded.agents_paused, agents_logged_out = excluded.agents_logged_out,
    updated_at = excluded.updated_at
"""

_UPSERT_AGENT = """
INSERT INTO agent_live (agent_id, state, since, updated_at) VALUES (%s, %s, %s, now())
ON CONFLICT (agent_id) DO UPDATE SET state = excluded.state, since = excluded.since,
    updated_at = excluded.updated_at
"""


_INSERT_WAITING = """
INSERT INTO queue_waiting (queue_id, position, node, channel_id, priority, waiting_since, ringing)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


async def publish(conn: AsyncConnection, queues: list[QueueLive], agents: list[AgentLive],
                  lines: dict[int, list[WaitingLive]] | None = None) -> None:
    """Upsert the given queues and agents (others keep their rows), replace the given queues' lines
    (queue id -> its waiting callers, in order) and notify watchers, atomically."""
    bad = sorted({a.state for a in agents} - AGENT_STATES)
    if bad:
        raise ValueError(f"agent state {bad[0]!r} is not one of {sorted(AGENT_STATES)}")
    async with conn.transaction():
        async with conn.cursor() as cur:
            if queues:
                await cur.executemany(_UPSERT_QUEUE, [astuple(q) for q in queues])
            if agents:
                await cur.executemany(_UPSERT_AGENT, [astuple(a) for a in agents])
            if lines:
                await cur.execute("DELETE FROM queue_waiting WHERE queue_id = ANY(%s)", (list(lines),))
                rows = [astuple(w) for line in lines.values() for w in line]
                if rows:
                    await cur.executemany(_INSERT_WAITING, rows)
            await cur.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
