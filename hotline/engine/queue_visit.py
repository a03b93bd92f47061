"""A caller's time in a queue, run by the caller's own task: join, wait with music, ring agents as
the strategy says, bridge with the one who answers, and record every step as a queue event.

Outcomes: "completed" (talked to an agent), "abandoned" (hung up while waiting: ChannelGone
propagates), an Overflow to follow (max wait, max length, nobody to take the call), or BrokeOut:
the caller pressed a key of the queue's breakout menu and goes where that key leads.
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
from typing import TYPE_CHECKING

from hotline.asterisk.ari_events import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEvent,
    StasisEnd,
    StasisStart,
)
from hotline.engine.agent_state import AgentState
from hotline.engine.queues import Waiter
from hotline.errors import AriError, AriNotFound
from hotline.media import case_bridge_type, originate_formats
from hotline.provision.model import Queue, Target
from hotline.store.contacts import Hop, QueueEvent, queue_event_record
from hotline.store.db import STORE_DOWN

if TYPE_CHECKING:
    from hotline.engine.calls import InboundCall

log = logging.getLogger(__name__)

POLL_S = 1.0  # a waiting caller looks again at least this often (wrap-ups end by the clock)


@dataclass
class Ringing:
    agent: AgentState
    channel_id: str
    started: float


@dataclass(frozen=True)
class Talk:
    """A caller's talk with an agent, as one leg hands it to the next (the switch to video)."""

    queue: Queue
    leg: Ringing
    answered_at: float
    visit_hop: Hop  # the hop that joined the queue: the visit's complete is recorded there


@dataclass(frozen=True)
class Overflow:
    target: Target
    why: str


@dataclass(frozen=True)
class BrokeOut:
    target: Target
    digit: str


class _KeyPressed(Exception):
    """A breakout key, raised from wherever the caller was waiting or being rung for."""

    def __init__(self, digit: str, target: Target) -> None:
        super().__init__(digit)
        self.digit, self.target = digit, target


