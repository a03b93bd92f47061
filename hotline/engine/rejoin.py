"""A talk waiting for a customer's page to come back, across a daemon restart.

A customer's web leg that drops while talking leaves the agent in the case's bridge for
`web_rejoin_grace` seconds (queueing.visit). When the wait begins, the call writes a note on the
agent's leg, a channel variable Asterisk keeps as long as the leg lives: which leg dropped, when,
and whose page it was. A daemon started during the wait (SIGKILL included) finds the agent's leg
alone in Stasis, reads the note, and waits out the rest of the grace period (`AwaitingRejoin`):
the same page calling again takes the talk over as it would have, and past the grace the talk
ends as a hang-up does.

The note is never cleared: once the talk was taken over, the dropped leg's hop is closed
(`switched`) and a note naming it is refused; while a later leg talks, that leg's adopted call
holds the agent's leg, which is then no orphan to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from hotline.asterisk.ari_events import ChannelDestroyed, ChannelHangupRequest, StasisEnd
from hotline.engine.context import CallContext
from hotline.engine.directory import Snapshot
from hotline.engine.facts import HopEnded, QueueStep
from hotline.engine.messages import ChannelVanished, HandoverAsked, Message
from hotline.engine.outcomes import EndReason, Party, QueueEventKind
from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.queueing.talk import Ringing, Talk
from hotline.errors import AriError, AriNotFound
from hotline.provision.model import Queue
from hotline.store.hops import Hop

log = logging.getLogger(__name__)

NOTE_VARIABLE = "HOTLINE_REJOIN"
DROPPED = "the customer's connection dropped"


@dataclass(frozen=True)
class DropNote:
    """What the agent's leg says about the wait: the dropped leg, when it dropped, whose page."""

    dropped_channel: str
    dropped_at: float  # epoch seconds
    customer: str  # the browser's own id (hex)

    def text(self) -> str:
        return f"{self.dropped_channel};{self.dropped_at:.3f};{self.customer}"

    @classmethod
    def parse(cls, text: str) -> DropNote | None:
        parts = text.split(";")
        if len(parts) != 3 or not all(parts):
            return None
        try:
            return cls(parts[0], float(parts[1]), parts[2])
        except ValueError:
            return None


async def note_drop(ctx: CallContext, agent_leg: str, note: DropNote) -> None:
    """Written on the agent's leg as the wait begins; a failure only costs the wait a restart."""
    try:
        await ctx.ari.set_channel_variable(agent_leg, NOTE_VARIABLE, note.text())
    except AriError as exc:
        log.warning("the wait for %s's page is not noted on %s (a restart would end it): %s",
                    note.dropped_channel, agent_leg, exc)


async def read_note(ctx: CallContext, agent_leg: str) -> DropNote | None:
    try:
        return DropNote.parse(await ctx.ari.channel_variable(agent_leg, NOTE_VARIABLE))
    except AriError:  # no such variable: the leg waits for nobody
        return None


@dataclass(frozen=True)
class Waiting:
    """A wait a restarted daemon takes over: the talk and what is left of the grace period."""

    queue: str
    agent: str
    agent_id: int | None
    answered_at: float
    until: float  # epoch seconds: the drop plus the grace period


def adoption(note: DropNote, hop: Hop | None, alive: set[str], snapshot: Snapshot,
             grace_s: float) -> Waiting | str:
    """Whether the agent's leg waits for a dropped page: the wait, or why not (then the leg is
    hung up, as any leg no call holds). The deadline counts from the drop, not from the restart."""
    if note.dropped_channel in alive:
        return "the dropped leg is still up"
    if hop is None or hop.ended_at is not None:
        return "the dropped leg's hop is closed"
    if grace_s <= 0:
        return "web_rejoin_grace is 0"
    queues = {ident: name for name, ident in snapshot.ids.get("queues", {}).items()}
    agents = {ident: name for name, ident in snapshot.ids.get("agents", {}).items()}
    queue, agent = queues.get(hop.queue_id or 0), agents.get(hop.agent_id or 0)
    if queue is None or agent is None or hop.answered_at is None:
        return "the dropped leg's hop records no talk of a known queue and agent"
    return Waiting(queue, agent, hop.agent_id, hop.answered_at.timestamp(), note.dropped_at + grace_s)


