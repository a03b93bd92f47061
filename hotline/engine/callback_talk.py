"""An answered callback's talk: the agent's leg and the customer's outbound leg in the case's
bridge, followed until either hangs up. The placer follows the talk it bridged; a daemon started
after the one that bridged it (SIGKILL included) finds both legs in the case's bridge and adopts
the talk (`found_talks`, `adoption`), so a restart never cuts it.

The end is the same either way: the hop closes `completed` with the cause, the queue events
`complete` (talk time from the answer) and the agent's wrap-up follow. The callbacks row was made
`answered` before the bridge and is not touched again.

The talk is recorded as an inbound one is (engine.recording.TalkRecorder), by its queue's record
mode (the queue's own, else the hotline the customer called: record_mode): `always` from the
bridge to the end, `on_demand` once asked (the request is a user event about the customer's leg,
the channel of the outbound hop, which reaches this talk's inbox); one recording row on the
outbound hop with its agent and queue. An adopted talk adopts the recording Asterisk went on with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from hotline.asterisk.ari_events import (
    Bridge,
    ChannelDestroyed,
    ChannelHangupRequest,
    StasisEnd,
)
from hotline.engine.context import CallContext
from hotline.engine.directory import Snapshot
from hotline.engine.facts import HopEnded, QueueStep, RecordingFact, TalkTakenOver
from hotline.engine.leg import caller_hangup_cause
from hotline.engine.messages import ChannelVanished, Message, RecordingAsked
from hotline.engine.outcomes import EndReason, Party, QueueEventKind
from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.recording import TalkRecorder, close_left_open, record_mode
from hotline.errors import AriError, AriNotFound
from hotline.store.hops import Hop

log = logging.getLogger(__name__)

# The legs a callback places: callback-N-agent-XXXXXXXX and callback-N-customer-XXXXXXXX.
_LEG = re.compile(r"^callback-(\d+)-(agent|customer)-[0-9a-f]+$")
CUSTOMER_LEG = "-customer-"
NOT_ADOPTED = "callback talk not adopted after a daemon restart"
RECORDING_NOT_ADOPTED = ("its callback talk was not taken over by the restarted daemon, which hung it up; "
                         "its file stays in the recording directory")


@dataclass(frozen=True)
class Talk:
    """A callback's talk under way: who talks, on which legs, recorded on which hop, since when."""

    hop: Hop  # the customer's outbound leg's
    queue: str
    queue_id: int
    agent: AgentState
    agent_id: int | None
    agent_leg: str
    customer_leg: str
    answered_at: float  # epoch seconds: the talk time counts from it
    bridge: str


class RecordedTalk:
    """A callback's talk as its recorder sees it (engine.recording.RecordedCall): the case's
    bridge, the customer's leg (where a recording request is sent), the outbound hop its rows
    are on."""

    def __init__(self, ctx: CallContext, talk: Talk) -> None:
        self.ctx, self.talk = ctx, talk

    @property
    def channel_id(self) -> str:
        return self.talk.customer_leg

    @property
    def bridge_id(self) -> str:
        return self.talk.bridge

    @property
    def case_id(self) -> int | None:
        return self.talk.hop.case_id

    def note_facts(self, *facts: RecordingFact) -> None:
        for fact in facts:
            self.ctx.records.submit(fact.record(self.talk.hop))


def talk_record_mode(snapshot: Snapshot, talk: Talk) -> str:
    """How the callback's talk is recorded: its queue's `record`, else that of the hotline the
    customer called (the hop's); a queue gone from provisioning records nothing."""
    queue = snapshot.prov.queues.get(talk.queue)
    if queue is None:
        return "never"
    names = {ident: name for name, ident in snapshot.ids.get("hotlines", {}).items()}
    hotline = snapshot.prov.hotlines.get(names.get(talk.hop.hotline_id or 0, ""))
    return record_mode(queue, hotline)