class QueueVisit:
    def __init__(self, call: InboundCall, queue: Queue) -> None:
        self.call = call
        self.queue = queue
        self.ctx = call.ctx
        self.manager = call.ctx.queues
        snapshot = call.ctx.directory.snapshot
        self.queue_id = snapshot.id_of("queues", queue.name)
        self.agent_ids = snapshot.ids.get("agents", {})
        self.waiter: Waiter | None = None
        self.answered = False  # out of the line, talking: no longer counted or abandoning
        # The hop whose visit this is: the call's own, or, for a talk taken over by the customer's
        # video leg, the phone leg's (its join and answer are there; its complete goes there too).
        self.visit_hop: Hop | None = call.hop
        # Answer + music on hold, started the moment the caller has to wait; None until then.
        self._music: asyncio.Task[None] | None = None

    async def resume_waiting(self, joined_at: float) -> str | Overflow | BrokeOut:
        """After a daemon restart: back in line at the place the database says, no second join."""
        self.waiter = self.manager.join(self.queue.name, self.call.channel_id, joined_at=joined_at,
                                        video=self.call.video)
        log.info("call %s back in queue %s at position %d after a restart", self.call.channel_id,
                 self.queue.name, self.manager.position(self.waiter))
        self._start_music()
        return await self._waiting()

    async def resume_talk(self, agent_name: str, agent_channel_id: str, answered_at: float) -> str:
        """After a daemon restart: the caller is still bridged with the agent; follow the talk."""
        agent = self.manager.adopt_talking(agent_name, self.queue.name)
        if agent is None:
            return "completed"
        self.call.watch(agent_channel_id)
        leg = Ringing(agent, agent_channel_id, answered_at)
        self.waiter = Waiter(self.queue.name, self.call.channel_id, answered_at)
        self.answered = True
        return await self._follow_talk(leg, answered_at, self.call.bridge_id)

    async def run(self) -> str | Overflow | BrokeOut:
        q = self.queue
        if q.max_len is not None and self.manager.length(q.name) >= q.max_len:
            return await self._overflow("max_len")
        if not q.join_empty and self.manager.logged_in_members(q.name) == 0:
            return await self._overflow("empty")
        self.waiter = self.manager.join(q.name, self.call.channel_id, video=self.call.video,
                                        preferred=self.call.preferred_agent)
        log.info("call %s joined queue %s at position %d", self.call.channel_id, q.name,
                 self.manager.position(self.waiter))
        await self._event("join", position=self.manager.position(self.waiter))
        # No answer and no music yet, unless the queue says so (ringback 0): a free agent is rung
        # first, and a caller it answers at once needed neither (round trips to Asterisk fewer,
        # no music started).
        if not q.ringback:
            self._start_music()
        return await self._waiting()

    def _start_music(self) -> None:
        """Answer and start the music on hold, in the background (two round trips to Asterisk);
        whatever needs them done awaits _music_started()."""
        self._music = asyncio.create_task(self._answer_with_music(), name=f"music-{self.call.channel_id}")

    def _ensure_music(self) -> None:
        if self._music is None:
            self._start_music()

    async def _answer_with_music(self) -> None:
        try:
            await self.call.answer()
            await self.ctx.ari.start_moh(self.call.channel_id, self.queue.music)
        except AriError as exc:  # the caller hung up meanwhile: its events end the visit
            log.info("call %s: no music on hold (%s)", self.call.channel_id, exc)

    async def _music_started(self) -> None:
        if self._music is not None:
            await asyncio.gather(self._music, return_exceptions=True)

    async def _waiting(self) -> str | Overflow | BrokeOut:
        try:
            outcome = await self._wait_and_ring()
            if not isinstance(outcome, str):
                await self._stop_music()  # what comes next (a menu, a queue's own music) plays alone
            return outcome
        except BaseException:
            if self._music is not None:
                self._music.cancel()
            if self.waiter is not None and self.call.hangup_seen and not self.answered:
                await self._event("abandon", position=self.manager.position(self.waiter),
                                  wait_ms=self._waited_ms())
            raise
        finally:
            if self.waiter is not None:
                self.manager.leave(self.waiter)

    async def _wait_and_ring(self) -> str | Overflow | BrokeOut:
        try:
            return await self._wait_for_an_agent()
        except _KeyPressed as key:
            log.info("call %s left queue %s with key %s for %s", self.call.channel_id, self.queue.name,
                     key.digit, key.target)
            await self._event("exit_key", wait_ms=self._waited_ms(), detail=key.digit)
            self.call.record_key(key.digit)
            return BrokeOut(key.target, key.digit)

    async def _wait_for_an_agent(self) -> str | Overflow:
        assert self.waiter is not None
        q = self.queue
        next_announcement = self._first_announcement()
        while True:
            if next_announcement is not None and time.time() >= next_announcement:
                self._ensure_music()
                await self._announce()
                next_announcement += q.announce_period or 0  # every period since joining
            if q.max_wait is not None and time.time() - self.waiter.joined_at >= q.max_wait:
                return await self._overflow("max_wait")
            agents = self.manager.next_attempt(self.waiter)
            if agents:
                answered = await self._ring(agents)
                if answered is not None:
                    self._out_of_line()
                    talked = await self._talk(*answered)
                    if talked is not None:
                        return talked
                    self._back_in_line()  # the agent's leg went before the bridge: wait on
                    continue
                self._ensure_music()  # nobody answered at once: the caller waits
                if self.manager.attempt_over(self.waiter):
                    await self._idle(float(q.retry))
                continue
            self._ensure_music()
            self.waiter.wake.clear()
            await self._idle(self._poll_s())

    async def _overflow(self, why: str) -> Overflow:
        """Leave for the queue's overflow target: waited too long (max_wait), or never joined
        because the queue was full (max_len) or had nobody logged in (join_empty = false)."""
        waited = self._waited_ms() if self.waiter is not None else 0
        await self._event("overflow", wait_ms=waited, detail=f"{why}: {self.queue.overflow}")
        log.info("call %s: overflow from queue %s (%s) to %s", self.call.channel_id, self.queue.name, why,
                 self.queue.overflow)
        return Overflow(self.queue.overflow, why)

    def _out_of_line(self) -> None:
        """Answered: the callers behind move up (positions, max_len and who rings next count
        waiting callers only)."""
        self.answered = True
        self.manager.leave(self.waiter_)

    def _back_in_line(self) -> None:
        """In line again at the place the caller had (its join time), with its music, and on in
        its ringing cycle: the next attempt rings the next agent, not again the one whose phone
        just dropped the call (a phone that answers and hangs up would otherwise hold the caller
        in a loop)."""
        self.answered = False
        before = self.waiter_
        self.waiter = self.manager.join(self.queue.name, self.call.channel_id, joined_at=before.joined_at,
                                        video=self.call.video)
        self.waiter.cycle = before.cycle
        self._start_music()

    def _first_announcement(self) -> float | None:
        period = self.queue.announce_period
        return self.waiter_.joined_at + period if period else None

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
        if option is not None and option.target.action != "repeat":
            raise _KeyPressed(digit, option.target)

    def _caller_event(self, event: AriEvent) -> None:
        """Every event met while waiting or ringing: the caller hanging up, or pressing a key."""
        self.call.check_caller_gone(event)
        if isinstance(event, ChannelDtmfReceived) and event.channel.id == self.call.channel_id:
            self._check_key(event.digit)

    async def _stop_music(self) -> None:
        if self._music is None:
            return
        await self._music_started()
        if self.call.is_up:
            try:
                await self.ctx.ari.stop_moh(self.call.channel_id)
            except AriError:
                pass

    def _poll_s(self) -> float:
        assert self.waiter is not None
        if self.queue.max_wait is None:
            return POLL_S
        left = self.waiter.joined_at + self.queue.max_wait - time.time()
        return max(0.05, min(POLL_S, left))

    async def _idle(self, seconds: float) -> None:
        """Wait `seconds`, or less when the queue changes; the caller hanging up ends it."""
        assert self.waiter is not None
        wake = asyncio.create_task(self.waiter.wake.wait())
        try:
            deadline = time.monotonic() + seconds
            while not wake.done() and time.monotonic() < deadline:
                event = await self.call.next_event(min(deadline - time.monotonic(), 0.25) or 0.01)
                if event is not None:
                    self._caller_event(event)
        finally:
            wake.cancel()

    # -- ringing -------------------------------------------------------------------------------

    async def _ring(self, agents: list[AgentState]) -> tuple[Ringing, float] | None:
        """Ring the attempt's agents; the first to answer wins, the others are hung up."""
        started = time.time()
        steps: list[Awaitable[Ringing | None]] = [self._dial(agent) for agent in agents]
        if self._music is None:  # the first attempt: every later one comes after the music
            steps.append(self._ringback())
        legs = await asyncio.gather(*steps)
        ringing = {leg.channel_id: leg for leg in legs if leg is not None}
        deadline = time.monotonic() + self.queue.ring_timeout + 2  # Asterisk's own timeout first
        music_due = time.monotonic() + self.queue.ringback
        why_not = "ring timeout"
        try:
            while ringing and time.monotonic() < deadline:
                until = deadline if self._music is not None else min(deadline, music_due)
                event = await self.call.next_event(until - time.monotonic())
                if event is None:
                    if self._music is None and time.monotonic() >= music_due:
                        self._start_music()  # rung too long to leave the caller unanswered
                    continue
                self._caller_event(event)
                leg = ringing.get(_channel_of(event) or "")
                if leg is None:
                    continue
                if isinstance(event, StasisStart):
                    del ringing[leg.channel_id]
                    self.manager.ring_ended(self.waiter_, leg.agent, answered=True)
                    why_not = f"answered by {leg.agent.name}"
                    return leg, started
                if isinstance(event, ChannelDestroyed | StasisEnd):
                    del ringing[leg.channel_id]
                    await self._no_answer(leg, f"cause {getattr(event, 'cause', '')}".strip())
        except _KeyPressed:
            why_not = "caller left the queue"
            raise
        finally:
            for leg in list(ringing.values()):  # timed out, or lost to another agent, or caller gone
                await self._hang_up(leg.channel_id)
                await self._no_answer(leg, why_not if self.call.is_up else "caller gone")
        return None

    async def _ringback(self) -> None:
        """The caller, not answered yet, hears ringing while its first agents ring."""
        try:
            await self.ctx.ari.ring(self.call.channel_id)
        except AriError as exc:  # gone meanwhile: its events end the visit
            log.info("call %s: no ringing indication (%s)", self.call.channel_id, exc)

    @property
    def waiter_(self) -> Waiter:
        assert self.waiter is not None
        return self.waiter

    async def _dial(self, agent: AgentState) -> Ringing | None:
        channel_id = f"{self.call.channel_id}-agent-{uuid.uuid4().hex[:8]}"
        log.info("call %s: ringing %s (%s) for queue %s", self.call.channel_id, agent.name, agent.endpoint,
                 self.queue.name)
        self.call.watch(channel_id)
        leg = Ringing(agent, channel_id, time.time())
        await self._event("ring", agent=agent)
        try:
            await self.ctx.ari.originate(
                f"PJSIP/{agent.endpoint}", self.ctx.app, f"agent,{self.call.channel_id}", channel_id,
                timeout_s=self.queue.ring_timeout, caller_id=self.call.channel.caller_num,
                formats=originate_formats(agent.capabilities))
        except AriError as exc:  # not registered, unknown endpoint: next agent
            log.info("queue %s: could not ring %s: %s", self.queue.name, agent.name, exc)
            await self._no_answer(leg, "dial failed")
            return None
        return leg

    async def _no_answer(self, leg: Ringing, why: str) -> None:
        self.manager.ring_ended(self.waiter_, leg.agent, answered=False)
        self.call.unwatch(leg.channel_id)
        await self._event("ring_noanswer", agent=leg.agent, ring_ms=_ms(time.time() - leg.started),
                          detail=why)

    async def _hang_up(self, channel_id: str) -> None:
        try:
            await self.ctx.ari.hangup(channel_id, "normal")
        except AriError:
            pass

    # -- talking -------------------------------------------------------------------------------

    async def _talk(self, leg: Ringing, ring_started: float) -> str | None:
        """Caller and agent in the case's mixing bridge until one of them hangs up. None: the
        agent's leg went before it was bridged, and the caller waits on."""
        call = self.call
        bridge_id = call.bridge_id
        bridge_type = case_bridge_type(call.video, leg.agent.video)
        try:
            if self._music is None:  # answered by the agent while still ringing: answer it now
                await _all(call.answer(), self.ctx.ari.create_bridge(bridge_id, bridge_type))
            else:
                await self._music_started()
                await self.ctx.ari.stop_moh(call.channel_id)
                await self.ctx.ari.create_bridge(bridge_id, bridge_type)
            await self.ctx.ari.add_to_bridge(bridge_id, [call.channel_id, leg.channel_id])
        except AriError as exc:
            await self._not_bridged(leg, exc)
            return None
        answered_at = time.time()
        await self._event("answer", agent=leg.agent, wait_ms=self._waited_ms(answered_at),
                          ring_ms=_ms(answered_at - leg.started))
        return await self._follow_talk(leg, answered_at, bridge_id)

    async def _not_bridged(self, leg: Ringing, exc: AriError) -> None:
        """One of the two hung up between the agent's answer and the bridge. The agent is free
        again at once (its leg hung up, no call counted); the caller, if still here, waits on."""
        await self._hang_up(leg.channel_id)
        self.manager.answer_dropped(leg.agent)
        self.call.unwatch(leg.channel_id)
        caller_here = await self._caller_still_here()
        gone = "agent" if caller_here else "caller"
        await self._event("ring_noanswer", agent=leg.agent, ring_ms=_ms(time.time() - leg.started),
                          detail=f"{gone} gone before the bridge")
        log.info("call %s: not bridged with %s (%s)", self.call.channel_id, leg.agent.name, exc)
        if not caller_here:  # abandoned at the last moment: counted like any abandon
            await self._event("abandon", wait_ms=self._waited_ms())
            with contextlib.suppress(AriError):  # it may have been created for the two of them
                await self.ctx.ari.destroy_bridge(self.call.bridge_id)
            raise AriNotFound(str(exc), exc.status) from None  # the call ends as the caller's hang-up

    async def _caller_still_here(self) -> bool:
        try:
            await self.ctx.ari.channel(self.call.channel_id)
        except AriNotFound:
            return False
        return self.call.is_up

    async def take_over_talk(self, talk: Talk) -> str:
        """The customer's video leg, now in the case's bridge, goes on with the talk of the leg it
        replaced: same agent, same visit; the agent's leg never left the bridge."""
        self.answered = True
        self.visit_hop = talk.visit_hop
        leg = talk.leg
        self.call.watch(leg.channel_id)
        hop = self.call.hop
        if hop is not None and self.ctx.switches is not None:
            try:
                await self.ctx.switches.joined_talk(hop.id, self.queue_id, self.agent_ids.get(leg.agent.name))
            except STORE_DOWN as exc:  # the talk matters more than the hop's answer time
                log.error("call %s: hop %s not marked answered: %s", self.call.channel_id, hop.id, exc)
        if not await self._channel_exists(leg.channel_id):  # the agent hung up during the handover
            self.call.unwatch(leg.channel_id)
            self.manager.call_ended(leg.agent, self.queue.name)
            await self._event("complete", agent=leg.agent, talk_ms=_ms(time.time() - talk.answered_at),
                              detail="agent hung up")
            return "completed"
        return await self._follow_talk(leg, talk.answered_at, self.call.bridge_id)

    async def _follow_talk(self, leg: Ringing, answered_at: float, bridge_id: str) -> str:
        call = self.call
        call.bridged_with(leg.channel_id)
        who, handed_over = "caller", False
        try:
            while not handed_over:
                who = await call.until_either_hangs_up(leg.channel_id)
                if who != "switched":
                    break
                handed_over = self._hand_over(leg, answered_at)
        finally:
            if not handed_over:
                await self._hang_up(leg.channel_id if who == "caller" else call.channel_id)
                self.manager.call_ended(leg.agent, self.queue.name)
                call.unwatch(leg.channel_id)
                await self._event("complete", agent=leg.agent, talk_ms=_ms(time.time() - answered_at),
                                  detail=f"{who} hung up")
                for participant in self.ctx.conference_legs(call.case_id or 0):
                    await self._hang_up(participant)  # the talk is over for everyone it brought in
                await self.ctx.ari.destroy_bridge(bridge_id)
        if handed_over:
            await call.leave_for_video()
            return "switched"
        return "completed"

    def _hand_over(self, leg: Ringing, answered_at: float) -> bool:
        """Give the talk to the video leg that joined the bridge; False when that leg gave up
        waiting for it (the talk then goes on here)."""
        away = self.call.switched_to
        if away is None or away.handover.done() or self.visit_hop is None:
            return False
        self.call.unwatch(leg.channel_id)
        away.handover.set_result(Talk(self.queue, leg, answered_at, self.visit_hop))
        log.info("call %s: talk with %s handed over to video leg %s", self.call.channel_id,
                 leg.agent.name, away.to_channel_id)
        return True

    async def _channel_exists(self, channel_id: str) -> bool:
        try:
            await self.ctx.ari.channel(channel_id)
        except AriNotFound:
            return False
        return True

    # -- recording -----------------------------------------------------------------------------

    def _waited_ms(self, at: float | None = None) -> int:
        return _ms((at or time.time()) - self.waiter_.joined_at)

    async def _event(self, event: str, *, agent: AgentState | None = None, **fields: object) -> None:
        hop = self.visit_hop or self.call.hop
        if hop is None or self.queue_id is None:
            return  # the database was down when the call came: nothing to attach events to
        row = QueueEvent(queue_id=self.queue_id, case_id=hop.case_id, hop_id=hop.id, event=event,
                         agent_id=self.agent_ids.get(agent.name) if agent else None,
                         at=datetime.now(UTC), **fields)  # type: ignore[arg-type]
        self.call.record(queue_event_record(row))


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


def _channel_of(event: AriEvent) -> str | None:
    return event.channel.id if isinstance(event, ChannelEvent) else None


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
