"""Placing queued callbacks: a task of the daemon's that takes the requests of each queue in the
order their callers joined, and calls each one back when its turn comes.

Per queue, the daemon holds at most one request at a time (claimed in PostgreSQL under a lease
it renews: hotline.store.callbacks), the oldest-joined one due. It stands in the queue's line
like a caller, at the request's join time, so live callers who joined before it go first and
those after it wait. When its turn comes and an agent is free, that agent is rung first; once
they answer they hear a short whisper (callback, the customer's number; their phone showed the
queue while it rang) and
ringing while the customer is dialled through the trunk that allows the number, with the
hotline's number as caller id. The customer answering makes the request 'answered' in the
database before anything else (a daemon killed after that never places it again), then both are
bridged in the case's bridge; the outbound leg is a hop of the customer's case. Not answered:
tried again after the queue's interval, or given up (callback_rules). A daemon killed before the
answer leaves a lease that runs out: the request goes back in the line and is placed afresh.
A request whose hotline is closed when its turn comes waits for the hotline's next opening
(looked at again at once when provisioning changes a hotline's hours).

The callback's talk is counted like any talk: the agent legs' ring, ring_noanswer, answer and
complete (with its talk time) are queue events of the callback's queue on the outbound leg's hop,
so per-agent statistics and `hotline case show` count it. The hop exists only once the customer
is dialled: the agent side's events wait (with their times) and are written behind it; a try that
never dials the customer (the trunk gone) leaves none. That hop has no join, so stats_queue counts
no visit for it (not offered, answered or abandoned): the request's visit counts in
callbacks_requested, the placed talk in callbacks_answered and in the queue's talk time
(migration 026). An agent who answered for a customer who then did not answer gets a
ring_noanswer 'caller gone' (not a miss of theirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hotline.asterisk.ari_events import (
    ChannelDestroyed,
    PlaybackFinished,
    StasisStart,
)
from hotline.cancellation import raise_if_cancelled
from hotline.engine.built_in_prompts import TO_CALL_BACK, localised, sound
from hotline.engine.callback_talk import Talk, channel_of, follow, is_end, release
from hotline.engine.context import CallContext
from hotline.engine.dial_out import dial_out
from hotline.engine.directory import Snapshot
from hotline.engine.facts import HopEnded, QueueStep, TalkTakenOver
from hotline.engine.messages import Message
from hotline.engine.outcomes import EndReason, QueueEventKind
from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.queueing.callback_offer import rules_of
from hotline.engine.queueing.callback_rules import GiveUp, after_unanswered
from hotline.engine.queueing.queues import Waiter
from hotline.engine.routing.hours import next_opening
from hotline.engine.routing.outbound import trunk_for
from hotline.errors import AriError, CallbackError, DialRefused
from hotline.media import originate_formats
from hotline.provision.model import Queue
from hotline.store.callbacks import CallbackRequest
from hotline.store.db import STORE_DOWN
from hotline.store.hops import Hop

log = logging.getLogger(__name__)

CALLBACK_LEG = "callback-"  # the ids of the channels a callback places start with it
TICK_S = 1.0
LEASE_S = 30
RING_GRACE_S = 2.0  # Asterisk's own timeout comes first; ours is a lost event's safety net


def whisper_media(number: str, language: str | None = None) -> str:
    """What the agent hears on answering: callback, and the number (the queue is on the phone's
    display, agent_caller_id: spelling a queue's name out loud takes a second a letter), in
    `language`: the case's, which the agent's leg is set to (_language)."""
    return localised(",".join([sound(TO_CALL_BACK), f"digits:{number.lstrip('+')}"]), language)


def agent_caller_id(queue: str, number: str) -> str:
    """What the agent's phone shows while it rings: a callback, of which queue, to whom."""
    return f'"callback {queue}" <{number}>'



class PlacerStore(Protocol):
    """The callback store as the placer uses it (hotline.store.callbacks.Callbacks)."""

    async def recover(self) -> list[int]: ...
    async def expire(self) -> list[int]: ...
    async def claim(self, queue_ids: list[int], run: str, lease_s: int) -> CallbackRequest | None: ...
    async def renew(self, callback_id: int, run: str, lease_s: int) -> None: ...
    async def release(self, callback_id: int, run: str) -> None: ...
    async def answered(self, callback_id: int, run: str) -> None: ...
    async def defer(self, callback_id: int, run: str, due_at: datetime) -> None: ...
    async def wake_for_opening(self) -> list[int]: ...
    async def hotline_of(self, callback: CallbackRequest) -> int | None: ...
    async def unanswered(self, callback_id: int, run: str, *, retry_at: datetime | None,
                         give_up_as: str = "failed", detail: str = "") -> None: ...
    async def open_hop(self, callback: CallbackRequest, *, node: str, channel_id: str,
                       caller_id: str) -> Hop: ...


@dataclass(frozen=True)
class Timing:
    tick_s: float = TICK_S
    lease_s: int = LEASE_S
    ring_grace_s: float = RING_GRACE_S


class CallbackPlacer:
    """Claims due requests, one per queue at a time, and runs a Placement for each."""

    def __init__(self, ctx: CallContext, store: PlacerStore, timing: Timing = Timing(),
                 place_on: Callable[[], CallContext] | None = None) -> None:
        self.ctx = ctx
        # The context (so the Asterisk node) a new placement dials on: with several nodes, one
        # that is served and not draining, and least busy (hotline.daemon); else `ctx`'s.
        self.place_on = place_on or (lambda: ctx)
        self.store = store
        self.timing = timing
        self.run_id = f"{ctx.node}-{uuid.uuid4().hex[:12]}"  # this daemon's claims
        self.placing: dict[str, Placement] = {}  # queue name -> its request being placed
        self._tasks: set[asyncio.Task[None]] = set()
        self._hours_seen = self._hours_of(ctx.directory.snapshot)
        self._hours_changed = False

    @staticmethod
    def _hours_of(snapshot: Snapshot) -> dict[str, tuple[object, ...]]:
        return {name: (h.time_zone, h.hours, h.holidays) for name, h in snapshot.prov.hotlines.items()}

    def provisioning_changed(self, snapshot: Snapshot) -> None:
        """Provisioning was reloaded: when a hotline's hours changed, the requests waiting for an
        opening are looked at again at the next tick (agents' presence alone changes nothing)."""
        hours = self._hours_of(snapshot)
        if hours != self._hours_seen:
            self._hours_seen, self._hours_changed = hours, True

    async def run(self) -> None:
        while True:
            raise_if_cancelled()
            try:
                await self.tick()
            except (*STORE_DOWN, TimeoutError) as exc:
                raise_if_cancelled()
                log.warning("callbacks: database away (%s); trying again", exc)
            await asyncio.sleep(self.timing.tick_s)

    async def tick(self) -> None:
        """Put back what a dead daemon held, drop what expired, claim what is due."""
        recovered = await self.store.recover()
        if recovered:
            log.info("callbacks %s: their daemon's lease ran out: back in the line", recovered)
        expired = await self.store.expire()
        if expired:
            log.info("callbacks %s expired: dropped", expired)
        if self._hours_changed:
            self._hours_changed = False  # set again by a change while the statement runs
            woken = await self.store.wake_for_opening()
            if woken:
                log.info("callbacks %s: their hotlines' hours changed: looked at again", woken)
        snapshot = self.ctx.directory.snapshot
        free = {queue_id: queue for name, queue in snapshot.prov.queues.items()
                if name not in self.placing and (queue_id := snapshot.id_of("queues", name)) is not None}
        while free:  # one statement when nothing is due, whatever the number of queues
            claimed = await self.store.claim(sorted(free), self.run_id, self.timing.lease_s)
            if claimed is None:
                return
            self._start(Placement(self, free.pop(claimed.queue_id), claimed.queue_id, claimed))

    def _start(self, placement: Placement) -> None:
        self.placing[placement.queue.name] = placement
        placement.ctx.watch(placement.channel_id, placement)
        task = asyncio.create_task(self._own(placement), name=f"callback-{placement.request.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _own(self, placement: Placement) -> None:
        try:
            await placement.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("callback %s crashed", placement.request.id)
        finally:
            self.placing.pop(placement.queue.name, None)
            placement.ctx.unwatch(placement.channel_id)

    async def close(self) -> None:
        """Stop placing: requests not answered yet go back in the line (their lease would run
        out anyway; giving them back now lets another daemon take them at once)."""
        held = [p for p in self.placing.values() if not p.answered]
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for placement in held:
            with contextlib.suppress(*STORE_DOWN, CallbackError, TimeoutError):
                await self.store.release(placement.request.id, self.run_id)


class _AgentGone(Exception):  # noqa: N818 - control flow
    """The agent hung up before the customer was bridged: back in the line for another."""


class Placement:
    """One request being placed: in the line, then the agent, then the customer."""

    def __init__(self, placer: CallbackPlacer, queue: Queue, queue_id: int, request: CallbackRequest) -> None:
        self.placer, self.ctx, self.store = placer, placer.place_on(), placer.store
        self.queue, self.queue_id, self.request = queue, queue_id, request
        self.channel_id = f"{CALLBACK_LEG}{request.id}"
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.answered = False
        self._turn = asyncio.Event()
        self._renewed = time.monotonic()
        self._steps: list[QueueStep] = []  # the agent side's queue events, until the hop exists
        self._hop: Hop | None = None  # the outbound leg's, once the customer is dialled
        self._rung: dict[str, float] = {}  # agent leg -> when it began ringing
        self._rang_ms = 0  # how long the agent who answered was rung

    def post(self, message: Message) -> None:
        self.inbox.put_nowait(message)

    # -- the whole placement ---------------------------------------------------------------------

    async def run(self) -> None:
        opening = await self._next_opening()
        if opening is not None:  # due again then, or at once when the hours change meanwhile
            await self.store.defer(self.request.id, self.placer.run_id, opening)
            log.info("callback %s: its hotline is closed: waits for its opening, %s", self.request.id,
                     opening.isoformat())
            return
        log.info("callback %s: placing for queue %s (%s, joined %s, attempt %d)", self.request.id,
                 self.queue.name, self.request.number, self.request.joined_at.isoformat(),
                 self.request.attempts + 1)
        while True:
            agent, leg = await self._agent_answers()
            try:
                await self._call_customer(agent, leg)
                return
            except _AgentGone:
                log.info("callback %s: %s hung up before the customer answered: next agent", self.request.id,
                         agent.name)
                self.ctx.queues.answer_dropped(agent)
                await self._renew()

    async def _next_opening(self) -> datetime | None:
        """When the hotline the customer called opens next, if it is closed now (a retry due in
        the night waits for the morning); None: open, or not known any more."""
        hotline_id = await self.store.hotline_of(self.request)
        snapshot = self.ctx.directory.snapshot
        names = {ident: name for name, ident in snapshot.ids.get("hotlines", {}).items()}
        hotline = snapshot.prov.hotlines.get(names.get(hotline_id or 0, ""))
        if hotline is None:
            return None
        now = datetime.now(UTC)
        opening = next_opening(hotline, now)
        return opening if opening is not None and opening > now else None

    # -- in the line -----------------------------------------------------------------------------

    async def _agent_answers(self) -> tuple[AgentState, str]:
        """Wait in the queue's line at the request's join time until an agent answers."""
        manager = self.ctx.queues
        waiter = manager.join(self.queue.name, self.channel_id, joined_at=self.request.joined_at.timestamp(),
                              wake=self._turn.set)
        try:
            while True:
                agents = manager.next_attempt(waiter)
                if agents:
                    answered = await self._ring(waiter, agents)
                    if answered is not None:
                        return answered
                    if manager.attempt_over(waiter):
                        await self._wait_for_turn(self.queue.retry)
                    continue
                await self._wait_for_turn(self.placer.timing.lease_s / 3)
        finally:
            manager.leave(waiter)

    async def _wait_for_turn(self, at_most: float) -> None:
        self._turn.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._turn.wait()
        await self._renew()
        self._drain()

    async def _renew(self) -> None:
        if time.monotonic() - self._renewed >= self.placer.timing.lease_s / 3:
            await self.store.renew(self.request.id, self.placer.run_id, self.placer.timing.lease_s)
            self._renewed = time.monotonic()

    def _language(self) -> dict[str, str] | None:
        """The agent's leg speaks the case's language: the whisper tells the agent, in the words
        the customer will use, that this is a callback and to which number."""
        return {"CHANNEL(language)": self.request.language} if self.request.language else None

    def _drain(self) -> None:
        """News about legs no longer rung (a late hangup) is of no use in the line."""
        while not self.inbox.empty():
            self.inbox.get_nowait()

    async def _ring(self, waiter: Waiter, agents: list[AgentState]) -> tuple[AgentState, str] | None:
        """Ring `agents` for the callback; the first to answer, the others hung up."""
        ringing: dict[str, AgentState] = {}
        for agent in agents:
            leg = f"{self.channel_id}-agent-{uuid.uuid4().hex[:8]}"
            self.ctx.watch(leg, self)
            try:
                await self.ctx.ari.originate(
                    f"PJSIP/{agent.endpoint}", self.ctx.app, f"agent,{self.channel_id}", leg,
                    timeout_s=self.queue.ring_timeout,
                    caller_id=agent_caller_id(self.queue.name, self.request.number),
                    formats=originate_formats(agent.capabilities), variables=self._language())
                ringing[leg] = agent
                self._rung[leg] = time.time()
                self._step(QueueEventKind.RING, agent)
                log.info("callback %s: ringing %s first", self.request.id, agent.name)
            except AriError as exc:
                log.info("callback %s: could not ring %s: %s", self.request.id, agent.name, exc)
                self.ctx.unwatch(leg)
                self.ctx.queues.ring_ended(waiter, agent, answered=False)
                self._step(QueueEventKind.RING, agent)
                self._step(QueueEventKind.RING_NOANSWER, agent, ring_ms=0, detail="dial failed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue.ring_timeout + self.placer.timing.ring_grace_s
        answered: tuple[AgentState, str] | None = None
        try:
            while ringing and answered is None:
                message = await self._next(deadline - loop.time())
                if message is None:
                    break
                which = channel_of(message)
                if which is None or which not in ringing:
                    continue
                if isinstance(message, StasisStart):
                    agent = ringing.pop(which)
                    self.ctx.queues.ring_ended(waiter, agent, answered=True)
                    self._rang_ms = self._ring_ms(which)  # the agent's ring, not the customer's
                    answered = agent, which
                elif is_end(message):
                    self.ctx.unwatch(which)
                    agent = ringing.pop(which)
                    self.ctx.queues.ring_ended(waiter, agent, answered=False)
                    self._not_answered(which, agent, f"cause {getattr(message, 'cause', '')}".strip())
        finally:
            for leg, agent in ringing.items():
                await self._hang_up(leg)
                self.ctx.unwatch(leg)
                self.ctx.queues.ring_ended(waiter, agent, answered=False)
                why = f"answered by {answered[0].name}" if answered else "ring timeout"
                self._not_answered(leg, agent, why)
        return answered

    # -- what the placement records ---------------------------------------------------------------

    def _step(self, event: QueueEventKind, agent: AgentState, *, ring_ms: int | None = None,
              talk_ms: int | None = None, detail: str = "") -> None:
        """A queue event of the callback's queue about `agent`, on the outbound leg's hop: written
        now if it exists, else kept (with its time) until the customer is dialled."""
        agent_id = self.ctx.directory.snapshot.id_of("agents", agent.name)
        step = QueueStep(self.queue_id, event, agent_id=agent_id, ring_ms=ring_ms, talk_ms=talk_ms,
                         detail=detail)
        if self._hop is None:
            self._steps.append(step)
        else:
            self.ctx.records.submit(step.record(self._hop))

    def _not_answered(self, leg: str, agent: AgentState, why: str) -> None:
        """A ring of `agent` that led to no talk (an agent who answered: rung as long as they were)."""
        ring_ms = self._ring_ms(leg) if leg in self._rung else self._rang_ms
        self._step(QueueEventKind.RING_NOANSWER, agent, ring_ms=ring_ms, detail=why)

    def _ring_ms(self, leg: str) -> int:
        started = self._rung.pop(leg, None)
        return 0 if started is None else int((time.time() - started) * 1000)

    def _hop_opened(self, hop: Hop) -> None:
        """The outbound leg's hop exists: what the agent side recorded so far is written on it."""
        self._hop = hop
        for step in self._steps:
            self.ctx.records.submit(step.record(hop))
        self._steps.clear()

    async def _next(self, timeout: float) -> Message | None:
        """The next message within `timeout` (renewing the lease meanwhile), or None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, self.placer.timing.lease_s / 3)):
                    return await self.inbox.get()
            if not self.answered:
                await self._renew()
        return None

    # -- the agent, then the customer -------------------------------------------------------------

    async def _call_customer(self, agent: AgentState, agent_leg: str) -> None:
        """Whisper to the agent, dial the customer, bridge them, follow the talk to its end."""
        ari, request = self.ctx.ari, self.request
        await self._play_to_agent(agent, agent_leg, whisper_media(request.number, request.language))
        trunks = list(self.ctx.directory.snapshot.prov.trunks.values())
        bridge = f"case-{request.case_id}"
        try:
            caller_id = trunk_for(trunks, request.number).caller_id
        except DialRefused as refused:  # the trunk that allowed it is gone since
            log.warning("callback %s: %s", request.id, refused)
            await self._end_unanswered(agent, agent_leg, bridge, str(refused))
            return
        customer = f"{self.channel_id}-customer-{uuid.uuid4().hex[:8]}"
        hop = await self.store.open_hop(request, node=self.ctx.node, channel_id=customer, caller_id=caller_id)
        self._hop_opened(hop)
        self.ctx.watch(customer, self)
        try:
            await ari.create_bridge(bridge)
            await ari.add_to_bridge(bridge, [agent_leg])
            ringback = await ari.play(agent_leg, "tone:ring")
            # the customer hears any prompt in the language of the call that asked
            trunk = await dial_out(ari, trunks, request.number, app=self.ctx.app,
                                   app_args=f"callback,{request.id}", channel_id=customer,
                                   variables={"CHANNEL(language)": hop.language} if hop.language else None)
        except (AriError, DialRefused) as exc:
            log.warning("callback %s: customer not dialled: %s", request.id, exc)
            self._not_answered(agent_leg, agent, "caller gone")
            self._close(hop, EndReason.FAILED, None, str(exc))
            await self._end_unanswered(agent, agent_leg, bridge, f"not dialled: {exc}")
            return
        try:
            answered, cause = await self._customer_answers(agent_leg, customer, trunk.ring_timeout)
        except _AgentGone:  # the customer's ring was hung up: this leg's hop ends with it
            self._not_answered(agent_leg, agent, "agent gone before the bridge")
            self._close(hop, EndReason.FAILED, None, "the agent hung up before the customer answered")
            raise
        if not answered:
            # the customer, not the agent, did not answer: no miss of the agent's
            self._not_answered(agent_leg, agent, "caller gone")
            self._close(hop, EndReason.FAILED, *cause)
            await self._end_unanswered(agent, agent_leg, bridge, f"not answered ({cause[1] or cause[0]})")
            return
        # Durable first: from here on the callback is done, whatever happens to this daemon.
        await self.store.answered(request.id, self.placer.run_id)
        self.answered = True
        with contextlib.suppress(AriError):
            await ari.stop_playback(ringback)
        await ari.add_to_bridge(bridge, [customer])
        agent_id = self.ctx.directory.snapshot.id_of("agents", agent.name)
        self.ctx.records.submit(TalkTakenOver(self.queue_id, agent_id).record(hop))
        self._step(QueueEventKind.ANSWER, agent, ring_ms=self._rang_ms)
        log.info("callback %s: %s talking with %s (hop %s)", request.id, agent.name, request.number, hop.id)
        talk = Talk(hop, self.queue.name, self.queue_id, agent, agent_id, agent_leg, customer, time.time(),
                    bridge)
        await follow(self.ctx, self.inbox, talk)

    async def _play_to_agent(self, agent: AgentState, agent_leg: str, media: str) -> None:
        """The whisper, to its end; _AgentGone when the agent hangs up meanwhile."""
        try:
            playback = await self.ctx.ari.play(agent_leg, media)
        except AriError as exc:
            self._not_answered(agent_leg, agent, "agent gone before the bridge")
            raise _AgentGone() from exc
        while True:
            message = await self._next(60.0)
            if message is None or (isinstance(message, PlaybackFinished) and message.playback_id == playback):
                return
            if is_end(message) and channel_of(message) == agent_leg:
                self.ctx.unwatch(agent_leg)
                self._not_answered(agent_leg, agent, "agent gone before the bridge")
                raise _AgentGone()

    async def _customer_answers(self, agent_leg: str, customer: str,
                                ring_timeout_s: int) -> tuple[bool, tuple[int | None, str]]:
        """Whether the customer answered; if not, the cause their leg ended with. _AgentGone (the
        customer's ring hung up) when the agent leaves first."""
        deadline = ring_timeout_s + self.placer.timing.ring_grace_s  # the trunk's, Asterisk's first
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline
        while (message := await self._next(until - loop.time())) is not None:
            leg = channel_of(message)
            if leg == customer and isinstance(message, StasisStart):
                return True, (None, "")
            if leg == customer and isinstance(message, ChannelDestroyed):
                return False, (message.cause, message.cause_txt)
            if leg == agent_leg and is_end(message):
                await self._hang_up(customer)
                self.ctx.unwatch(customer)
                raise _AgentGone()
        await self._hang_up(customer)
        return False, (None, "no answer")

    async def _end_unanswered(self, agent: AgentState, agent_leg: str, bridge: str, why: str) -> None:
        """The customer did not answer: the agent is free at once, and the request is tried again
        after the queue's interval, or given up."""
        self.ctx.queues.answer_dropped(agent)
        await self._release_bridge(bridge, [agent_leg])
        attempts = self.request.attempts + 1
        decision = after_unanswered(rules_of(self.queue), attempts=attempts,
                                    requested_at=self.request.requested_at, now=datetime.now(UTC))
        if isinstance(decision, GiveUp):
            await self.store.unanswered(self.request.id, self.placer.run_id, retry_at=None,
                                        give_up_as=decision.status, detail=f"{decision.detail}; last: {why}")
            log.info("callback %s: %s; given up (%s)", self.request.id, why, decision.status)
        else:
            await self.store.unanswered(self.request.id, self.placer.run_id, retry_at=decision.due_at,
                                        detail=why)
            log.info("callback %s: %s; tried again at %s", self.request.id, why, decision.due_at.isoformat())

    def _close(self, hop: Hop, reason: EndReason, cause: int | None, cause_text: str) -> None:
        self.ctx.records.submit(HopEnded(reason, cause, cause_text).record(hop))

    async def _release_bridge(self, bridge: str, legs: list[str]) -> None:
        await release(self.ctx, bridge, legs)

    async def _hang_up(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.ari.hangup(channel_id, "normal")

