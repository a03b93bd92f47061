"""A caller's time in a queue, run by the caller's own task: join, wait with music, ring agents as
the strategy says, bridge with the one who answers, and record every step as a queue event.

The visit has no state of its own: it moves its call (WAITING, RINGING, TALKING, LEAVING) through
the call's one funnel, each move with the queue events it makes, and reads the call's inbox only
through the call's one reader. It knows the call by the small `VisitCall` protocol, so the call
module depends on it and not the other way round.

A waiting caller may move to video without losing its place: the queue's `video_key` has a link
sent (ctx.ask_video_link), and when the video leg comes it asks this visit for its place
(PlaceAsked, kept by the call until the visit looks): its waiter joins at this caller's join time,
this caller leaves the line (an agent being rung for it is hung up), and its leg ends `switched`;
the video leg's visit (`take_over_place`) goes on recording on the hop that joined.

Outcomes: TalkOver (the caller talked with an agent, and the call is leaving), Overflow (max
wait, max length, nobody to take the call: follow the queue's overflow target), BrokeOut (the
caller pressed a key of the queue's breakout menu and goes where it leads), Transferred (the
agent passed the talk on to a queue, a hotline or an agent: engine.transfer) or CallbackAsked (the
caller pressed the queue's callback key, or a breakout key whose action is `callback`, and left a
request keeping their place: queueing.callback_offer). A visit a transfer to an agent began rings
that agent (and the transferring agent, where the queue says) before it waits, at the head of the
line. A caller hanging up
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
    ChannelHold,
    ChannelUnhold,
    StasisEnd,
    StasisStart,
)
from hotline.engine import built_in_prompts as prompts
from hotline.engine.built_in_prompts import sound
from hotline.engine.call_state import CallState
from hotline.engine.camera import note_camera, to_sfu
from hotline.engine.context import CallContext
from hotline.engine.facts import (
    Fact,
    KeyPressed,
    QueueStep,
    RecordingFact,
    SurveyBegun,
    TalkTakenOver,
    TransferNoted,
)
from hotline.engine.holds import TalkHolds
from hotline.engine.leg import is_shutdown_hangup
from hotline.engine.live_hub import ANSWERED, GONE, RINGING, RingNews, agent_topic, ring_event
from hotline.engine.messages import (
    CallerGone,
    CameraTurned,
    ChannelVanished,
    ConsultDialled,
    HandoverAsked,
    HangingUp,
    Message,
    PhoneSwitchAsked,
    PlaceAsked,
    QueueTurn,
    RecordingAsked,
    TransferAsked,
)
from hotline.engine.outcomes import EndReason, Party, QueueEventKind
from hotline.engine.phone_switch import call_the_phone
from hotline.engine.queueing import consult as consulting
from hotline.engine.queueing.agent_state import AgentState, AgentStatus
from hotline.engine.queueing.callback_offer import ask_callback, offer_media
from hotline.engine.queueing.queues import Waiter, video_preference
from hotline.engine.queueing.survey import run_survey
from hotline.engine.queueing.talk import Place, Ringing, Talk
from hotline.engine.recording import TalkRecorder, announcement_of, record_mode
from hotline.engine.rejoin import DropNote, note_drop
from hotline.engine.transfer import (
    ARI_TRANSFERS,
    CONSULT_BUSY,
    CONSULT_STEPS,
    TRANSFER_DONE,
    TRANSFER_REFUSED,
    AgentTarget,
    Handoff,
    NumberTarget,
    TransferTo,
    transfer_target,
)
from hotline.errors import AriError, AriNotFound, DialRefused, PhoneSwitchRefused, TransferRefused
from hotline.media import case_bridge_type, originate_formats
from hotline.provision.model import Hotline, Queue, Target, TargetAction
from hotline.store.hops import Hop

log = logging.getLogger(__name__)

E = QueueEventKind
# Why an agent cannot take a transfer, as the one who asked reads it.
STATUS_WORDS = {AgentStatus.LOGGED_OUT: "logged out", AgentStatus.PAUSED: "paused",
                AgentStatus.BUSY: "busy (in a talk)", AgentStatus.RINGING: "busy (ringing)",
                AgentStatus.WRAPUP: "in wrap-up",
                AgentStatus.UNAVAILABLE: "unavailable (phone not registered)"}


class VisitCall(Protocol):
    """What a queue visit needs of its call (engine.call.InboundCall provides it)."""

    channel: Channel
    video: bool
    web: bool  # a customer's browser
    meant_to_hang_up: bool  # ... whose page's Hang up was pressed: its leg going is no drop
    @property
    def may_come_back(self) -> bool: ...
    @property
    def customer(self) -> str: ...  # a browser's own id ("" for any other caller)
    @property
    def ivr_path(self) -> str: ...  # the menu keys pressed on this leg so far
    awaiting_rejoin: str | None  # the agent's endpoint while the talk waits for the page to come back
    talking_with: str | None  # the endpoint of the agent in the live talk (their phone's consult call)
    talk_leg: str | None  # that agent's channel in the talk (a supervisor's snoop listens on it)
    talk_since: float | None  # when that talk was answered (epoch s): a supervisor's page shows its time
    video_bridge: bool  # its talk moved to the case's SFU bridge (engine.camera): bridge_id says which
    state: CallState
    transferred: bool  # passed here by a transfer: answered and talked already
    # The hotline whose routes the call follows now: its `record` is that of a queue with none.
    in_hotline: Hotline | None
    announced_recording: bool  # "this call may be recorded" was played to it: once per call
    priority: int  # where it stands in a line: higher first (its number's, route's or key's)

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
    def note_facts(self, *facts: RecordingFact) -> None: ...
    def leave(self, reason: EndReason, *facts: Fact) -> None: ...
    def stay_for_survey(self, reason: EndReason, *facts: Fact) -> None: ...
    def reason_caller_left(self) -> EndReason: ...
    @property
    def shut_down(self) -> bool: ...
    @property
    def cut_why(self) -> str: ...
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
    async def digit(self, timeout: float) -> str | None: ...
    async def until_caller_gone(self) -> NoReturn: ...
    def take_place_asked(self) -> PlaceAsked | None: ...


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
class Consulted:
    """An attended transfer completed: as asked, or (`left`) by the transferring agent hanging up
    during the consult, which hands the customer over as Asterisk's own attended transfer does
    (features.conf atxferdropcall=no): to the consulted agent, answered or still ringing."""

    asked: TransferAsked
    left: bool = False


@dataclass(frozen=True)
class Transferred:
    """The agent passed the caller on: the talk is over, the call goes to `target` (for a transfer
    to an agent or a number: the talk's queue, which takes the caller first in line after `handoff`)."""

    target: Target
    handoff: Handoff | None = None


@dataclass(frozen=True)
class CallbackAsked:
    """The caller asked to be called back (request `callback_id`, stored) and is leaving."""

    callback_id: int


TalkEnd = TalkOver | Transferred  # how a talk ends: over, or passed on by a transfer
VisitOutcome = TalkOver | Overflow | BrokeOut | Transferred | CallbackAsked


class _KeyPressed(Exception):  # noqa: N818 - control flow, not an error
    """Control flow: a breakout key, raised from wherever the caller was waiting or being rung."""

    def __init__(self, digit: str, target: Target) -> None:
        super().__init__(digit)
        self.digit, self.target = digit, target


class _PlaceGiven(Exception):  # noqa: N818 - control flow, not an error
    """Control flow: the caller's video leg asked for its place, from wherever it was waiting or
    being rung."""

    def __init__(self, asked: PlaceAsked) -> None:
        super().__init__(asked.video_channel_id)
        self.asked = asked


class QueueVisit:
    def __init__(self, call: VisitCall, ctx: CallContext, queue: Queue,
                 handoff: Handoff | None = None, *, record: str | None = None) -> None:
        self.call = call
        self.handoff = handoff  # a transfer to one party: rung before the caller waits, first in line
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
        self._dialling: set[asyncio.Task[None]] = set()  # the customer's phone being dialled
        self.consult: consulting.Consult | None = None  # an attended transfer of the talk under way
        # How its talks are recorded: the queue's record, or its hotline's (`record`: the mode of
        # the visit a switch or rejoined leg goes on with).
        self.record = record or record_mode(queue, call.in_hotline)
        self.recorder = TalkRecorder(ctx, self.record, self.queue_id)
        self.holds: TalkHolds | None = None  # the talk's, while one lasts
        # What the rung agents' pages are told of the rings (live_hub.RingNews): a queue's own, or
        # a blind transfer to one agent, and who passed the caller on.
        self._ring_as: tuple[str, str] = ("queue", "")

    # -- ways in ---------------------------------------------------------------------------------

    async def run(self) -> VisitOutcome:
        q = self.queue
        if q.max_len is not None and self.manager.length(q.name) >= q.max_len:
            return self._overflow("max_len")
        if not q.join_empty and self.manager.logged_in_members(q.name) == 0:
            return self._overflow("empty")
        await self.call.case_known()
        await self._announce_recording()
        self.waiter = self.manager.join(q.name, self.call.channel_id, video=self.call.video,
                                        preferred=self.call.preferred_agent, wake=self.call.wake,
                                        priority=self.call.priority, head=self.handoff is not None)
        position = self.manager.position(self.waiter)
        log.info("call %s joined queue %s at position %d (priority %d)", self.call.channel_id, q.name,
                 position, self.call.priority)
        # Dated when the line says the caller joined: every wait (max wait, the video fallback) counts
        # from that instant, so the record and the deadlines agree.
        joined = datetime.fromtimestamp(self.waiter.joined_at, UTC)
        self.call.move(CallState.WAITING, *self._step(E.JOIN, position=position, at=joined,
                                                      priority=self.call.priority))
        # No answer and no music yet, unless the queue says so (ringback 0): a free agent is rung
        # first, and a caller it answers at once needed neither (round trips to Asterisk fewer,
        # no music started).
        if not q.ringback or self.call.transferred:  # a transferred caller is answered: music at once
            self._start_music()
        return await self._in_line()

    async def resume_waiting(self, joined_at: float, *, head: bool = False) -> VisitOutcome:
        """After a daemon restart: back in line at the place the database says, no second join
        (`head`: first in line, as a transfer to one agent or a number not answered left it)."""
        self.waiter = self.manager.join(self.queue.name, self.call.channel_id, joined_at=joined_at,
                                        video=self.call.video, wake=self.call.wake,
                                        priority=self.call.priority, head=head)
        log.info("call %s back in queue %s at position %d after a restart", self.call.channel_id,
                 self.queue.name, self.manager.position(self.waiter))
        self.call.move(CallState.WAITING)
        self._start_music()
        return await self._in_line()

    async def resume_talk(self, agent_name: str, agent_channel_id: str, answered_at: float,
                          *facts: Fact) -> TalkEnd:
        """After a daemon restart: the caller is still bridged with the agent; follow the talk.
        `facts`: what the restart ended (a consult), recorded first."""
        agent = self.manager.adopt_talking(agent_name, self.queue.name)
        if agent is None:
            self.call.leave(EndReason.COMPLETED, *facts)
            return TalkOver(EndReason.COMPLETED)
        self.call.watch(agent_channel_id)
        self.call.move(CallState.TALKING, *facts)
        # Asterisk's recording of the talk, if any, went on without the daemon: taken over, and
        # none begins here
        await self._adopt_recordings()
        return await self._follow_talk(Ringing(agent, agent_channel_id, answered_at), answered_at,
                                       record=False)

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
        await self._adopt_recordings()
        return await self._follow_talk(Ringing(agent, agent_leg.id, answered_at), answered_at, record=False)

    async def take_over_talk(self, talk: Talk) -> TalkEnd:
        """The customer's video leg, now in the case's bridge, goes on with the talk of the leg it
        replaced: same agent, same visit; the agent's leg never left the bridge."""
        self.visit_hop = talk.visit_hop
        self.recorder.wanted = self.recorder.wanted or talk.recorded  # asked on the leg before
        leg = talk.leg
        self.call.watch(leg.channel_id)
        self.call.move(CallState.TALKING, TalkTakenOver(self.queue_id, self.agent_ids.get(leg.agent.name)))
        if not await self._channel_exists(leg.channel_id):  # the agent hung up during the handover
            return await self._talk_ended(leg, talk.answered_at, Party.AGENT)
        return await self._follow_talk(leg, talk.answered_at)

    async def take_over_place(self, place: Place) -> VisitOutcome:
        """The customer's video leg goes on waiting in the place its phone leg had (its waiter is
        in line already, at the phone leg's join time); the visit's events go on on the hop that
        joined."""
        self.visit_hop, self.waiter = place.visit_hop, place.waiter
        self.call.priority = place.waiter.priority  # the phone leg's, kept for any later join
        log.info("call %s took the place of its phone leg in queue %s at position %d", self.call.channel_id,
                 self.queue.name, self.manager.position(self.waiter))
        self.call.move(CallState.WAITING)
        self._start_music()
        return await self._in_line()

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
        while True:
            try:
                return await self._wait_until_served()
            except _KeyPressed as key:
                if not self._calls_back_here(key.target):
                    return self._broke_out(key)  # a `callback:` another queue's: the call asks it
                asked = await self._ask_callback(key.digit)
                if asked is not None:
                    return asked

    async def _wait_until_served(self) -> VisitOutcome:
        """Waits (and rings) until served; a video leg asking for this place takes it."""
        while True:
            try:
                return await self._wait_for_an_agent()
            except _PlaceGiven as given:
                if not given.asked.reply.done():
                    return self._give_place(given.asked)
            # The video leg gave up while a ring was being cut: this caller waits on.
            self.manager.attempt_over(self.waiter_)
            self.call.move(CallState.WAITING)

    def _calls_back_here(self, target: Target) -> bool:
        """The callback key, or a breakout key `callback:` this queue (or a bare `callback` stored
        before keys named their queue): a callback keeping the caller's place in this line."""
        return target.action == TargetAction.CALLBACK and target.name in (None, self.queue.name)

    def _broke_out(self, key: _KeyPressed) -> BrokeOut:
        log.info("call %s left queue %s with key %s for %s", self.call.channel_id, self.queue.name,
                 key.digit, key.target)
        self.call.move(CallState.WAITING, *self._step(E.EXIT_KEY, wait_ms=self._waited_ms(),
                                                      detail=key.digit), KeyPressed(key.digit))
        return BrokeOut(key.target, key.digit)
    async def _ask_callback(self, digit: str) -> CallbackAsked | None:
        """The caller asked to be called back: out of the line while they give their number (an
        agent freed meanwhile goes to the next caller), then gone with the request stored, or back
        at their place when they gave none. Their visit ends with a `callback` event, not an
        abandon."""
        hop, store = self.call.hop, self.ctx.callbacks
        if hop is None or store is None or self.queue_id is None:  # no case to call back for yet
            log.info("call %s: callback key in queue %s, but the call has no case yet", self.call.channel_id,
                     self.queue.name)
            return None
        self.call.move(CallState.WAITING, KeyPressed(digit))
        await self._stop_music()
        self.manager.leave(self.waiter_)
        made = await ask_callback(
            self.call, store, list(self.ctx.directory.snapshot.prov.trunks.values()), self.queue,
            queue_id=self.queue_id, case_id=hop.case_id, hop_id=hop.id,
            caller_id=self.call.channel.caller_num,
            region=self.ctx.region, joined_at=datetime.fromtimestamp(self.waiter_.joined_at, UTC))
        if made is None:
            self._back_in_line()
            return None
        self.call.leave(EndReason.CALLBACK, *self._step(E.CALLBACK, wait_ms=self._waited_ms(),
                                                       detail=f"callback {made.id} to {made.number}"))
        return CallbackAsked(made.id)

    async def _wait_for_an_agent(self) -> VisitOutcome:
        q, joined_at = self.queue, self.waiter_.joined_at  # back in line, a caller keeps its place
        next_announcement = _next_period(joined_at, q.announce_period, time.time())
        if self.handoff is not None:
            talked = await self._ring_directly(self.handoff)
            if talked is not None:
                return talked
        while True:
            self._check_place_asked()  # asked while an announcement played
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

    async def _attempt(self, agents: list[AgentState], rung: Ringing | None = None) -> TalkEnd | None:
        """Ring `agents` (`rung`: a leg ringing already, not dialled again); the talk with the one
        who answers, or None (the caller waits on)."""
        answered = await self._ring(agents, rung)
        if answered is None:
            self.call.move(CallState.WAITING)
            return None
        self._out_of_line()
        talked = await self._talk(*answered)
        if talked is None:
            self._back_in_line()  # the agent's leg went before the bridge: wait on
        return talked

    async def _ring_directly(self, handoff: Handoff) -> TalkEnd | None:
        """A caller transferred to one agent: that agent rung alone for the queue's ring timeout,
        then, where the queue says, the transferring agent; None: nobody answered, and the caller
        waits at the head of the line."""
        self.handoff = None
        for name, ring_back in ((handoff.agent, False), (handoff.back_to, True)):
            if name is None:
                continue
            rung = None if ring_back else await self._rung_already(handoff)
            agent = rung.agent if rung else self.manager.ring_directly(self.waiter_, name,
                                                                       ring_back=ring_back)
            if agent is None:
                log.info("call %s: %s is not free to be rung for the transfer", self.call.channel_id, name)
                continue
            self._ring_as = ("queue", "") if ring_back or not handoff.by else ("transfer", handoff.by)
            try:
                talked = await self._attempt([agent], rung)
            finally:
                self._ring_as = ("queue", "")
            if talked is not None:
                return talked
            self.manager.attempt_over(self.waiter_)
            self._ensure_music()
        return None

    async def _rung_already(self, handoff: Handoff) -> Ringing | None:
        """The consulted agent's leg, ringing on for this caller since the transferring agent hung
        up; None: no such leg (or its agent gone from provisioning meanwhile: the leg hung up)."""
        if handoff.leg is None or handoff.agent is None:
            return None
        agent = self.manager.consult_passed_on(self.waiter_, handoff.agent)
        if agent is None:
            self.call.unwatch(handoff.leg)
            await self._hang_up(handoff.leg)
            return None
        return Ringing(agent, handoff.leg, handoff.rung_at)

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
        (a breakout key raises _KeyPressed), the video leg asking for the place (raises
        _PlaceGiven), or nothing the visit expects."""
        if self.call.is_own_key(message):
            self._check_key(message.digit)  # type: ignore[union-attr]
        else:
            self.call.unexpected(message)
            self._check_place_asked()

    def _check_place_asked(self) -> None:
        asked = self.call.take_place_asked()
        if asked is None:
            return
        if (self.visit_hop or self.call.hop) is None:  # no hop written yet: no visit to go on with
            asked.refuse()
            return
        raise _PlaceGiven(asked)

    def _give_place(self, asked: PlaceAsked) -> TalkOver:
        """Hand the place in line to the video leg: its waiter joins at this caller's join time
        before this one leaves (nobody behind slips in between), then this leg goes, `switched`.
        No queue event: the visit goes on, on the video leg."""
        visit_hop = self.visit_hop or self.call.hop
        assert visit_hop is not None  # _check_place_asked refused it otherwise
        before = self.waiter_
        waiter = self.manager.join(self.queue.name, asked.video_channel_id, joined_at=before.joined_at,
                                   video=True, wake=asked.wake, priority=before.priority)
        self.manager.leave(before)
        asked.reply.set_result(Place(self.queue, waiter, visit_hop, self.record))
        log.info("call %s: place in queue %s handed over to video leg %s", self.call.channel_id,
                 self.queue.name, asked.video_channel_id)
        self.call.leave(EndReason.SWITCHED)
        return TalkOver(EndReason.SWITCHED)

    def _ask_video_link(self) -> None:
        """The caller pressed the queue's video key: a link sent in the background (the store
        holds repeated presses to a cooldown and a number per case, and records a refusal)."""
        hop = self.call.hop
        if self.ctx.ask_video_link is None or hop is None:
            log.info("call %s: video key pressed, but no link can be sent (%s)", self.call.channel_id,
                     "no hop yet" if hop is None else "no switch links here")
            return
        log.info("call %s: video key pressed in queue %s", self.call.channel_id, self.queue.name)
        self.ctx.ask_video_link(hop.id)

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
                                        video=self.call.video, wake=self.call.wake,
                                        priority=before.priority, head=before.head)
        self.waiter.cycle = before.cycle
        self.call.move(CallState.WAITING)
        self._start_music()

    async def _announce(self) -> None:
        """app_queue's periodic announcement: "you are now first in line", or "there are N calls
        waiting" (those ahead of this caller), then, where the queue says so, the estimated hold
        time; the music stops for it and then resumes. A breakout key cuts it short."""
        ahead = self.manager.position(self.waiter_) - 1
        media = [sound(prompts.YOU_ARE_NEXT)] if ahead == 0 else [
            sound(prompts.THERE_ARE), f"number:{ahead}", sound(prompts.CALLS_WAITING)]
        estimate = self.manager.estimated_wait(self.waiter_) if self.queue.announce_holdtime else None
        if estimate is not None:
            media += holdtime_media(estimate)
        if self.queue.video_key is not None:
            media += video_key_media(self.queue.video_key)
        if self.ctx.callbacks is not None:
            media += offer_media(self.queue)
        await self._music_started()
        await self.ctx.ari.stop_moh(self.call.channel_id)
        keys = (self.queue.breakout_menu is not None or self.queue.video_key is not None
                or self.queue.callback_key is not None)
        try:
            digit = await self.call.play(",".join(media), stop_on_digit=keys)
            if digit is not None:
                self._check_key(digit)
        finally:
            if self.call.is_up:
                await self.ctx.ari.start_moh(self.call.channel_id, self.queue.music)
        log.info("call %s: announced in queue %s: %d ahead, hold time %s", self.call.channel_id,
                 self.queue.name, ahead, "-" if estimate is None else f"{estimate:.0f} s")

    def _check_key(self, digit: str) -> None:
        """The queue's video key asks for a link; raise _KeyPressed when `digit` is the queue's
        callback key or a key of its breakout menu; other keys do nothing (app_queue ignores keys
        with no extension in its context)."""
        if digit == self.queue.video_key:
            self._ask_video_link()
            return
        if digit == self.queue.callback_key and self.ctx.callbacks is not None:
            raise _KeyPressed(digit, Target(TargetAction.CALLBACK))
        menu = self.ctx.directory.snapshot.prov.menus.get(self.queue.breakout_menu or "")
        option = next((o for o in menu.options if o.digit == digit), None) if menu else None
        if option is not None and option.target.action not in (TargetAction.REPEAT, TargetAction.LANGUAGE):
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

    async def _ring(self, agents: list[AgentState],
                    rung: Ringing | None = None) -> tuple[Ringing, float] | None:
        """Ring the attempt's agents (`rung`: the one agent's leg, ringing already); the first to
        answer wins, the others are hung up."""
        started = time.time()
        self.call.move(CallState.RINGING, *[f for agent in agents for f in self._step(E.RING, agent=agent)])
        steps: list[Awaitable[Ringing | None]] = [self._dial(agent) for agent in agents if rung is None]
        if rung is not None:
            steps.append(_given(rung))
        if self._music is None:  # the first attempt: every later one comes after the music
            steps.append(self._ringback())
        legs = await asyncio.gather(*steps)
        ringing = {leg.channel_id: leg for leg in legs if leg is not None}
        loop = asyncio.get_running_loop()
        rang = started - rung.started if rung is not None else 0.0  # a ring going on: its time counts
        deadline = loop.time() + self.queue.ring_timeout - rang + self.ctx.ring_grace_s  # Asterisk's first
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
                    self._tell(leg, ANSWERED)
                    return leg, started
                elif isinstance(message, ChannelDestroyed | StasisEnd):
                    del ringing[leg.channel_id]
                    self._no_answer(leg, f"cause {getattr(message, 'cause', '')}".strip())
                else:
                    self.call.unexpected(message)
        except _KeyPressed:
            why_not = "caller left the queue"
            raise
        except _PlaceGiven:
            why_not = "caller moved to video"
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
        self._tell(leg, RINGING)
        return leg

    def _no_answer(self, leg: Ringing, why: str) -> None:
        self.manager.ring_ended(self.waiter_, leg.agent, answered=False)
        self._tell(leg, GONE, why)
        self.call.unwatch(leg.channel_id)
        self.call.move(self.call.state, *self._step(E.RING_NOANSWER, agent=leg.agent,
                                                    ring_ms=_ms(time.time() - leg.started), detail=why))

    def _tell(self, leg: Ringing, state: str, detail: str = "", *,
              ring_as: tuple[str, str] | None = None) -> None:
        """The ringing agent's page hears of the ring (hotline.engine.live_hub): never waits.
        `ring_as`: (kind, passed by) when not the visit's own rings (a consult's)."""
        channel = self.call.channel
        kind, passed_by = ring_as or self._ring_as
        # A talk adopted after a restart has no place in line: its consult's wait counts from now.
        joined_at = self.waiter.joined_at if self.waiter is not None else time.time()
        news = RingNews(leg.agent.name, leg.channel_id, self.call.case_id,
                        self.visit_hop.id if self.visit_hop is not None else None, self.queue.name,
                        channel.caller_num, channel.caller_name, joined_at, self.call.ivr_path,
                        kind, passed_by)
        self.ctx.hub.publish(agent_topic(leg.agent.name), ring_event(news, state, detail))

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
        # A video leg waiting in its phone leg's place: the answer is the visit's (on the hop that
        # joined), and the leg's own hop is answered by the same agent too.
        own = (TalkTakenOver(self.queue_id, self.agent_ids.get(leg.agent.name)),) if self._on_hop() else ()
        call.move(CallState.TALKING, *self._step(E.ANSWER, agent=leg.agent,
                                                 wait_ms=self._waited_ms(answered_at),
                                                 ring_ms=_ms(answered_at - leg.started)), *own)
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
        self._tell(leg, GONE, f"{gone} gone before the bridge")
        self.call.move(self.call.state, *self._step(
            E.RING_NOANSWER, agent=leg.agent, ring_ms=_ms(time.time() - leg.started),
            detail=f"{gone} gone before the bridge"))
        log.info("call %s: not bridged with %s (%s)", self.call.channel_id, leg.agent.name, exc)
        if not caller_here:  # abandoned at the last moment: counted like any abandon
            with contextlib.suppress(AriError):  # it may have been created for the two of them
                await self.ctx.ari.destroy_bridge(self.call.bridge_id)
            await self.call.until_caller_gone()

    async def _follow_talk(self, leg: Ringing, answered_at: float, *, record: bool = True) -> TalkEnd:
        """The talk with `leg`'s agent, recorded (a segment of its own) if the queue says so."""
        self.call.talking_with, self.call.talk_leg = leg.agent.endpoint, leg.channel_id
        self.call.talk_since = answered_at
        self.holds = TalkHolds(leg.channel_id, self.call.channel_id, self.queue_id,
                               self.agent_ids.get(leg.agent.name))
        try:
            await self.recorder.start(self.call, self.agent_ids.get(leg.agent.name), record=record)
            return await self._talk_until_over(leg, answered_at)
        finally:
            self._end_holds()  # a talk handed over, transferred or cut: its holds end with it
            await self.recorder.end(self.call)
            if self.call.talking_with == leg.agent.endpoint:
                self.call.talking_with = None
            if self.call.talk_leg == leg.channel_id:
                self.call.talk_leg = None
                self.call.talk_since = None

    async def _talk_until_over(self, leg: Ringing, answered_at: float) -> TalkEnd:
        try:
            ended = await self._until_talk_ends(leg)
        except CallerGone:
            back = await self._until_back(leg) if self._may_come_back() else None
            if back is not None:
                return self._hand_over(back, leg, answered_at)
            await self._talk_ended(leg, answered_at, Party.CALLER)
            raise
        if isinstance(ended, Consulted):
            if ended.left and self.consult is not None and self.consult.answered_at is None:
                return await self._pass_on_ringing(leg, answered_at)
            return await self._complete_consult(ended, leg, answered_at)
        if isinstance(ended, HandoverAsked):
            return self._hand_over(ended, leg, answered_at)
        if isinstance(ended, tuple):
            return await self._transfer(*ended, leg, answered_at)
        return await self._talk_ended(leg, answered_at, ended)

    async def _until_talk_ends(self, leg: Ringing) -> (Party | HandoverAsked | Consulted
                                                       | tuple[TransferAsked, TransferTo]):
        """While talking: the agent hanging up, the customer's video leg asking for the talk, or
        a transfer asked (one the daemon cannot do is refused, and the talk goes on); the caller's
        switch key asks for a link to move to video."""
        while True:
            message = await self.call.next_event()
            if isinstance(message, ChannelHold | ChannelUnhold):
                self._note_hold(message)
                continue
            if isinstance(message, PhoneSwitchAsked):
                self._call_the_phone(message)
                continue
            if isinstance(message, TransferAsked) and message.kind == "attended":
                consulted = await (self._referred(message, leg) if message.refer_leg
                                   else self._attended(message, leg))
                if consulted is not None:
                    return consulted
                continue
            if isinstance(message, ConsultDialled):
                await self._phone_consult(message, leg)
                continue
            if self.consult is not None and await self._consult_news(message, leg):
                continue
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
                await self._camera_turned(message, leg)
                continue
            elif isinstance(message, RecordingAsked):
                await self.recorder.ask(self.call, message)
                continue
            elif isinstance(message, HangingUp):
                self.call.meant_to_hang_up = True
                continue
            elif _is_end_of(message, leg.channel_id):
                if is_shutdown_hangup(message):
                    self.call.cut_by_shutdown()  # the agent's leg heard it first
                elif self.consult is not None:  # the customer is handed over, not hung up
                    return Consulted(self.consult.asked, left=True)
                return Party.AGENT
            if message is not None:
                self.call.unexpected(message)

    def _note_hold(self, event: ChannelHold | ChannelUnhold) -> None:
        """A leg of the talk went on hold or came off it (hotline.engine.holds): recorded."""
        fact = self.holds.noticed(event) if self.holds is not None else None
        if fact is not None:
            self.call.move(self.call.state, fact)

    def _end_holds(self) -> None:
        if self.holds is not None:
            self.call.move(self.call.state, *self.holds.ended())

    def _call_the_phone(self, asked: PhoneSwitchAsked) -> None:
        """Dial the customer's phone for this video talk, in the background: the talk goes on,
        and the phone leg, once answered, asks for it (HandoverAsked) like a switch's video leg."""
        hop = self.call.hop
        if not self.call.video or hop is None:
            why = "the call is on the phone already" if hop else "its hop is not written yet"
            log.info("call %s: move to the phone asked by %s refused: %s", self.call.channel_id,
                     asked.asked_by, why)
            return
        task = asyncio.create_task(self._dial_phone(hop.id, asked), name=f"phone-{self.call.channel_id}")
        self._dialling.add(task)
        task.add_done_callback(self._dialling.discard)

    async def _dial_phone(self, hop_id: int, asked: PhoneSwitchAsked) -> None:
        try:
            await call_the_phone(self.ctx, hop_id, self.call.channel_id, asked)
        except (PhoneSwitchRefused, DialRefused) as refused:
            log.warning("call %s: move to the phone asked by %s refused: %s", self.call.channel_id,
                        asked.asked_by, refused)
        except AriError as exc:
            log.warning("call %s: the phone %s could not be dialled: %s", self.call.channel_id,
                        asked.number, exc)

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
        # Kept on the agent's leg in Asterisk: a daemon started during the wait goes on with it.
        await note_drop(self.ctx, leg.channel_id, DropNote(call.channel_id, time.time(), call.customer))
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

    async def _camera_turned(self, turned: CameraTurned, leg: Ringing) -> None:
        """The customer's camera went on or off (engine.camera): recorded, and video coming into a
        plain mixing bridge moves the talk to an SFU one. A move that fails leaves the talk as it
        was: the sound still flows."""
        if note_camera(self.call, turned):
            try:
                self.call.video_bridge = await to_sfu(self.ctx.ari, self.call.bridge_id) is not None
            except AriError as exc:
                log.warning("call %s: the talk could not move to an SFU bridge: %s",
                            self.call.channel_id, exc)
                return
            if self.call.video_bridge:  # the old bridge's recording ended with it
                await self.recorder.moved(self.call, self.agent_ids.get(leg.agent.name))

    def _hand_over(self, asked: HandoverAsked, leg: Ringing, answered_at: float) -> TalkOver:
        """Give the talk to the video leg that joined the bridge: it goes on there, this leg goes."""
        assert self.visit_hop is not None
        self.call.unwatch(leg.channel_id)
        asked.reply.set_result(Talk(self.queue, leg, answered_at, self.visit_hop, self.recorder.wanted,
                                    self.record))
        log.info("call %s: talk with %s handed over to video leg %s", self.call.channel_id,
                 leg.agent.name, asked.video_channel_id)
        self.call.leave(EndReason.SWITCHED)
        return TalkOver(EndReason.SWITCHED)

    async def _transfer_target(self, asked: TransferAsked, leg: Ringing) -> TransferTo | None:
        """Where the transfer goes, or None: refused (recorded, and told to the phone that asked),
        and the talk goes on."""
        try:
            if self.consult is not None:
                raise TransferRefused(f"an attended transfer to {self.consult.target} is under way: "
                                      f"complete or cancel it first")
            if asked.refer_leg not in (None, leg.channel_id):
                raise TransferRefused("the REFER came on a leg that is not this talk's agent")
            target = transfer_target(self.ctx.directory.snapshot.prov, asked.target)
            if isinstance(target, AgentTarget):
                self._check_agent_free(target.name, leg)
            return target
        except TransferRefused as refused:
            why = str(refused)
        log.info("call %s: transfer to %r asked by %s refused: %s", self.call.channel_id, asked.target,
                 asked.asked_by, why)
        self.call.move(CallState.TALKING, TransferNoted(
            asked.request, asked.asked_by, asked.target or "(none)", "refused", why, kind=asked.kind,
            from_queue_id=self.queue_id, from_agent_id=self.agent_ids.get(leg.agent.name)))
        await self._report_transfer(asked, TRANSFER_REFUSED)
        return None

    def _check_agent_free(self, name: str, leg: Ringing) -> None:
        """TransferRefused unless agent `name` could be rung now (logged in, not paused, not in a
        talk, ringing or wrap-up, phone registered) and is not the one passing the talk on."""
        if name == leg.agent.name:
            raise TransferRefused(f"agent {name} is the one talking with the customer")
        agent = self.manager.agents.get(name)
        if agent is None:
            raise TransferRefused(f"agent {name} is not known to this daemon")
        status = agent.status(self.manager.clock())
        if status is not AgentStatus.FREE:
            raise TransferRefused(f"agent {name} is {STATUS_WORDS.get(status, status.value)}")

    async def _transfer(self, asked: TransferAsked, to_where: TransferTo, leg: Ringing,
                        answered_at: float) -> Transferred:
        """Blind: the talk ends with its complete and a transfer event, the agent goes to wrap-up
        and leaves (a phone that sent a REFER hears it done first), and the caller, out of the
        case's bridge (which goes, with anyone brought into the talk), goes on to the target; its
        next visit joins with music at once."""
        call, to = self.call, str(to_where)
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
        here = Target(TargetAction.QUEUE, self.queue.name)  # whose line takes the caller after
        if isinstance(to_where, AgentTarget):
            back_to = leg.agent.name if self.queue.transfer_no_answer == "agent" else None
            return Transferred(here, Handoff(to_where.name, back_to, by=leg.agent.name))
        if isinstance(to_where, NumberTarget):
            return Transferred(here, Handoff(number=to_where.number))
        return Transferred(to_where)

    # -- attended (consult) transfers: the CLI's begin, complete and cancel ----------------------

    async def _attended(self, asked: TransferAsked, leg: Ringing) -> Consulted | None:
        """A step of an attended transfer: begun (the customer on hold, the target rung), cancelled,
        or Consulted when completed; refused steps are recorded and change nothing."""
        try:
            if asked.step not in CONSULT_STEPS:
                raise TransferRefused(f"an attended transfer has no step {asked.step!r}")
            if asked.step == "begin":
                await self._begin_consult(asked, leg)
                return None
            if self.consult is None:
                raise TransferRefused("no attended transfer is under way")
            if asked.step == "cancel":
                await self._consult_over("cancelled", f"cancelled by {asked.asked_by}", leg, asked)
                return None
            if self.consult.answered_at is None:
                raise TransferRefused(f"{self.consult.target} has not answered yet")
            return Consulted(asked)
        except TransferRefused as refused:
            target = asked.target or (str(self.consult.target) if self.consult else "(none)")
            log.info("call %s: attended transfer %s to %r refused: %s", self.call.channel_id, asked.step,
                     target, refused)
            self._note_attended(asked.request, asked.asked_by, target, "refused", str(refused), leg)
            return None

    async def _phone_consult(self, dialled: ConsultDialled, leg: Ringing) -> None:
        """The agent's own phone dialled a colleague: the begin of an attended transfer, checked
        as the CLI's is; refused, the phone's call is hung up busy (486) and the talk goes on."""
        asked = TransferAsked(f"agent:{dialled.target}", "phone", kind="attended", step="begin",
                              phone_leg=dialled.channel_id)  # only agents are dialled from the context
        await self._attended(asked, leg)
        if self.consult is None or self.consult.phone_leg != dialled.channel_id:
            self.call.unwatch(dialled.channel_id)
            with contextlib.suppress(AriError):
                await self.ctx.ari.hangup(dialled.channel_id, CONSULT_BUSY)

    async def _referred(self, asked: TransferAsked, leg: Ringing) -> Consulted | None:
        """The phone's REFER with Replaces: Consulted when its Replaces names this talk's consult
        call from that phone (answered by the target); anything else is refused (NOTIFY 603) and
        the talk, and the consult, go on."""
        consult = self.consult
        try:
            if asked.refer_leg != leg.channel_id:
                raise TransferRefused("the REFER came on a leg that is not this talk's agent")
            if consult is None or consult.phone_leg is None:
                raise TransferRefused("no consult call from the agent's phone is under way")
            if asked.replaces != consult.phone_leg:
                raise TransferRefused("its Replaces names a call that is not this talk's consult call")
            if consult.answered_at is None:
                raise TransferRefused(f"{consult.target} has not answered yet")
            return Consulted(asked)
        except TransferRefused as refused:
            target = str(consult.target) if consult is not None else (asked.target or "(none)")
            log.info("call %s: REFER with Replaces to %r refused: %s", self.call.channel_id, target, refused)
            self._note_attended(asked.request, asked.asked_by, target, "refused", str(refused), leg)
            await self._report_transfer(asked, TRANSFER_REFUSED)
            return None

    async def _begin_consult(self, asked: TransferAsked, leg: Ringing) -> None:
        if self.consult is not None:
            raise TransferRefused(f"an attended transfer to {self.consult.target} is under way already")
        target = transfer_target(self.ctx.directory.snapshot.prov, asked.target)
        if not isinstance(target, AgentTarget):
            raise TransferRefused(f"an attended transfer goes to an agent (agent:NAME), not to {target}")
        self._check_agent_free(target.name, leg)
        agent = self.manager.consult_ring(target.name, self.queue.name)
        if agent is None:
            raise TransferRefused(f"agent {target.name} is not free")
        try:
            self.consult = await consulting.begin(self.call, self.ctx, asked, target, agent,
                                                  ring_timeout=self.queue.ring_timeout,
                                                  music=self.queue.music)
        except TransferRefused:
            self.manager.consult_ended(agent, answered=False)
            raise
        self._tell(self.consult.leg, RINGING, ring_as=("consult", leg.agent.name))
        self._note_attended(asked.request, asked.asked_by, str(target), "consulting", "", leg)

    async def _consult_news(self, message: Message | None, leg: Ringing) -> bool:
        """The consulted agent's leg answered or ended; False: the message is not about it."""
        consult = self.consult
        assert consult is not None
        if isinstance(message, StasisStart) and message.channel.id == consult.leg.channel_id:
            self.manager.consult_answered(consult.leg.agent)
            self._tell(consult.leg, ANSWERED, ring_as=("consult", leg.agent.name))
            await consulting.target_answered(self.call, self.ctx, consult)
            return True
        if consult.phone_leg is not None and _is_end_of(message, consult.phone_leg):
            await self._consult_over("cancelled", "the agent's phone hung up the consult call", leg)
            return True
        if _is_end_of(message, consult.leg.channel_id):
            if consult.answered_at is None:
                why = f"cause {getattr(message, 'cause', '')}".strip()
                await self._consult_over("unanswered", f"{consult.target} did not answer ({why})", leg)
            else:
                await self._consult_over("cancelled", f"{consult.target} hung up", leg)
            return True
        return False

    async def _consult_over(self, outcome: str, why: str, leg: Ringing, asked: TransferAsked | None = None,
                            *, back: bool = True) -> None:
        """The consult ends without a transfer: the target's leg goes, and (`back`) the customer is
        back in the bridge with the agent."""
        consult = self.consult
        assert consult is not None
        self.consult = None
        await consulting.drop(self.call, self.ctx, consult)
        self.manager.consult_ended(consult.leg.agent, answered=consult.answered_at is not None)
        if consult.answered_at is None:
            self._tell(consult.leg, GONE, why, ring_as=("consult", leg.agent.name))
        if back:
            await consulting.back_to_customer(self.call, self.ctx)
        log.info("call %s: attended transfer to %s %s: %s", self.call.channel_id, consult.target,
                 outcome, why)
        self._note_attended(asked.request if asked else None, (asked or consult.asked).asked_by,
                            str(consult.target), outcome, why, leg)

    async def _complete_consult(self, ended: Consulted, leg: Ringing, answered_at: float) -> TalkEnd:
        """The customer goes on with the consulted agent: the first talk ends (its complete and
        transfer events, the agent to wrap-up, their leg hung up), the customer is back in the
        bridge, and the talk with the target is a new visit of this queue (join, ring, answer).
        Completed by the transferring agent hanging up (`ended.left`): the same, the row saying so."""
        consult, call = self.consult, self.call
        assert consult is not None
        self._first_talk_passed_on(ended, leg, answered_at)
        if not ended.left:
            await self._report_transfer(ended.asked, TRANSFER_DONE)  # a phone's REFER: NOTIFY 200
        await self._hang_up(leg.channel_id)
        await consulting.hand_over(call, self.ctx, consult)
        await consulting.back_to_customer(call, self.ctx)
        target, target_answered = consult.leg, consult.answered_at or time.time()
        call.move(CallState.TALKING, *self._step(E.JOIN, position=1), *self._step(E.RING, agent=target.agent),
                  *self._step(E.ANSWER, agent=target.agent, wait_ms=0,
                              ring_ms=_ms(target_answered - target.started)))
        return await self._follow_talk(target, time.time())

    async def _pass_on_ringing(self, leg: Ringing, answered_at: float) -> Transferred:
        """The transferring agent hung up while the consulted agent still rings: the talk is passed
        on as a blind transfer to that agent is (the first talk's complete and transfer, the case's
        bridge gone), and the customer, still on hold, starts a new visit of this queue first in
        line, where the consulted agent's ring goes on until the queue's ring timeout. Nobody rings
        back the agent who left."""
        consult = self.consult
        assert consult is not None
        self._first_talk_passed_on(Consulted(consult.asked, left=True), leg, answered_at)
        for participant in self.ctx.conference_legs(self.call.case_id or 0):
            await self._hang_up(participant)
        with contextlib.suppress(AriError):
            await self.ctx.ari.destroy_bridge(self.call.bridge_id)
        target = consult.leg
        return Transferred(Target(TargetAction.QUEUE, self.queue.name),
                           Handoff(target.agent.name, leg=target.channel_id, rung_at=target.started,
                                   by=leg.agent.name))

    def _first_talk_passed_on(self, ended: Consulted, leg: Ringing, answered_at: float) -> None:
        """The consult is over and the first talk passed on to its target: its complete and
        transfer events, the row of the transfer, the transferring agent to wrap-up. The target's
        leg stays watched: the talk with them goes on (or their ring does)."""
        consult = self.consult
        assert consult is not None
        self.consult = None
        call, to = self.call, str(consult.target)
        self.manager.call_ended(leg.agent, self.queue.name)
        call.unwatch(leg.channel_id)
        asked, left = ended.asked, ended.left
        why = ("" if not left else f"{leg.agent.name} hung up during the consult" if consult.answered_at
               else f"{leg.agent.name} hung up while {to} rang")
        call.move(CallState.TALKING,
                  *self._step(E.COMPLETE, agent=leg.agent, talk_ms=_ms(time.time() - answered_at),
                              detail=f"transferred to {to}"),
                  *self._step(E.TRANSFER, agent=leg.agent, detail=to),
                  TransferNoted(None if left else asked.request, asked.asked_by, to, "transferred", why,
                                kind="attended", from_queue_id=self.queue_id,
                                from_agent_id=self.agent_ids.get(leg.agent.name)))
        log.info("call %s: %s transferred to %s, attended (%s)", call.channel_id, leg.agent.name, to,
                 why or f"completed by {asked.asked_by}")

    def _note_attended(self, request: str | None, asked_by: str, target: str, outcome: str, why: str,
                       leg: Ringing) -> None:
        """A row of transfers for a step of an attended transfer (`request`: the asker's; None for
        what nobody asked, a target's no answer)."""
        self.call.move(CallState.TALKING, TransferNoted(
            request, asked_by, target, outcome, why, kind="attended", from_queue_id=self.queue_id,
            from_agent_id=self.agent_ids.get(leg.agent.name)))

    async def _report_transfer(self, asked: TransferAsked, state: str) -> None:
        """The NOTIFY a phone that sent a REFER waits for (nothing to tell the CLI: it reads the row)."""
        if asked.refer_leg is not None:
            with contextlib.suppress(AriError):  # the agent hung up meanwhile: nobody to tell
                await self.ctx.ari.transfer_progress(asked.refer_leg, state)

    def _on_hop(self) -> Hop | None:
        return self.visit_hop if self.visit_hop is not self.call.hop else None

    async def _talk_ended(self, leg: Ringing, answered_at: float, who: Party) -> TalkOver:
        """Record the complete, free the agent into wrap-up, and end the talk for everyone in it:
        the other party, the parties brought into it (a conference), an agent being consulted
        (an attended transfer cancelled) and the case's bridge. The agent having hung up in a
        queue with a survey, a phone caller is not hung up but asked it (the talk over first; a
        customer's browser has no keypad: the web page asks its own)."""
        call = self.call
        if self.consult is not None:
            await self._consult_over("cancelled", f"{who} hung up", leg, back=False)
        self._end_holds()  # with the talk, before its complete (and any survey after it)
        self.manager.call_ended(leg.agent, self.queue.name)
        call.unwatch(leg.channel_id)
        reason = call.reason_caller_left() if who is Party.CALLER or call.shut_down else EndReason.COMPLETED
        complete = self._step(E.COMPLETE, agent=leg.agent, talk_ms=_ms(time.time() - answered_at),
                              detail=call.cut_why if call.shut_down else f"{who} hung up")
        surveyed = (who is Party.AGENT and not call.shut_down and not call.web and bool(self.queue.survey)
                    and bool(complete))
        if surveyed:
            call.stay_for_survey(reason, *complete, self._survey_begun(leg.agent))
        else:
            call.leave(reason, *complete)
            await self._hang_up(leg.channel_id if who is Party.CALLER else call.channel_id)
        for participant in self.ctx.conference_legs(call.case_id or 0):
            await self._hang_up(participant)  # the talk is over for everyone it brought in
        try:
            await self.ctx.ari.destroy_bridge(call.bridge_id)
        except AriError:
            if not call.shut_down:
                raise  # else the bridge went with its Asterisk (shut down, or its node lost)
        if surveyed:
            await self._survey()
        return TalkOver(EndReason.COMPLETED)

    def _survey_begun(self, agent: AgentState) -> SurveyBegun:
        assert self.queue_id is not None  # `complete` was recorded: the queue has an id
        return SurveyBegun(self.queue_id, self.agent_ids.get(agent.name), len(self.queue.survey))

    async def _survey(self) -> None:
        """The caller, out of the bridge, answers the survey, then leaves (hung up by the call's
        end). The talk's recording ends first, and the call talks with nobody: the survey is not
        part of the talk."""
        await self.recorder.end(self.call)
        self.call.talking_with = self.call.talk_leg = self.call.talk_since = None
        log.info("call %s: the agent hung up; the caller is asked queue %s's survey", self.call.channel_id,
                 self.queue.name)
        q = self.queue
        await run_survey(self.call, q.survey, q.survey_thanks, self.ctx.survey_key_timeout_s)
        self.call.leave(EndReason.COMPLETED)

    async def _channel_exists(self, channel_id: str) -> bool:
        try:
            await self.ctx.ari.channel(channel_id)
        except AriNotFound:
            return False
        return True

    # -- recording -----------------------------------------------------------------------------

    async def _adopt_recordings(self) -> None:
        """After a restart: the recordings of this leg's talk the stopped daemon left open, taken
        over or closed (engine.recording); the database away, they are left as they are (logged)."""
        if self.call.hop is not None:
            await self.recorder.adopt_left_open(self.call, self.call.hop.id)

    async def _announce_recording(self) -> None:
        """The record_announcement (the queue's, else its hotline's), played to the caller before
        joining (answering the call) when the queue records, once per call: a caller transferred
        to a second queue that records heard it already. A caller hanging up meanwhile raises
        CallerGone, before any join is written."""
        sound = announcement_of(self.queue, self.call.in_hotline, self.record)
        if sound is None or self.call.announced_recording:
            return
        self.call.announced_recording = True
        log.info("call %s: announcing queue %s records (%s)", self.call.channel_id, self.queue.name, sound)
        await self.call.play(f"sound:{sound}")

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


