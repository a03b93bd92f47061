"""An attended (consult) transfer of a talk: the customer is taken out of the case's bridge and
hears music on hold; the target agent is rung and, answering, joins the case's bridge, where the
transferring agent talks with them. Then the agent completes it (the customer back in the bridge,
the transferring agent's leg hung up: queueing.visit records the talk passed on), or cancels it, or
the target declines, does not answer or hangs up: the target's leg goes and the customer is back
in the bridge with the agent. The transferring agent hanging up hands the customer over (Asterisk's
atxferdropcall=no): queueing.visit completes the transfer, or lets the target's ring go on in a new
visit of the queue.

Begun from the agent's own phone (its consult call, `phone_leg`: a desk phone's Transfer key, then
the colleague dialled), the two agents talk in a bridge of their own, the consult bridge, while the
phone holds the case's talk leg: completing it (the phone's REFER with Replaces) moves the target
into the case's bridge and ends the phone's two legs; the phone hanging up the consult call
cancels it.

The Asterisk side only: the visit decides when, records the rows, and keeps the agents' states.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from hotline.asterisk.ari_events import Channel
from hotline.engine.context import CallContext
from hotline.engine.messages import TransferAsked
from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.queueing.talk import Ringing
from hotline.engine.transfer import ARI_TRANSFERS, AgentTarget
from hotline.errors import AriError, TransferRefused
from hotline.media import originate_formats

log = logging.getLogger(__name__)

CONSULT_BRIDGE = "consult-"  # the prefix of a phone consult's bridge id


class ConsultCall(Protocol):
    """What a consult needs of the call (engine.call.InboundCall provides it)."""

    channel: Channel

    @property
    def channel_id(self) -> str: ...
    @property
    def bridge_id(self) -> str: ...
    def watch(self, channel_id: str) -> None: ...
    def unwatch(self, channel_id: str) -> None: ...


@dataclass
class Consult:
    """One attended transfer under way: who asked it, its target and the target's leg."""

    asked: TransferAsked
    target: AgentTarget
    leg: Ringing
    answered_at: float | None = None  # when the target answered; None while it rings
    phone_leg: str | None = None  # the consult call the agent's phone placed (None: the CLI's)

    @property
    def bridge_id(self) -> str:
        """Where the phone's consult call and the target talk (the case's bridge is the CLI's)."""
        return f"{CONSULT_BRIDGE}{self.leg.channel_id}"


async def begin(call: ConsultCall, ctx: CallContext, asked: TransferAsked, target: AgentTarget,
                agent: AgentState, *, ring_timeout: int, music: str) -> Consult:
    """Put the customer on hold (out of the bridge, with music) and ring `agent` (already marked
    ringing); TransferRefused, the customer back in the bridge, when the phone cannot be rung."""
    ari = ctx.ari
    channel_id = f"{call.channel_id}-agent-{uuid.uuid4().hex[:8]}"
    call.watch(channel_id)
    try:
        await ari.remove_from_bridge(call.bridge_id, [call.channel_id])
        await ari.start_moh(call.channel_id, music)
        await ari.originate(f"PJSIP/{agent.endpoint}", ctx.app, f"agent,{call.channel_id}", channel_id,
                            timeout_s=ring_timeout, caller_id=call.channel.caller_num,
                            formats=originate_formats(agent.capabilities), variables=ARI_TRANSFERS)
    except AriError as exc:
        call.unwatch(channel_id)
        await back_to_customer(call, ctx)
        raise TransferRefused(f"agent {agent.name}'s phone could not be rung ({exc})") from None
    log.info("call %s: consulting %s (%s), the customer on hold", call.channel_id, agent.name, channel_id)
    consult = Consult(asked, target, Ringing(agent, channel_id, time.time()), phone_leg=asked.phone_leg)
    if consult.phone_leg is not None:
        with contextlib.suppress(AriError):  # the phone hears ringing (180) while the target rings
            await ari.ring(consult.phone_leg)
    return consult


async def target_answered(call: ConsultCall, ctx: CallContext, consult: Consult) -> None:
    """The target joins the transferring agent: in the case's bridge, or (a consult call from
    the agent's phone, answered now) in a consult bridge with that call."""
    consult.answered_at = time.time()
    try:
        if consult.phone_leg is None:
            await ctx.ari.add_to_bridge(call.bridge_id, [consult.leg.channel_id])
            return
        await ctx.ari.answer(consult.phone_leg)
        await ctx.ari.create_bridge(consult.bridge_id)
        await ctx.ari.add_to_bridge(consult.bridge_id, [consult.phone_leg, consult.leg.channel_id])
    except AriError as exc:  # one hung up that moment: its end is on its way to the inbox
        log.info("call %s: consult leg %s not bridged (%s)", call.channel_id, consult.leg.channel_id, exc)


async def drop(call: ConsultCall, ctx: CallContext, consult: Consult) -> None:
    """The target's leg goes (hung up if still there), and the phone's consult call with its
    bridge; their events are nobody's now."""
    call.unwatch(consult.leg.channel_id)
    with contextlib.suppress(AriError):
        await ctx.ari.hangup(consult.leg.channel_id, "normal")
    await _end_phone_leg(call, ctx, consult)


async def hand_over(call: ConsultCall, ctx: CallContext, consult: Consult) -> None:
    """Completed from the phone: the target leaves the consult bridge for the case's (the
    customer comes back there), and the phone's consult call ends."""
    if consult.phone_leg is None:
        return  # the CLI's consult: the target is in the case's bridge already
    await _end_phone_leg(call, ctx, consult)
    try:
        await ctx.ari.add_to_bridge(call.bridge_id, [consult.leg.channel_id])
    except AriError as exc:  # the target hung up that moment: its end is on its way to the inbox
        log.info("call %s: consulted leg %s not moved to the case's bridge (%s)", call.channel_id,
                 consult.leg.channel_id, exc)


async def _end_phone_leg(call: ConsultCall, ctx: CallContext, consult: Consult) -> None:
    if consult.phone_leg is None:
        return
    call.unwatch(consult.phone_leg)
    with contextlib.suppress(AriError):  # never answered, or gone: no bridge, or no channel
        await ctx.ari.destroy_bridge(consult.bridge_id)
    with contextlib.suppress(AriError):
        await ctx.ari.hangup(consult.phone_leg, "normal")


async def back_to_customer(call: ConsultCall, ctx: CallContext) -> None:
    """The customer off hold and back in the case's bridge (with whichever agent is there)."""
    with contextlib.suppress(AriError):
        await ctx.ari.stop_moh(call.channel_id)
    try:
        await ctx.ari.add_to_bridge(call.bridge_id, [call.channel_id])
    except AriError as exc:  # the customer hung up meanwhile: its end is on its way to the inbox
        log.info("call %s: not back in the bridge (%s)", call.channel_id, exc)
