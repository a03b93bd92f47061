"""A caller's time in a queue, run by the caller's own task: join, wait with music, ring agents as
the strategy says, bridge with the one who answers, and record every step as a queue event.

The visit has no state of its own: it moves its call (WAITING, RINGING, TALKING, LEAVING) through
the call's one funnel, each move with the queue events it makes, and reads the call's inbox only
through the call's one reader. It knows the call by the small `VisitCall` protocol, so the call
module depends on it and not the other way round.

Outcomes: TalkOver (the caller talked with an agent, and the call is leaving), Overflow (max
wait, max length, nobody to take the call: follow the queue's overflow target), BrokeOut (the
caller pressed a key of the queue's breakout menu and goes where it leads) or Transferred (the
agent passed the talk on to a queue or a hotline: engine.transfer). A caller hanging up
raises CallerGone through the visit, which records the abandon (or the complete) on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn, Protocol

from hotline.asterisk.ari_events import (
    Channel,
    ChannelDestroyed,
    ChannelHangupRequest,
    StasisEnd,
    StasisStart,
)
from hotline.engine.call_state import CallState
from hotline.engine.camera import note_camera, to_sfu
from hotline.engine.context import CallContext
from hotline.engine.facts import Fact, KeyPressed, QueueStep, TalkTakenOver, TransferNoted
from hotline.engine.leg import CUT_BY_SHUTDOWN, is_shutdown_hangup
from hotline.engine.messages import (
    CallerGone,
    CameraTurned,
    ChannelVanished,
    HandoverAsked,
    HangingUp,
    Message,
    QueueTurn,
    TransferAsked,
)
from hotline.engine.outcomes import EndReason, Party, QueueEventKind
from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.queueing.queues import Waiter, video_preference
from hotline.engine.queueing.talk import Ringing, Talk
from hotline.engine.transfer import ARI_TRANSFERS, TRANSFER_DONE, TRANSFER_REFUSED, transfer_target
from hotline.errors import AriError, AriNotFound, TransferRefused
from hotline.media import case_bridge_type, originate_formats
from hotline.provision.model import Queue, Target, TargetAction
from hotline.store.hops import Hop

log = logging.getLogger(__name__)

E = QueueEventKind


class VisitCall(Protocol):
    """What a queue visit needs of its call (engine.call.InboundCall provides it)."""

    channel: Channel
    video: bool
    web: bool  # a customer's browser
    meant_to_hang_up: bool  # ... whose page's Hang up was pressed: its leg going is no drop
    @property
    def may_come_back(self) -> bool: ...
    awaiting_rejoin: str | None  # the agent's endpoint while the talk waits for the page to come back
    video_bridge: bool  # its talk moved to the case's SFU bridge (engine.camera): bridge_id says which
    state: CallState
    transferred: bool  # passed here by a transfer: answered and talked already

    @property
    def channel_id(self) -> str: ...
    @property
    def hop(self) -> Hop | None: ...
    @property
    def bridge_id(self) -> str: ...
    @property
    def case_id(self) -> int | None: ...
    async def case_known(self) -> None: ...
    @property
    def preferred_agent(self) -> str | None: ...
    @property
    def is_up(self) -> bool: ...
    @property
    def cut(self) -> bool: ...
    def move(self, new: CallState, *facts: Fact) -> None: ...
    def leave(self, reason: EndReason, *facts: Fact) -> None: ...
    def reason_caller_left(self) -> EndReason: ...
    @property
    def shut_down(self) -> bool: ...
    def cut_by_shutdown(self) -> None: ...
    async def next_event(self, timeout: float | None = None) -> Message | None: ...
    def unexpected(self, message: Message) -> None: ...
    def is_own_key(self, message: Message | None) -> bool: ...
    def wake(self) -> None: ...
    def watch(self, channel_id: str) -> None: ...
    def unwatch(self, channel_id: str) -> None: ...
    def take_answer(self) -> bool: ...
    async def answer(self) -> None: ...
    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None: ...
    async def until_caller_gone(self) -> NoReturn: ...


@dataclass(frozen=True)
class TalkOver:
    """The caller talked with an agent; the call is leaving for `reason`."""

    reason: EndReason


@dataclass(frozen=True)
class Overflow:
    target: Target
    why: str


@dataclass(frozen=True)
class BrokeOut:
    target: Target
    digit: str


@dataclass(frozen=True)
class Transferred:
    """The agent passed the caller on: the talk is over, the call goes to `target`."""

    target: Target


TalkEnd = TalkOver | Transferred  # how a talk ends: over, or passed on by a transfer
VisitOutcome = TalkOver | Overflow | BrokeOut | Transferred


class _KeyPressed(Exception):  # noqa: N818 - control flow, not an error
    """Control flow: a breakout key, raised from wherever the caller was waiting or being rung."""

    def __init__(self, digit: str, target: Target) -> None:
        super().__init__(digit)
        self.digit, self.target = digit, target


class QueueVisit:
    def __init__(self, call: VisitCall, ctx: CallContext, queue: Queue) -> None:
        self.call = call
        self.ctx = ctx
        self.queue = queue
        self.manager = ctx.queues
        snapshot = ctx.directory.snapshot
        self.queue_id = snapshot.id_of("queues", queue.name)
        self.agent_ids = snapshot.ids.get("agents", {})
        self.waiter: Waiter | None = None
        self._looked_at = 0.0  # when (by the queues' clock) the caller last asked them for agents
        # The hop whose visit this is: the call's own, or, for a talk taken over by the customer's
        # video leg, the phone leg's (its join and answer are there; its complete goes there too).
        self.visit_hop: Hop | None = call.hop
        # Answer + music on hold, a job started the moment the caller has to wait; None until then.
        self._music: asyncio.Task[None] | None = None

    # -- ways in ---------------------------------------------------------------------------------

    async def run(self) -> VisitOutcome:
        q = self.queue
        if q.max_len is not None and self.manager.length(q.name) >= q.max_len:
            return self._overflow("max_len")
        if not q.join_empty and self.manager.logged_in_members(q.name) == 0:
            return self._overflow("empty")
        await self.call.case_known()
        self.waiter = self.manager.join(q.name, self.call.channel_id, video=self.call.video,
                                        preferred=self.call.preferred_agent, wake=self.call.wake)
        position = self.manager.position(self.waiter)
        log.info("call %s joined queue %s at position %d", self.call.channel_id, q.name, position)
        # Dated when the line says the caller joined: every wait (max wait, the video fallback) counts
        # from that instant, so the record and the deadlines agree.
        joined = datetime.fromtimestamp(self.waiter.joined_at, UTC)
        self.call.move(CallState.WAITING, *self._step(E.JOIN, position=position, at=joined))
        # No answer and no music yet, unless the queue says so (ringback 0): a free agent is rung
        # first, and a caller it answers at once needed neither (round trips to Asterisk fewer,
        # no music started).
        if not q.ringback or self.call.transferred:  # a transferred caller is answered: music at once
            self._start_music()
        return await self._in_line()

    async def resume_waiting(self, joined_at: float) -> VisitOutcome:
        """After a daemon restart: back in line at the place the database says, no second join."""
        self.waiter = self.manager.join(self.queue.name, self.call.channel_id, joined_at=joined_at,
                                        video=self.call.video, wake=self.call.wake)
        log.info("call %s back in queue %s at position %d after a restart", self.call.channel_id,
                 self.queue.name, self.manager.position(self.waiter))
        self.call.move(CallState.WAITING)
        self._start_music()
        return await self._in_line()

    async def resume_talk(self, agent_name: str, agent_channel_id: str, answered_at: float) -> TalkEnd:
        """After a daemon restart: the caller is still bridged with the agent; follow the talk."""
        agent = self.manager.adopt_talking(agent_name, self.queue.name)
        if agent is None:
            self.call.leave(EndReason.COMPLETED)
            return TalkOver(EndReason.COMPLETED)
        self.call.watch(agent_channel_id)
        self.call.move(CallState.TALKING)
        return await self._follow_talk(Ringing(agent, agent_channel_id, answered_at), answered_at)

    async def resume_unrecorded_talk(self, agent_leg: Channel, joined_at: float) -> TalkEnd | None:
        """After a daemon killed between a bridge and the write-behind's next batch: the caller is
        in the case's bridge with an agent, but the hop still says waiting (the answer was never
        written). The talk goes on and its answer is recorded now, once. None: the leg is no
        agent's this daemon knows."""
        agent = next((a for a in self.manager.agents.values() if a.endpoint == agent_leg.endpoint), None)
        if agent is None:
            return None
        self.manager.adopt_talking(agent.name, self.queue.name)
        self.call.watch(agent_leg.id)
        answered_at = time.time()
        log.info("call %s: talking with %s, answered before the restart", self.call.channel_id, agent.name)
        self.call.move(CallState.TALKING, *self._step(E.ANSWER, agent=agent,
                                                      wait_ms=_ms(answered_at - joined_at)))
        return await self._follow_talk(Ringing(agent, agent_leg.id, answered_at), answered_at)

    async def take_over_talk(self, talk: Talk) -> TalkEnd:
        """The customer's video leg, now in the case's bridge, goes on with the talk of the leg it
        replaced: same agent, same visit; the agent's leg never left the bridge."""
        self.visit_hop = talk.visit_hop
        leg = talk.leg
        self.call.watch(leg.channel_id)
        self.call.move(CallState.TALKING, TalkTakenOver(self.queue_id, self.agent_ids.get(leg.agent.name)))
        if not await self._channel_exists(leg.channel_id):  # the agent hung up during the handover
            return await self._talk_ended(leg, talk.answered_at, Party.AGENT)
        return await self._follow_talk(leg, talk.answered_at)

    # -- in line ---------------------------------------------------------------------------------

    async def _in_line(self) -> VisitOutcome:
        try:
            outcome = await self._wait_and_ring()
            if not isinstance(outcome, TalkOver):
                await self._stop_music()  # what comes next (a menu, a queue's own music) plays alone
            return outcome
        except CallerGone:
            if self.call.state in (CallState.WAITING, CallState.RINGING):
                self._abandoned()
            raise
        finally:
            if self._music is not None and not self._music.done():
                self._music.cancel()
            if self.waiter is not None:
                self.manager.leave(self.waiter)

    def _abandoned(self) -> None:
        """The caller hung up in line, or while rung (its place: None once an agent answered)."""
        facts = () if self.call.cut else self._step(
            E.ABANDON, position=self.manager.place(self.waiter_), wait_ms=self._waited_ms())
        self.call.leave(self.call.reason_caller_left(), *facts)

    async def _wait_and_ring(self) -> VisitOutcome:
        try:
            return await self._wait_for_an_agent()
        except _KeyPressed as key:
            log.info("call %s left queue %s with key %s for %s", self.call.channel_id, self.queue.name,
                     key.digit, key.target)
            self.call.move(CallState.WAITING, *self._step(E.EXIT_KEY, wait_ms=self._waited_ms(),
                                                          detail=key.digit), KeyPressed(key.digit))
            return BrokeOut(key.target, key.digit)

    async def _wait_for_an_agent(self) -> VisitOutcome:
        q, joined_at = self.queue, self.waiter_.joined_at  # back in line, a caller keeps its place
        next_announcement = joined_at + q.announce_period if q.announce_period else None
        while True:
            if next_announcement is not None and time.time() >= next_announcement:
                self._ensure_music()
                await self._announce()
                next_announcement += q.announce_period or 0  # every period since joining
            if q.max_wait is not None and time.time() - joined_at >= q.max_wait:
                return self._overflow("max_wait")
            self._looked_at = self.manager.clock()
            agents = self.manager.next_attempt(self.waiter_)
            if not agents:
                self._ensure_music()
                await self._sleep_until(self._next_deadline(next_announcement))
                continue
            talked = await self._attempt(agents)
            if talked is not None:
                return talked
            self._ensure_music()  # nobody answered at once: the caller waits
            if self.manager.attempt_over(self.waiter_):  # the strategy's cycle is used up: retry later
                await self._sleep_until(min(time.time() + q.retry, self._next_deadline(next_announcement)))

    async def _attempt(self, agents: list[AgentState]) -> TalkEnd | None:
        """Ring `agents`; the talk with the one who answers, or None (the caller waits on)."""
        answered = await self._ring(agents)
        if answered is None:
            self.call.move(CallState.WAITING)
            return None
        self._out_of_line()
        talked = await self._talk(*answered)
        if talked is None:
            self._back_in_line()  # the agent's leg went before the bridge: wait on
        return talked

    def _next_deadline(self, next_announcement: float | None) -> float:
        """When a waiting caller must look again with no news from the queue: its announcement,
        its max wait, or the end of its video-only wait. Infinity: only news wakes it."""
        q, joined = self.queue, self.waiter_.joined_at
        deadlines = [next_announcement or float("inf")]
        if q.max_wait is not None:
            deadlines.append(joined + q.max_wait)
        # The end of the video-only wait, unless the queues were last asked after it (by their
        # clock): asked a hair before it, they answered video agents only, and the caller must
        # look again at that end even if it has passed by the time this is computed.
        video_only, _ = video_preference(q, self.waiter_, self._looked_at)
        if video_only and q.video_fallback is not None:
            deadlines.append(joined + q.video_fallback)
        return min(deadlines)

    async def _sleep_until(self, deadline: float) -> None:
        """Wait for news from the queue (QueueTurn) or `deadline`; a breakout key raises."""
        while (left := deadline - time.time()) > 0:
            message = await self.call.next_event(None if left == float("inf") else left)
            if isinstance(message, QueueTurn):
                return
            if message is not None:  # None: the timer fired (maybe a hair early: wait out the rest)
                self._caller_key(message)
        await asyncio.sleep(0)  # a deadline already past: the others run before the caller looks again

    def _caller_key(self, message: Message) -> None:
        """A message met while waiting or ringing that is not the visit's own: the caller's key
        (a breakout key raises _KeyPressed), or nothing the visit expects."""
        if self.call.is_own_key(message):
            self._check_key(message.digit)  # type: ignore[union-attr]
        else:
            self.call.unexpected(message)

    def _overflow(self, why: str) -> Overflow:
        """Leave for the queue's overflow target: waited too long (max_wait), or never joined
        because the queue was full (max_len) or had nobody logged in (join_empty = false)."""
        waited = self._waited_ms() if self.waiter is not None else 0
        self.call.move(self.call.state, *self._step(E.OVERFLOW, wait_ms=waited,
                                                    detail=f"{why}: {self.queue.overflow}"))
        log.info("call %s: overflow from queue %s (%s) to %s", self.call.channel_id, self.queue.name, why,
                 self.queue.overflow)
        return Overflow(self.queue.overflow, why)

    def _out_of_line(self) -> None:
        """Answered: the callers behind move up (positions, max_len and who rings next count
        waiting callers only)."""
        self.manager.leave(self.waiter_)

    def _back_in_line(self) -> None:
        """In line again at the place the caller had (its join time), with its music, and on in
        its ringing cycle: the next attempt rings the next agent, not again the one whose phone
        just dropped the call (a phone that answers and hangs up would otherwise hold the caller
        in a loop)."""
        before = self.waiter_
        self.waiter = self.manager.join(self.queue.name, self.call.channel_id, joined_at=before.joined_at,
                                        video=self.call.video, wake=self.call.wake)
        self.waiter.cycle = before.cycle
        self.call.move(CallState.WAITING)
        self._start_music()

    async def _announce(self) -> None:
        """app_queue's periodic announcement: "you are now first in line", or "there are N calls
        waiting" (those ahead of this caller), then, where the queue says so, the estimated hold
        time; the music stops for it and then resumes. A breakout key cuts it short."""
        ahead = self.manager.position(self.waiter_) - 1
        media = ["sound:queue-youarenext"] if ahead == 0 else [
            "sound:queue-thereare", f"number:{ahead}", "sound:queue-callswaiting"]
        estimate = self.manager.estimated_wait(self.waiter_) if self.queue.announce_holdtime else None
        if estimate is not None:
            media += holdtime_media(estimate)
        await self._music_started()
        await self.ctx.ari.stop_moh(self.call.channel_id)
        try:
            digit = await self.call.play(",".join(media), stop_on_digit=self.queue.breakout_menu is not None)
            if digit is not None:
                self._check_key(digit)
        finally:
            if self.call.is_up:
                await self.ctx.ari.start_moh(self.call.channel_id, self.queue.music)
        log.info("call %s: announced in queue %s: %d ahead, hold time %s", self.call.channel_id,
                 self.queue.name, ahead, "-" if estimate is None else f"{estimate:.0f} s")

    def _check_key(self, digit: str) -> None:
        """Raise _KeyPressed when `digit` is a key of the queue's breakout menu; other keys do
        nothing (app_queue ignores keys with no extension in its context)."""
        menu = self.ctx.directory.snapshot.prov.menus.get(self.queue.breakout_menu or "")
        option = next((o for o in menu.options if o.digit == digit), None) if menu else None
        if option is not None and option.target.action != TargetAction.REPEAT:
            raise _KeyPressed(digit, option.target)

    # -- music: a job of the call's, which touches Asterisk only -----------------------------------

    def _start_music(self) -> None:
        """Answer and start the music on hold, in the background (two round trips to Asterisk);
        whatever needs them done awaits _music_started(). The call counts as answered from now."""
        answer = self.call.take_answer()
        self._music = asyncio.create_task(self._answer_with_music(answer),
                                          name=f"music-{self.call.channel_id}")

    def _ensure_music(self) -> None:
        if self._music is None:
            self._start_music()

    async def _answer_with_music(self, answer: bool) -> None:
        try:
            if answer:
                await self.ctx.ari.answer(self.call.channel_id)
            await self.ctx.ari.start_moh(self.call.channel_id, self.queue.music)
        except AriError as exc:  # the caller hung up meanwhile: its events end the visit
            log.info("call %s: no music on hold (%s)", self.call.channel_id, exc)

    async def _music_started(self) -> None:
        if self._music is not None:
            await asyncio.gather(self._music, return_exceptions=True)

    async def _stop_music(self) -> None:
        if self._music is None:
            return
        await self._music_started()
        if self.call.is_up:
            with contextlib.suppress(AriError):
                await self.ctx.ari.stop_moh(self.call.channel_id)

    # -- ringing -------------------------------------------------------------------------------

    async def _ring(self, agents: list[AgentState]) -> tuple[Ringing, float] | None:
        """Ring the attempt's agents; the first to answer wins, the others are hung up."""
        started = time.time()
        self.call.move(CallState.RINGING, *[f for agent in agents for f in self._step(E.RING, agent=agent)])
        steps: list[Awaitable[Ringing | None]] = [self._dial(agent) for agent in agents]
        if self._music is None:  # the first attempt: every later one comes after the music
            steps.append(self._ringback())
        legs = await asyncio.gather(*steps)
        ringing = {leg.channel_id: leg for leg in legs if leg is not None}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue.ring_timeout + self.ctx.ring_grace_s  # Asterisk's first
        music_due = loop.time() + self.queue.ringback
        why_not = "ring timeout"
        try:
            while ringing and loop.time() < deadline:
                until = deadline if self._music is not None else min(deadline, music_due)
                message = await self.call.next_event(until - loop.time())
                if message is None:
                    if self._music is None and loop.time() >= music_due:
                        self._start_music()  # rung too long to leave the caller unanswered
                    continue
                leg = ringing.get(_channel_of(message) or "")
                if leg is None:
                    self._caller_key(message)
                elif isinstance(message, StasisStart):
                    del ringing[leg.channel_id]
                    self.manager.ring_ended(self.waiter_, leg.agent, answered=True)
                    why_not = f"answered by {leg.agent.name}"
                    return leg, started
                elif isinstance(message, ChannelDestroyed | StasisEnd):
                    del ringing[leg.channel_id]
                    self._no_answer(leg, f"cause {getattr(message, 'cause', '')}".strip())
                else:
                    self.call.unexpected(message)
        except _KeyPressed:
            why_not = "caller left the queue"
            raise
        finally:
            for leg in list(ringing.values()):  # timed out, or lost to another agent, or caller gone
                await self._hang_up(leg.channel_id)
                self._no_answer(leg, why_not if self.call.is_up else "caller gone")
        return None

    async def _ringback(self) -> None:
        """The caller, not answered yet, hears ringing while its first agents ring."""
        try:
            await self.ctx.ari.ring(self.call.channel_id)
        except AriError as exc:  # gone meanwhile: its events end the visit
            log.info("call %s: no ringing indication (%s)", self.call.channel_id, exc)

    async def _dial(self, agent: AgentState) -> Ringing | None:
        channel_id = f"{self.call.channel_id}-agent-{uuid.uuid4().hex[:8]}"
        log.info("call %s: ringing %s (%s) for queue %s", self.call.channel_id, agent.name, agent.endpoint,
                 self.queue.name)
        self.call.watch(channel_id)
        leg = Ringing(agent, channel_id, time.time())
        try:
            await self.ctx.ari.originate(
                f"PJSIP/{agent.endpoint}", self.ctx.app, f"agent,{self.call.channel_id}", channel_id,
                timeout_s=self.queue.ring_timeout, caller_id=self.call.channel.caller_num,
                formats=originate_formats(agent.capabilities), variables=ARI_TRANSFERS)
        except AriError as exc:  # not registered, unknown endpoint: next agent
            log.info("queue %s: could not ring %s: %s", self.queue.name, agent.name, exc)
            self._no_answer(leg, "dial failed")
            return None
        return leg

    def _no_answer(self, leg: Ringing, why: str) -> None:
        self.manager.ring_ended(self.waiter_, leg.agent, answered=False)
        self.call.unwatch(leg.channel_id)
        self.call.move(self.call.state, *self._step(E.RING_NOANSWER, agent=leg.agent,
                                                    ring_ms=_ms(time.time() - leg.started), detail=why))

    async def _hang_up(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.ari.hangup(channel_id, "normal")

    # -- talking -------------------------------------------------------------------------------

    async def _talk(self, leg: Ringing, ring_started: float) -> TalkEnd | None:
        """Caller and agent in the case's mixing bridge until one of them hangs up. None: the
        agent's leg went before it was bridged, and the caller waits on."""
        call, ari = self.call, self.ctx.ari
        bridge_type = case_bridge_type(call.video, leg.agent.video, web=call.web)
        call.video_bridge = False  # a new talk (after a transfer): the case's own bridge again
        try:
            if self._music is None:  # answered by the agent while still ringing: answer it now
                await _all(call.answer(), ari.create_bridge(call.bridge_id, bridge_type))
            else:
                await self._music_started()
                await ari.stop_moh(call.channel_id)
                await ari.create_bridge(call.bridge_id, bridge_type)
            await ari.add_to_bridge(call.bridge_id, [call.channel_id, leg.channel_id])
        except AriError as exc:
            await self._not_bridged(leg, exc)
            return None
        answered_at = time.time()
        call.move(CallState.TALKING, *self._step(E.ANSWER, agent=leg.agent,
                                                 wait_ms=self._waited_ms(answered_at),
                                                 ring_ms=_ms(answered_at - leg.started)))
        return await self._follow_talk(leg, answered_at)

    async def _not_bridged(self, leg: Ringing, exc: AriError) -> None:
        """One of the two hung up between the agent's answer and the bridge. The agent is free
        again at once (its leg hung up, no call counted); the caller, if still here, waits on;
        if not, its hangup is on its way to the inbox, and meets the caller gone there."""
        await self._hang_up(leg.channel_id)
        self.manager.answer_dropped(leg.agent)
        self.call.unwatch(leg.channel_id)
        caller_here = await self._channel_exists(self.call.channel_id) and self.call.is_up
        gone = "agent" if caller_here else "caller"
        self.call.move(self.call.state, *self._step(
            E.RING_NOANSWER, agent=leg.agent, ring_ms=_ms(time.time() - leg.started),
            detail=f"{gone} gone before the bridge"))
        log.info("call %s: not bridged with %s (%s)", self.call.channel_id, leg.agent.name, exc)
        if not caller_here:  # abandoned at the last moment: counted like any abandon
            with contextlib.suppress(AriError):  # it may have been created for the two of them
                await self.ctx.ari.destroy_bridge(self.call.bridge_id)
            await self.call.until_caller_gone()

    async def _follow_talk(self, leg: Ringing, answered_at: float) -> TalkEnd:
        try:
            ended = await self._until_talk_ends(leg)
        except CallerGone:
            back = await self._until_back(leg) if self._may_come_back() else None
            if back is not None:
                return self._hand_over(back, leg, answered_at)
            await self._talk_ended(leg, answered_at, Party.CALLER)
            raise
        if isinstance(ended, HandoverAsked):
            return self._hand_over(ended, leg, answered_at)
        if isinstance(ended, tuple):
            return await self._transfer(*ended, leg, answered_at)
        return await self._talk_ended(leg, answered_at, ended)

    async def _until_talk_ends(self, leg: Ringing) -> Party | HandoverAsked | tuple[TransferAsked, Target]:
        """While talking: the agent hanging up, the customer's video leg asking for the talk, or
        a transfer asked (one the daemon cannot do is refused, and the talk goes on); the caller's
        switch key asks for a link to move to video."""
        while True:
            message = await self.call.next_event()
            if isinstance(message, TransferAsked):
                target = await self._transfer_target(message, leg)
                if target is not None:
                    return message, target
                continue
            if isinstance(message, HandoverAsked) and not message.reply.done():
                if self.visit_hop is not None:
                    return message
            elif self.call.is_own_key(message) and _digit(message) == self.ctx.switch_key:
                if self.ctx.ask_switch is not None and self.call.hop is not None:
                    self.ctx.ask_switch(self.call.hop.id)
                    continue
            elif isinstance(message, CameraTurned):
                await self._camera_turned(message)
                continue
            elif isinstance(message, HangingUp):
                self.call.meant_to_hang_up = True
                continue
            elif _is_end_of(message, leg.channel_id):
                if is_shutdown_hangup(message):
                    self.call.cut_by_shutdown()  # the agent's leg heard it first
                return Party.AGENT
            if message is not None:
                self.call.unexpected(message)

    def _may_come_back(self) -> bool:
        """A customer's web leg that dropped (not hung up with the page's button, nor cut by
        Asterisk going down) may come back into its talk within web_rejoin_grace."""
        call = self.call
        return (call.may_come_back and not call.shut_down and not call.cut
                and self.ctx.rejoin_grace_s > 0 and self.visit_hop is not None)

    async def _until_back(self, leg: Ringing) -> HandoverAsked | None:
        """The agent stays in the bridge (their page shows a notice) until the same customer's page
        calls again (its leg asks for the talk), the agent hangs up, or the grace period passes."""
        call, loop = self.call, asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.rejoin_grace_s
        call.awaiting_rejoin = leg.agent.endpoint
        log.info("call %s: the customer's web leg dropped: %s waits up to %.0f s for them", call.channel_id,
                 leg.agent.name, self.ctx.rejoin_grace_s)
        try:
            while (message := await call.next_event(deadline - loop.time())) is not None:
                if isinstance(message, HandoverAsked) and not message.reply.done():
                    return message
                if _is_end_of(message, leg.channel_id):
                    return None
                call.unexpected(message)
            log.info("call %s: the customer did not come back within %.0f s", call.channel_id,
                     self.ctx.rejoin_grace_s)
            return None
        finally:
            call.awaiting_rejoin = None

    async def _camera_turned(self, turned: CameraTurned) -> None:
        """The customer's camera went on or off (engine.camera): recorded, and video coming into a
        plain mixing bridge moves the talk to an SFU one. A move that fails leaves the talk as it
        was: the sound still flows."""
        if note_camera(self.call, turned):
            try:
                self.call.video_bridge = await to_sfu(self.ctx.ari, self.call.bridge_id) is not None
            except AriError as exc:
                log.warning("call %s: the talk could not move to an SFU bridge: %s",
                            self.call.channel_id, exc)

    def _hand_over(self, asked: HandoverAsked, leg: Ringing, answered_at: float) -> TalkOver:
        """Give the talk to the video leg that joined the bridge: it goes on there, this leg goes."""
        assert self.visit_hop is not None
        self.call.unwatch(leg.channel_id)
        asked.reply.set_result(Talk(self.queue, leg, answered_at, self.visit_hop))
        log.info("call %s: talk with %s handed over to video leg %s", self.call.channel_id,
                 leg.agent.name, asked.video_channel_id)
        self.call.leave(EndReason.SWITCHED)
        return TalkOver(EndReason.SWITCHED)

    async def _transfer_target(self, asked: TransferAsked, leg: Ringing) -> Target | None:
        """Where the transfer goes, or None: refused (recorded, and told to the phone that asked),
        and the talk goes on."""
        try:
            if asked.kind != "blind":
                raise TransferRefused("attended transfers from the phone are not taken yet")
            if asked.refer_leg not in (None, leg.channel_id):
                raise TransferRefused("the REFER came on a leg that is not this talk's agent")
            return transfer_target(self.ctx.directory.snapshot.prov, asked.target)
        except TransferRefused as refused:
            why = str(refused)
        log.info("call %s: transfer to %r asked by %s refused: %s", self.call.channel_id, asked.target,
                 asked.asked_by, why)
        self.call.move(CallState.TALKING, TransferNoted(
            asked.request, asked.asked_by, asked.target or "(none)", "refused", why, kind=asked.kind,
            from_queue_id=self.queue_id, from_agent_id=self.agent_ids.get(leg.agent.name)))
        await self._report_transfer(asked, TRANSFER_REFUSED)
        return None

    async def _transfer(self, asked: TransferAsked, target: Target, leg: Ringing,
                        answered_at: float) -> Transferred:
        """Blind: the talk ends with its complete and a transfer event, the agent goes to wrap-up
        and leaves (a phone that sent a REFER hears it done first), and the caller, out of the
        case's bridge (which goes, with anyone brought into the talk), goes on to the target; its
        next visit joins with music at once."""
        call, to = self.call, str(target)
        self.manager.call_ended(leg.agent, self.queue.name)
        call.unwatch(leg.channel_id)
        agent_id = self.agent_ids.get(leg.agent.name)
        call.move(CallState.TALKING,
                  *self._step(E.COMPLETE, agent=leg.agent, talk_ms=_ms(time.time() - answered_at),
                              detail=f"transferred to {to}"),
                  *self._step(E.TRANSFER, agent=leg.agent, detail=to),
                  TransferNoted(asked.request, asked.asked_by, to, "transferred",
                                from_queue_id=self.queue_id, from_agent_id=agent_id))
        log.info("call %s: %s transferred by %s to %s", call.channel_id, leg.agent.name, asked.asked_by, to)
        await self._report_transfer(asked, TRANSFER_DONE)
        await self._hang_up(leg.channel_id)
        for participant in self.ctx.conference_legs(call.case_id or 0):
            await self._hang_up(participant)
        await self.ctx.ari.destroy_bridge(call.bridge_id)
        return Transferred(target)

    async def _report_transfer(self, asked: TransferAsked, state: str) -> None:
        """The NOTIFY a phone that sent a REFER waits for (nothing to tell the CLI: it reads the row)."""
        if asked.refer_leg is not None:
            with contextlib.suppress(AriError):  # the agent hung up meanwhile: nobody to tell
                await self.ctx.ari.transfer_progress(asked.refer_leg, state)

    def _on_hop(self) -> Hop | None:
        return self.visit_hop if self.visit_hop is not self.call.hop else None

    async def _talk_ended(self, leg: Ringing, answered_at: float, who: Party) -> TalkOver:
        """Record the complete, free the agent into wrap-up, and end the talk for everyone in it:
        the other party, the parties brought into it (a conference) and the case's bridge."""
        call = self.call
        self.manager.call_ended(leg.agent, self.queue.name)
        call.unwatch(leg.channel_id)
        reason = call.reason_caller_left() if who is Party.CALLER or call.shut_down else EndReason.COMPLETED
        call.leave(reason, *self._step(E.COMPLETE, agent=leg.agent, talk_ms=_ms(time.time() - answered_at),
                                       detail=CUT_BY_SHUTDOWN[1] if call.shut_down else f"{who} hung up"))
        await self._hang_up(leg.channel_id if who is Party.CALLER else call.channel_id)
        for participant in self.ctx.conference_legs(call.case_id or 0):
            await self._hang_up(participant)  # the talk is over for everyone it brought in
        await self.ctx.ari.destroy_bridge(call.bridge_id)
        return TalkOver(EndReason.COMPLETED)

    async def _channel_exists(self, channel_id: str) -> bool:
        try:
            await self.ctx.ari.channel(channel_id)
        except AriNotFound:
            return False
        return True

    # -- recording -----------------------------------------------------------------------------

    @property
    def waiter_(self) -> Waiter:
        assert self.waiter is not None
        return self.waiter

    def _waited_ms(self, at: float | None = None) -> int:
        return _ms((at or time.time()) - self.waiter_.joined_at)

    def _step(self, event: QueueEventKind, *, agent: AgentState | None = None,
              **fields: int | str | datetime | None) -> tuple[QueueStep, ...]:
        """The queue event as a fact for the call's funnel; none for a queue the directory has no
        id for (removed while the call waited)."""
        if self.queue_id is None:
            return ()
        return (QueueStep(self.queue_id, event, agent_id=self.agent_ids.get(agent.name) if agent else None,
                          on_hop=self._on_hop(), **fields),)  # type: ignore[arg-type]


def holdtime_media(seconds: float) -> list[str]:
    """ "The estimated hold time is currently N minutes", or "less than one minute"; rounded to
    the nearest minute as app_queue does."""
    minutes = int((seconds + 30) // 60)
    if minutes < 1:
        return ["sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute"]
    return ["sound:queue-holdtime", f"number:{minutes}",
            "sound:queue-minute" if minutes == 1 else "sound:queue-minutes"]


async def _all(*steps: Awaitable[None]) -> None:
    """Run `steps` at once; the first failure is raised once all of them have ended (none is
    left running behind the caller's back)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _channel_of(message: Message | None) -> str | None:
    channel = getattr(message, "channel", None)
    return channel.id if isinstance(channel, Channel) else None


def _is_end_of(message: Message | None, channel_id: str) -> bool:
    if isinstance(message, ChannelVanished):
        return message.channel_id == channel_id
    return (isinstance(message, ChannelDestroyed | StasisEnd | ChannelHangupRequest)
            and message.channel.id == channel_id)


def _digit(message: Message | None) -> str:
    return getattr(message, "digit", "")


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