async def follow(ctx: CallContext, inbox: asyncio.Queue[Message], talk: Talk, *,
                 adopted: bool = False) -> None:
    """Until either party hangs up, recorded if its queue says so (`adopted`: after a restart,
    the recording Asterisk went on with taken over, none begun); then the complete, the
    recording's end, the hop's close, the agent's wrap-up, and the other leg and the bridge
    released."""
    recorder = TalkRecorder(ctx, talk_record_mode(ctx.directory.snapshot, talk), talk.queue_id)
    call = RecordedTalk(ctx, talk)
    try:
        if adopted:
            await recorder.adopt_left_open(call, talk.hop.id)
        await recorder.start(call, talk.agent_id, record=not adopted)
        leg, first = await _first_end(inbox, recorder, call)
        who = Party.AGENT if leg == talk.agent_leg else Party.CALLER
        ctx.queues.call_ended(talk.agent, talk.queue)
        talk_ms = int((time.time() - talk.answered_at) * 1000)
        ctx.records.submit(QueueStep(talk.queue_id, QueueEventKind.COMPLETE, agent_id=talk.agent_id,
                                     talk_ms=talk_ms, detail=f"{who} hung up").record(talk.hop))
    finally:  # a daemon stopping leaves it to Asterisk, for the next one to adopt
        await recorder.end(call)
    cause = await _cause(inbox, leg, first, ctx.hangup_grace_s)
    ctx.records.submit(HopEnded(EndReason.COMPLETED, *cause).record(talk.hop))
    await release(ctx, talk.bridge, [talk.agent_leg, talk.customer_leg])


async def _first_end(inbox: asyncio.Queue[Message], recorder: TalkRecorder,
                     call: RecordedTalk) -> tuple[str, Message]:
    """The first of the talk's legs to end, and the message that said so; a recording start,
    stop, pause or resume asked meanwhile is done."""
    legs = (call.talk.agent_leg, call.talk.customer_leg)
    while True:
        message = await inbox.get()
        if isinstance(message, RecordingAsked):
            await recorder.ask(call, message)
            continue
        leg = channel_of(message)
        if leg in legs and leg is not None and is_end(message):
            return leg, message


async def _cause(inbox: asyncio.Queue[Message], leg: str, first: Message,
                 grace_s: float) -> tuple[int | None, str | None]:
    """The cause `leg` ended with: its ChannelDestroyed's, which follows StasisEnd (waited for a
    moment); a BYE, which Asterisk 22 reports as cause 0, is Normal Clearing."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace_s):
            while not isinstance(first, ChannelDestroyed | ChannelVanished):
                message = await inbox.get()
                if channel_of(message) == leg:
                    first = message
    if isinstance(first, ChannelDestroyed):
        return caller_hangup_cause(first.cause, first.cause_txt)
    return None, f"{'customer' if CUSTOMER_LEG in leg else 'agent'} hung up"


async def release(ctx: CallContext, bridge: str, legs: list[str]) -> None:
    for leg in legs:
        with contextlib.suppress(AriError):
            await ctx.ari.hangup(leg, "normal")
        ctx.unwatch(leg)
    with contextlib.suppress(AriError):
        await ctx.ari.destroy_bridge(bridge)


def channel_of(message: Message) -> str | None:
    if isinstance(message, ChannelVanished):
        return message.channel_id
    channel = getattr(message, "channel", None)
    return getattr(channel, "id", None)


def is_end(message: Message) -> bool:
    return isinstance(message, ChannelDestroyed | StasisEnd | ChannelHangupRequest | ChannelVanished)


# -- adoption after a restart ------------------------------------------------------------------


@dataclass(frozen=True)
class FoundTalk:
    """A case bridge holding an answered callback's two legs, as a restarted daemon finds it."""

    bridge: str
    agent_leg: str
    customer_leg: str


def found_talks(bridges: Iterable[Bridge]) -> list[FoundTalk]:
    """The callback talks in these bridges: a case bridge whose only legs are one callback's
    agent leg and its customer leg. The customer joins the bridge only once answered (the row
    was made `answered` before), so both there means a talk; an agent alone hears ringback for
    a customer not answered yet, and that try is placed afresh."""
    found = []
    for bridge in bridges:
        legs = [m for c in bridge.channels if (m := _LEG.match(c))]
        if not bridge.id.startswith("case-") or len(legs) != 2 or len(bridge.channels) != 2:
            continue
        kinds = {m[2]: m[0] for m in legs}
        if set(kinds) == {"agent", "customer"} and legs[0][1] == legs[1][1]:
            found.append(FoundTalk(bridge.id, kinds["agent"], kinds["customer"]))
    return found


@dataclass(frozen=True)
class Adopt:
    """What a restarted daemon takes a found talk for."""

    queue: str
    queue_id: int
    agent: str
    agent_id: int | None
    answered_at: float | None  # None: the killed daemon never wrote the answer (written now)