def video_key_media(key: str) -> list[str]:
    """ "Press N": Asterisk's own sounds, after the position, for the queue's video key."""
    return [sound(prompts.PRESS), f"digits:{key}"]


def holdtime_media(seconds: float) -> list[str]:
    """ "The estimated hold time is currently N minutes", or "less than one minute"; rounded to
    the nearest minute as app_queue does."""
    minutes = int((seconds + 30) // 60)
    if minutes < 1:
        return [sound(prompts.HOLD_TIME), sound(prompts.LESS_THAN), "number:1", sound(prompts.MINUTE)]
    return [sound(prompts.HOLD_TIME), f"number:{minutes}",
            sound(prompts.MINUTE if minutes == 1 else prompts.MINUTES)]


async def _all(*steps: Awaitable[None]) -> None:
    """Run `steps` at once; the first failure is raised once all of them have ended (none is
    left running behind the caller's back)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _given(leg: Ringing) -> Ringing:
    return leg


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


def _next_period(since: float, period: int | None, now: float) -> float | None:
    """The first announcement due after `now`, every `period` seconds from `since` (None: none)."""
    if not period:
        return None
    due = since + period
    if due < now:  # back in line after a while (a callback asked and not given): no catching up
        due += ((now - due) // period + 1) * period
    return due


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
