"""The live snapshot supervisors watch: the daemon keeps `queue_live`, `queue_waiting` and
`agent_live` current.

Every second it builds the picture from the queue manager (who waits, since when, in which
order and with which priority, how each agent is) and writes only what changed since its last
write, in one transaction that NOTIFYs `hotline_live` (hotline.store.live_state). A database
outage costs a few stale seconds, never a call: the next tick writes the whole picture again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hotline.cancellation import raise_if_cancelled
from hotline.engine.directory import Directory
from hotline.engine.live_hub import WALLBOARD, LiveHub
from hotline.engine.queueing.agent_state import AgentStatus
from hotline.engine.queueing.queues import QueueManager
from hotline.store.live_state import AgentLive, QueueLive, WaitingLive, publish

log = logging.getLogger(__name__)

PERIOD_S = 1.0

# AgentStatus -> agent_live.state (a logged-in agent whose phone is gone is "unreachable").
LIVE_STATE = {AgentStatus.UNAVAILABLE: "unreachable"}


class LivePublisher:
    def __init__(self, pool: AsyncConnectionPool, queues: QueueManager, directory: Directory,
                 period_s: float = PERIOD_S, node: str = "", hub: LiveHub | None = None,
                 node_of: Callable[[str], str | None] = lambda channel_id: None) -> None:
        self.pool = pool
        self.hub = hub if hub is not None else LiveHub()  # wallboards hear of each change
        self.node = node  # the Asterisk node the waiting callers' channels are on (their hops')
        self.node_of = node_of  # ... when there are several: the node a channel lives on, if known
        self.queues = queues
        self.directory = directory
        self.period_s = period_s
        self._written_queues: dict[int, QueueLive] = {}
        self._written_agents: dict[int, AgentLive] = {}
        self._written_lines: dict[int, list[WaitingLive]] = {}
        self._since: dict[str, tuple[str, datetime]] = {}  # agent -> (state, since)

    async def run(self) -> None:
        while True:
            raise_if_cancelled()
            await asyncio.sleep(self.period_s)
            try:
                await self.publish_changes()
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                raise_if_cancelled()
                log.warning("live state not published (%s); retrying in %.0f s", exc, self.period_s)
                self._written_queues.clear()  # write everything once the database is back
                self._written_agents.clear()
                self._written_lines.clear()

    async def publish_changes(self) -> None:
        now = datetime.now(UTC)
        agents = self.agent_rows(now)
        queues = self.queue_rows()
        changed_queues = [q for q in queues if self._written_queues.get(q.queue_id) != q]
        changed_agents = [a for a in agents if self._written_agents.get(a.agent_id) != a]
        changed_lines = {queue_id: line for queue_id, line in self.line_rows().items()
                         if self._written_lines.get(queue_id) != line}
        if not changed_queues and not changed_agents and not changed_lines:
            return
        # Before the write: a database outage must not freeze the wallboards too.
        self.hub.publish(WALLBOARD, {"changed": datetime.now(UTC).isoformat()})
        async with self.pool.connection() as conn:
            await publish(conn, changed_queues, changed_agents, changed_lines)
        self._written_queues.update((q.queue_id, q) for q in changed_queues)
        self._written_agents.update((a.agent_id, a) for a in changed_agents)
        self._written_lines.update(changed_lines)

    def agent_rows(self, now: datetime) -> list[AgentLive]:
        ids = self.directory.snapshot.ids.get("agents", {})
        clock = self.queues.clock()
        rows = []
        for name, agent in self.queues.agents.items():
            status = agent.status(clock)
            state = LIVE_STATE.get(status, status.value)
            last = self._since.get(name)
            if last is None or last[0] != state:
                last = self._since[name] = (state, now)
            if name in ids:
                rows.append(AgentLive(ids[name], state, last[1]))
        return rows

    def line_rows(self) -> dict[int, list[WaitingLive]]:
        """Each queue's waiting callers in the order they are served (an empty line too: the
        rows of callers who left must go)."""
        ids = self.directory.snapshot.ids.get("queues", {})
        return {ids[name]: [WaitingLive(ids[name], position, self.node_of(w.channel_id) or self.node,
                                        w.channel_id, w.priority, datetime.fromtimestamp(w.joined_at, UTC),
                                        w.ringing)
                            for position, w in enumerate(self.queues.waiting.get(name, []), 1)]
                for name in self.queues.queues if name in ids}

    def queue_rows(self) -> list[QueueLive]:
        ids = self.directory.snapshot.ids.get("queues", {})
        clock = self.queues.clock()
        rows = []
        for name in self.queues.queues:
            if name not in ids:
                continue
            line = self.queues.waiting.get(name, [])
            members = {agent for agent, _ in self.queues.members.get(name, []) if agent in self.queues.agents}
            counts = Counter(LIVE_STATE.get(s, s.value)
                             for s in (self.queues.agents[a].status(clock) for a in members))
            oldest = min((w.joined_at for w in line), default=None)
            rows.append(QueueLive(
                ids[name], len(line), datetime.fromtimestamp(oldest, UTC) if oldest is not None else None,
                agents_free=counts["free"], agents_ringing=counts["ringing"], agents_busy=counts["busy"],
                agents_wrapup=counts["wrapup"], agents_paused=counts["paused"],
                agents_logged_out=counts["logged_out"] + counts["unreachable"]))
        return rows

    def queues_json(self) -> list[dict[str, object]]:
        """What `/api/queues` answers a wallboard: each queue's counts now, and its line in the
        order it is served (position, priority, since when, ringing), without the callers'
        numbers or channels."""
        names = {ident: name for name, ident in self.directory.snapshot.ids.get("queues", {}).items()}
        lines = self.line_rows()
        out: list[dict[str, object]] = []
        for row in self.queue_rows():
            fields = dataclasses.asdict(row)
            since = fields.pop("longest_waiting_since")
            line = [{"position": w.position, "priority": w.priority,
                     "waiting_since": w.waiting_since.isoformat(), "ringing": w.ringing}
                    for w in lines.get(row.queue_id, [])]
            out.append({"queue": names.get(row.queue_id, str(row.queue_id)), **fields,
                        "longest_waiting_since": since.isoformat() if since else None, "line": line})
        return out

    def agent_desk(self, name: str) -> dict[str, object]:
        """One agent's own status for their desk: the state, the pause reason (kept during a call:
        paused once it ends), the seconds of wrap-up left, and since when the state holds."""
        agent = self.queues.agents.get(name)
        if agent is None:
            return {"state": AgentStatus.LOGGED_OUT.value, "reason": None, "wrapup_left_s": None,
                    "since": None}
        clock = self.queues.clock()
        status = agent.status(clock)
        state = LIVE_STATE.get(status, status.value)
        last = self._since.get(name)
        until = agent.wrapup_until
        return {"state": state, "reason": agent.pause_reason,
                "wrapup_left_s": max(0.0, until - clock) if status is AgentStatus.WRAPUP and until else None,
                "since": last[1].isoformat() if last is not None and last[0] == state else None}

    def agents_json(self) -> list[dict[str, object]]:
        """What the wallboard shows of each logged-in or known agent: name, state, since when."""
        now = datetime.now(UTC)
        clock = self.queues.clock()
        out: list[dict[str, object]] = []
        for name in sorted(self.queues.agents):
            state = LIVE_STATE.get(self.queues.agents[name].status(clock), "")
            state = state or self.queues.agents[name].status(clock).value
            last = self._since.get(name)
            since = last[1] if last is not None and last[0] == state else now
            out.append({"agent": name, "state": state, "since": since.isoformat()})
        return out
