"""Queues: who waits where (higher priority first, then longest-waiting first), which agents may
be rung, and for whom.

One `QueueManager` per daemon holds the agents' state and the waiting callers of every queue.
It never touches Asterisk: each waiting caller's own task asks it for a ringing attempt when
woken, rings through ARI, and reports back. So the state of agents changes in one place and
calls never share a lock.

Nobody polls. A waiting caller sleeps until its `wake` is called (its call then gets a QueueTurn
in its inbox), and the manager calls it only when that caller's turn may have come: an agent of
its queue became free (answered nothing, logged in, unpaused, phone free, wrap-up over: the one
timer here, at its end) or a caller ahead of it left the line or started ringing. Of a line, only
as many unrung callers from the front are woken as agents are free: the others could not ring
anyone by app_queue's autofill rule, so 200 callers waiting for a busy queue cost nothing.

A line is ordered as app_queue orders it with QUEUE_PRIO: by priority, higher first, and within
a priority by join time. A caller joining with a higher priority goes in ahead of those waiting
with a lower one (a caller already ringing an agent keeps ringing).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass

from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.queueing.strategies import Member, StrategyMemory, attempts, tiers
from hotline.errors import IllegalTransition
from hotline.provision.model import Provisioning, Queue

log = logging.getLogger(__name__)

# app_queue's hold-time estimate: each answered caller's wait moves it a quarter of the way.
HOLDTIME_WEIGHT = 0.25
# A wrap-up ends by the clock; its timer fires this much after, so the clock agrees it is over.
WRAPUP_MARGIN_S = 0.01


@dataclass(eq=False)
class Waiter:
    """One caller waiting in one queue."""

    queue: str
    channel_id: str
    joined_at: float
    video: bool = False
    wake: Callable[[], None] = lambda: None  # tells the caller's task its turn may have come
    ringing: bool = False  # an attempt is under way: callers behind it may ring other agents
    # The rest of this caller's ringing cycle: the strategy's plan, one attempt after another;
    # when it is used up the caller waits the queue's retry time and a new plan is made.
    cycle: Cycle | None = None
    cycle_video_only: bool = False  # the cycle rings video agents only (before the fallback)
    # The agent who last talked with this customer (a continued case): rung first if free, once.
    preferred: str | None = None
    priority: int = 0  # higher is served first (provision.model.PRIORITY_MAX at most)
    # Transferred to one agent: ahead of everyone who joined normally (the customer was answered
    # and talked already), whether that agent is rung or nobody answered.
    head: bool = False
    # Its node's ARI is out of reach (several nodes): it keeps its place, but no agent is offered
    # to it (the ring would fail there) and nobody behind it waits for it.
    away: bool = False

    def place_key(self) -> tuple[bool, int, float]:
        """Where the caller stands in its line: first a caller placed at the head (a transfer to
        one agent), then higher priority first, then who joined first."""
        return not self.head, -self.priority, self.joined_at


class Cycle:
    """A caller's ringing cycle: the strategy's attempts, taken as they come up (lazily: a queue
    may have hundreds of members), skipping members unavailable at that moment."""

    def __init__(self, planned: Iterator[list[Member]]) -> None:
        self._planned = planned
        self._ahead: list[Member] | None = None  # looked at by used_up(), not taken yet

    def take(self, now: float) -> list[Member]:
        """The next attempt's members available at `now`; [] when the cycle is used up."""
        while True:
            attempt, self._ahead = self._ahead or next(self._planned, None), None
            if attempt is None:
                return []
            available = [m for m in attempt if m.agent.available(now)]
            if available:
                return available

    def used_up(self) -> bool:
        if self._ahead is None:
            self._ahead = next(self._planned, None)
        return self._ahead is None