class AwaitingRejoin:
    """The rest of a wait for a dropped page, under a daemon started during it: the router finds
    it for the page calling again (`customer`) and for the agent page's notice (`awaiting_rejoin`)."""

    def __init__(self, ctx: CallContext, hop: Hop, queue: Queue, waiting: Waiting, agent_leg: str,
                 bridge: str, customer: str, agent_endpoint: str) -> None:
        self.ctx, self.hop, self.queue, self.waiting = ctx, hop, queue, waiting
        self.agent_leg, self.bridge, self.customer = agent_leg, bridge, customer
        self.awaiting_rejoin: str | None = agent_endpoint
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()

    # -- as a live call (engine.context.LiveCall) --------------------------------------------------

    @property
    def channel_id(self) -> str:
        return self.hop.channel_id

    def post(self, message: Message) -> None:
        self.inbox.put_nowait(message)

    @property
    def is_talking(self) -> bool:
        return False  # its leg is gone: nothing to switch from

    @property
    def is_waiting(self) -> bool:
        return False

    @property
    def bridge_id(self) -> str:
        return self.bridge

    @property
    def case_id(self) -> int | None:
        return self.hop.case_id

    # -- the wait --------------------------------------------------------------------------------

    async def run(self) -> None:
        agent = self.ctx.queues.adopt_talking(self.waiting.agent, self.queue.name)
        if agent is None:  # not one of this daemon's agents: the talk ends with the wait
            self.ctx.records.submit(HopEnded(EndReason.COMPLETED, None, DROPPED).record(self.hop))
            await self._release(Party.CALLER)
            return
        left = self.waiting.until - time.time()
        log.info("call %s: waiting %.0f s more for the customer's page after a restart (agent %s)",
                 self.channel_id, max(left, 0), agent.name)
        if not await self._alive(self.agent_leg):
            self.post(ChannelVanished(self.agent_leg))
        try:
            ended = await self._until_back_or_over(agent, left)
        finally:
            self.awaiting_rejoin = None
        if ended is not None:
            self._complete(agent, ended)
            await self._release(ended)

    async def _until_back_or_over(self, agent: AgentState, left: float) -> Party | None:
        """None: the page came back and took the talk; else who ended it (the caller: the grace
        period passed)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(left, 0)):
                while True:
                    message = await self.inbox.get()
                    if isinstance(message, HandoverAsked) and not message.reply.done():
                        self._hand_over(agent, message)
                        return None
                    if _is_end_of(message, self.agent_leg):
                        return Party.AGENT
        log.info("call %s: the customer did not come back within the grace period", self.channel_id)
        return Party.CALLER

    def _hand_over(self, agent: AgentState, asked: HandoverAsked) -> None:
        """The page came back: its leg goes on with the talk, as the dropped call would hand it."""
        self.ctx.unwatch(self.agent_leg)  # first: the new leg watches it from now on
        leg = Ringing(agent, self.agent_leg, self.waiting.answered_at)
        asked.reply.set_result(Talk(self.queue, leg, self.waiting.answered_at, self.hop))
        self.ctx.records.submit(HopEnded(EndReason.SWITCHED, None, DROPPED).record(self.hop))
        log.info("call %s: talk with %s handed over to leg %s, back after a restart", self.channel_id,
                 agent.name, asked.video_channel_id)

    def _complete(self, agent: AgentState, who: Party) -> None:
        self.ctx.queues.call_ended(agent, self.queue.name)
        talk_ms = int((time.time() - self.waiting.answered_at) * 1000)
        queue_id = self.hop.queue_id or 0
        self.ctx.records.submit(QueueStep(queue_id, QueueEventKind.COMPLETE, agent_id=self.waiting.agent_id,
                                          talk_ms=talk_ms, detail=f"{who} hung up").record(self.hop))
        self.ctx.records.submit(HopEnded(EndReason.COMPLETED, None, DROPPED).record(self.hop))

    async def _release(self, who: Party) -> None:
        """The talk is over for whoever is left in it: the agent, parties brought in, the bridge."""
        legs = [self.agent_leg] if who is Party.CALLER else []
        for leg in [*legs, *self.ctx.conference_legs(self.hop.case_id)]:
            with contextlib.suppress(AriError):
                await self.ctx.ari.hangup(leg, "normal")
        self.ctx.unwatch(self.agent_leg)
        with contextlib.suppress(AriError):
            await self.ctx.ari.destroy_bridge(self.bridge)

    async def _alive(self, leg: str) -> bool:
        try:
            await self.ctx.ari.channel(leg)
        except AriNotFound:
            return False
        return True


def _is_end_of(message: Message, channel_id: str) -> bool:
    if isinstance(message, ChannelVanished):
        return message.channel_id == channel_id
    return (isinstance(message, ChannelDestroyed | StasisEnd | ChannelHangupRequest)
            and message.channel.id == channel_id)