def adoption(hop: Hop | None, agent_endpoint: str, snapshot: Snapshot,
             agents_by_endpoint: dict[str, str]) -> Adopt | str:
    """The talk to follow, or why it cannot be (its legs are then hung up, as before adoption
    existed). The agent is the hop's (its answer written) or else the one whose phone the
    agent leg rings; the queue is the hop's, the callback's own."""
    if hop is None:
        return "no hop for the customer's leg"
    if hop.ended_at is not None:
        return "the customer's hop is closed"
    queues = {ident: name for name, ident in snapshot.ids.get("queues", {}).items()}
    queue = queues.get(hop.queue_id or 0)
    if queue is None or hop.queue_id is None:
        return "its queue is not provisioned any more"
    agent_ids = snapshot.ids.get("agents", {})
    names = {ident: name for name, ident in agent_ids.items()}
    recorded = names.get(hop.agent_id or 0) if hop.answered_at is not None else None
    agent = recorded or agents_by_endpoint.get(agent_endpoint)
    if agent is None:
        return f"no agent of this daemon's has the endpoint {agent_endpoint!r}"
    answered_at = hop.answered_at.timestamp() if recorded and hop.answered_at is not None else None
    return Adopt(queue, hop.queue_id, agent, agent_ids.get(agent), answered_at)


class AdoptedTalk:
    """A callback's talk a restarted daemon took over: the inbox of both its legs (their channel
    id is the customer leg's)."""

    def __init__(self, ctx: CallContext, found: FoundTalk) -> None:
        self.ctx, self.found = ctx, found
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.hop: Hop | None = None

    @property
    def channel_id(self) -> str:
        return self.found.customer_leg

    def post(self, message: Message) -> None:
        self.inbox.put_nowait(message)

    async def take(self) -> Talk | None:
        """Decide whether to follow it (the legs watched already, so no end is missed): the talk,
        with its answer recorded now if the killed daemon never wrote it; None: not ours."""
        ctx, found = self.ctx, self.found
        hop = self.hop = await ctx.contacts.hop_by_channel(ctx.node, found.customer_leg)
        try:
            endpoint = (await ctx.ari.channel(found.agent_leg)).endpoint
        except AriNotFound:
            endpoint = ""
        agents = {a.endpoint: a.name for a in ctx.queues.agents.values()}
        decided = adoption(hop, endpoint, ctx.directory.snapshot, agents)
        if isinstance(decided, str) or hop is None:
            log.info("callback talk in %s not adopted: %s", found.bridge, decided)
            return None
        agent = ctx.queues.adopt_talking(decided.agent, decided.queue)
        if agent is None:
            log.info("callback talk in %s not adopted: agent %s unknown", found.bridge, decided.agent)
            return None
        answered_at = decided.answered_at
        if answered_at is None:  # bridged a moment before the kill: the answer is recorded now, once
            answered_at = time.time()
            ctx.records.submit(TalkTakenOver(decided.queue_id, decided.agent_id).record(hop))
            ctx.records.submit(QueueStep(decided.queue_id, QueueEventKind.ANSWER,
                                         agent_id=decided.agent_id).record(hop))
        log.info("callback talk adopted: %s with %s in %s (hop %s)", decided.agent, hop.dialled,
                 found.bridge, hop.id)
        return Talk(hop, decided.queue, decided.queue_id, agent, decided.agent_id, found.agent_leg,
                    found.customer_leg, answered_at, found.bridge)

    async def run(self) -> None:
        talk = await self.take()
        if talk is None:  # hung up, as every callback leg was before adoption existed
            await release(self.ctx, self.found.bridge, [self.found.agent_leg, self.found.customer_leg])
            if self.hop is not None and self.hop.ended_at is None:
                self.ctx.records.submit(HopEnded(EndReason.FAILED, cause_text=NOT_ADOPTED).record(self.hop))
                await close_left_open(self.ctx, self.hop, RECORDING_NOT_ADOPTED)
            return
        await self._subscribe()
        for leg in (talk.agent_leg, talk.customer_leg):  # an end before the watch began reached nobody
            if not await self._alive(leg):
                self.post(ChannelVanished(leg))
        await follow(self.ctx, self.inbox, talk, adopted=True)

    async def _subscribe(self) -> None:
        """The customer leg's cause comes in ChannelDestroyed, after StasisEnd."""
        if not self.ctx.ari.all_channels:
            for leg in (self.found.agent_leg, self.found.customer_leg):
                with contextlib.suppress(AriError):
                    await self.ctx.ari.subscribe(self.ctx.app, f"channel:{leg}")

    async def _alive(self, leg: str) -> bool:
        try:
            await self.ctx.ari.channel(leg)
        except AriNotFound:
            return False
        return True