class QueueManager:
    def __init__(self, clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.memory = StrategyMemory()
        self.agents: dict[str, AgentState] = {}
        self.queues: dict[str, Queue] = {}
        self.members: dict[str, list[tuple[str, int]]] = {}  # queue -> [(agent, penalty)]
        self._tiers: dict[str, list[list[Member]]] = {}  # queue -> its members as strategies see them
        self._by_endpoint: dict[str, list[AgentState]] = {}  # PJSIP endpoint -> its agents
        self._queues_of: dict[str, set[str]] = {}  # agent -> the queues it is a member of
        self.waiting: dict[str, list[Waiter]] = {}
        self.holdtime: dict[str, float] = {}  # queue -> estimated wait of an answered caller, s

    # -- provisioning and presence ---------------------------------------------------------------

    def provision(self, prov: Provisioning) -> None:
        """Take a new provisioning: agents keep their state, new ones start logged out."""
        self.queues = dict(prov.queues)
        self.members = {name: [] for name in prov.queues}
        for agent in prov.agents.values():
            if agent.name not in self.agents:
                self.agents[agent.name] = AgentState.from_agent(agent)
            for queue, penalty in agent.queues:
                self.members.setdefault(queue, []).append((agent.name, penalty))
        for gone in set(self.agents) - set(prov.agents):
            del self.agents[gone]
        self._by_endpoint = {}
        for agent_state in self.agents.values():
            self._by_endpoint.setdefault(agent_state.endpoint, []).append(agent_state)
        self._tiers = {queue: tiers([Member(self.agents[name], penalty, order)
                                     for order, (name, penalty) in enumerate(members)])
                       for queue, members in self.members.items()}
        self._queues_of = {}
        for queue, members in self.members.items():
            for name, _ in members:
                self._queues_of.setdefault(name, set()).add(queue)
        self.wake_all()

    def presence(self, logged_in: Mapping[str, bool], paused: Mapping[str, str | None]) -> None:
        """Follow `hotline agent login|logout|pause|unpause` (from the database)."""
        now = self.clock()
        for name, agent in self.agents.items():
            before = agent.status(now)
            try:
                self._apply_presence(agent, logged_in.get(name, False), paused.get(name), now)
            except IllegalTransition as exc:  # the database is the truth; log and carry on
                log.warning("presence of %s: %s", name, exc)
            if agent.status(now) is not before:
                log.info("agent %s: %s -> %s", name, before.value, agent.status(now).value)
        self.wake_all()

    @staticmethod
    def _apply_presence(agent: AgentState, logged_in: bool, reason: str | None, now: float) -> None:
        was_in = agent.status(now).value != "logged_out"
        if logged_in and not was_in:
            agent.login(now)
        if not logged_in and was_in:
            agent.logout(now)
            return
        if logged_in and reason != agent.pause_reason:
            if agent.pause_reason is not None:
                agent.unpause(now)
            if reason is not None:
                agent.pause(reason, now)

    def device(self, endpoint: str, state: str) -> None:
        """A DeviceStateChange from AMI for `PJSIP/<endpoint>` (several per call: look it up)."""
        now = self.clock()
        for agent in self._by_endpoint.get(endpoint, ()):
            if agent.device_state != state:
                agent.device(state, now)
                log.debug("agent %s: device %s -> %s", agent.name, state, agent.status(now).value)
                self._agent_changed(agent)

    # -- callers ---------------------------------------------------------------------------------

    def join(self, queue: str, channel_id: str, joined_at: float | None = None, video: bool = False,
             preferred: str | None = None, wake: Callable[[], None] | None = None,
             priority: int = 0, head: bool = False) -> Waiter:
        """Queue a caller at its place (`place_key`); `joined_at` and `priority` from the database
        keep it across a restart; `head`: before every caller who joined normally. No one is woken:
        a caller joining behind others takes nobody's turn, one joining ahead (a higher priority)
        only delays theirs, and the joiner asks for its first attempt at once."""
        waiter = Waiter(queue, channel_id, joined_at if joined_at is not None else self.clock(), video,
                        preferred=preferred, priority=priority, head=head)
        if wake is not None:
            waiter.wake = wake
        line = self.waiting.setdefault(queue, [])
        line.append(waiter)
        line.sort(key=Waiter.place_key)
        return waiter

    def leave(self, waiter: Waiter) -> None:
        line = self.waiting.get(waiter.queue, [])
        if waiter in line:
            line.remove(waiter)
            self._offer(waiter.queue)  # one caller fewer ahead of those behind

    def position(self, waiter: Waiter) -> int:
        return self.waiting.get(waiter.queue, []).index(waiter) + 1

    def place(self, waiter: Waiter) -> int | None:
        """The caller's position, or None when it is not in line (an agent answered it)."""
        line = self.waiting.get(waiter.queue, [])
        return line.index(waiter) + 1 if waiter in line else None

    def length(self, queue: str) -> int:
        return len(self.waiting.get(queue, []))

    def logged_in_members(self, queue: str) -> int:
        now = self.clock()
        return sum(1 for name, _ in self.members.get(queue, [])
                   if name in self.agents and self.agents[name].status(now).value != "logged_out")

    def next_attempt(self, waiter: Waiter) -> list[AgentState]:
        """The agents this caller should ring now, or [] (not its turn, or nobody free).

        Its turn, as app_queue's autofill has it: fewer callers ahead of it wait unrung than
        agents are free, so the longest-waiting are served first but a caller ahead that is
        busy for a moment (music starting, an announcement) does not hold up the whole line.
        The agents returned are marked ringing at once, so the caller behind cannot take them."""
        line = self.waiting.get(waiter.queue, [])
        queue = self.queues.get(waiter.queue)
        if waiter not in line or queue is None or waiter.away:
            return []
        now = self.clock()
        unrung_ahead = sum(1 for w in line[: line.index(waiter)] if not w.ringing and not w.away)
        if unrung_ahead and self._free_agents(waiter.queue, limit=unrung_ahead + 1) <= unrung_ahead:
            return []
        preferred = self._preferred_agent(waiter, queue.name, now)
        if preferred is not None:
            return self._ring_first(waiter, queue.name, preferred, now)
        video_only, prefer_video = video_preference(queue, waiter, now)
        if waiter.cycle is not None and waiter.cycle_video_only and not video_only:
            waiter.cycle = None  # the fallback time has come: a new plan with the audio agents too
        if waiter.cycle is None:
            waiter.cycle = Cycle(attempts(queue.strategy, self._tiers.get(queue.name, []), now, self.memory,
                                          self.rng, queue=queue.name, prefer_video=prefer_video,
                                          video_only=video_only))
            waiter.cycle_video_only = video_only
        attempt = waiter.cycle.take(now)
        if not attempt:
            waiter.cycle = None  # nobody to ring now: a fresh plan next time
            return []
        for member in attempt:
            member.agent.ringing(now, queue.name)
            self.memory.remember(queue.name, member)
        waiter.ringing = True
        self._offer(waiter.queue)  # one unrung caller fewer ahead: the next may have its turn now
        return [m.agent for m in attempt]

    def _preferred_agent(self, waiter: Waiter, queue: str, now: float) -> Member | None:
        """The caller's last agent, once: a member of this queue and free now, else None (the
        strategy then rings as for anyone)."""
        name, waiter.preferred = waiter.preferred, None
        if name is None:
            return None
        member = next((m for tier in self._tiers.get(queue, []) for m in tier if m.agent.name == name), None)
        return member if member is not None and member.agent.available(now) else None

    def _ring_first(self, waiter: Waiter, queue: str, member: Member, now: float) -> list[AgentState]:
        member.agent.ringing(now, queue)
        self.memory.remember(queue, member)
        waiter.ringing = True
        self._offer(queue)
        return [member.agent]

    def ring_directly(self, waiter: Waiter, name: str, *, ring_back: bool = False) -> AgentState | None:
        """Mark agent `name` ringing for `waiter`, a caller transferred to that agent (whether or
        not it is a member of the queue); None when the agent is not free now. `ring_back`: the
        transferring agent, whose wrap-up the call it passed on cuts short."""
        agent = self.agents.get(name)
        now = self.clock()
        if agent is None or not (agent.available(now) or ring_back and agent.in_wrapup(now)):
            return None
        agent.ringing(now, waiter.queue, cut_wrapup=ring_back)
        waiter.ringing = True
        self._offer(waiter.queue)
        return agent

    def consult_ring(self, name: str, queue: str) -> AgentState | None:
        """Mark agent `name` ringing for an attended transfer of a talk of `queue`; None when the
        agent is not free now."""
        agent = self.agents.get(name)
        now = self.clock()
        if agent is None or not agent.available(now):
            return None
        agent.ringing(now, queue)
        return agent

    def consult_passed_on(self, waiter: Waiter, name: str) -> AgentState | None:
        """Agent `name`, rung for a consult whose transferring agent hung up, now rings for
        `waiter` (the customer back in line): its ring goes on, unchanged. None: no such agent."""
        agent = self.agents.get(name)
        if agent is None:
            return None
        waiter.ringing = True
        self._offer(waiter.queue)
        return agent

    def consult_answered(self, agent: AgentState) -> None:
        agent.answered(self.clock())

    def consult_ended(self, agent: AgentState, *, answered: bool) -> None:
        """An attended transfer's target rung or talked to, and the customer kept: free again at
        once (no call counted, no wrap-up: the customer never talked with them)."""
        if answered:
            agent.answer_dropped(self.clock())
        else:
            agent.ring_ended_unanswered(self.clock())
        self._agent_changed(agent)

    def estimated_wait(self, waiter: Waiter) -> float | None:
        """What is left of the queue's hold time for this caller (None: no caller answered yet
        to estimate from), as app_queue announces it."""
        holdtime = self.holdtime.get(waiter.queue)
        if holdtime is None:
            return None
        return max(0.0, holdtime - (self.clock() - waiter.joined_at))

    def ring_ended(self, waiter: Waiter, agent: AgentState, answered: bool) -> None:
        now = self.clock()
        if answered:
            agent.answered(now)
            waited = now - waiter.joined_at
            old = self.holdtime.get(waiter.queue, waited)
            self.holdtime[waiter.queue] = old + (waited - old) * HOLDTIME_WEIGHT
        else:
            agent.ring_ended_unanswered(now)
            self._agent_changed(agent)

    def attempt_over(self, waiter: Waiter) -> bool:
        """The caller's ringing attempt ended unanswered: it waits like the others again (which
        gives no one behind it a turn: one more unrung caller ahead of them). True when its cycle
        is used up (time for the queue's retry pause)."""
        waiter.ringing = False
        if waiter.cycle is None or waiter.cycle.used_up():
            waiter.cycle = None
            return True
        return False

    def adopt_talking(self, agent_name: str, queue: str) -> AgentState | None:
        agent = self.agents.get(agent_name)
        if agent is not None:
            agent.adopt_call(self.clock(), queue)
        return agent

    def answer_dropped(self, agent: AgentState) -> None:
        agent.answer_dropped(self.clock())
        self._agent_changed(agent)

    def call_ended(self, agent: AgentState, queue: str) -> None:
        q = self.queues.get(queue)
        agent.call_ended(self.clock(), q.wrapup if q else 0)
        if agent.wrapup_until is not None:
            self._at(agent.wrapup_until + WRAPUP_MARGIN_S, lambda: self._wrapup_over(agent))
        self._agent_changed(agent)

    def _wrapup_over(self, agent: AgentState) -> None:
        until = agent.wrapup_until
        if until is not None and self.clock() < until:  # a new wrap-up since: its own timer is set
            return
        agent.settle(self.clock())
        self._agent_changed(agent)

    def _at(self, when: float, action: Callable[[], None]) -> None:
        """Run `action` at `when` (this manager's clock); a deadline, never a poll."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous test): nobody waits to be woken
            return
        loop.call_later(max(0.0, when - self.clock()), action)

    # -- waking the callers whose turn may have come ----------------------------------------------

    def _agent_changed(self, agent: AgentState) -> None:
        """An agent's status changed: the lines of its queues may move."""
        for queue in self._queues_of.get(agent.name, ()):
            self._offer(queue)

    def _offer(self, queue: str) -> None:
        """Wake the unrung callers at the front of `queue`'s line, as many as agents are free:
        by the autofill rule (next_attempt) no caller behind them can ring anyone now."""
        unrung = [w for w in self.waiting.get(queue, ()) if not w.ringing and not w.away]
        if not unrung:  # the usual case when agents are free: every caller in line is ringing
            return
        for waiter in unrung[:self._free_agents(queue, limit=len(unrung))]:
            waiter.wake()

    def _free_agents(self, queue: str, limit: int) -> int:
        """How many members of `queue` are free now, counting no further than `limit` (a queue
        may have hundreds of members and this runs on every wake-up)."""
        now = self.clock()
        free: set[str] = set()
        for name, _ in self.members.get(queue, []):
            agent = self.agents.get(name)
            if agent is not None and agent.available(now):
                free.add(name)
                if len(free) >= limit:
                    break
        return len(free)

    def set_away(self, channel_ids: Collection[str], away: bool) -> int:
        """The callers on these channels are away (their node's ARI out of reach) or back: the
        lines they are in move. How many waiters changed."""
        changed = [w for line in self.waiting.values() for w in line
                   if w.channel_id in channel_ids and w.away != away]
        for waiter in changed:
            waiter.away = away
        for queue in {w.queue for w in changed}:
            self._offer(queue)
        return len(changed)

    def wake_all(self, queue: str | None = None) -> None:
        """Provisioning or presence changed: every line may move (rare: no need to be exact)."""
        for name, line in self.waiting.items():
            if queue is None or name == queue:
                for waiter in line:
                    waiter.wake()


def video_preference(queue: Queue, waiter: Waiter, now: float) -> tuple[bool, bool]:
    """(video agents only, video agents first) for this caller now: a video caller in a queue
    that prefers video agents rings only them for the queue's fallback time, then everyone."""
    if not (waiter.video and queue.prefer_video_agents):
        return False, False
    fallback = queue.video_fallback
    return fallback is None or now - waiter.joined_at < fallback, True
