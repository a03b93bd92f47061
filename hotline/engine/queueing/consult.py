"""An attended (consult) transfer of a talk: the customer is taken out of the case's bridge and
hears music on hold; the target agent is rung and, answering, joins the case's bridge, where the
transferring agent talks with them. Then the agent completes it (the customer back in the bridge,
the transferring agent's leg hung up: queueing.visit records the talk passed on), or cancels it, or
the target declines, does not answer or hangs up: the target's leg goes and the customer is back
in the bridge with the agent. The transferring agent hanging up hands the customer over (Asterisk's
atxferdropcall=no): queueing.visit completes the transfer, or lets the target's ring go on in a new
visit of the queue.

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
    return Consult(asked, target, Ringing(agent, channel_id, time.time()))


async def target_answered(call: ConsultCall, ctx: CallContext, consult: Consult) -> None:
    """The target joins the case's bridge, where the transferring agent is."""
    consult.answered_at = time.time()
    try:
        await ctx.ari.add_to_bridge(call.bridge_id, [consult.leg.channel_id])
    except AriError as exc:  # it hung up that moment: its end is on its way to the inbox
        log.info("call %s: consult leg %s not bridged (%s)", call.channel_id, consult.leg.channel_id, exc)


async def drop(call: ConsultCall, ctx: CallContext, consult: Consult) -> None:
    """The target's leg goes (hung up if still there); its events are nobody's now."""
    call.unwatch(consult.leg.channel_id)
    with contextlib.suppress(AriError):
        await ctx.ari.hangup(consult.leg.channel_id, "normal")


async def back_to_customer(call: ConsultCall, ctx: CallContext) -> None:
    """The customer off hold and back in the case's bridge (with whichever agent is there)."""
    with contextlib.suppress(AriError):
        await ctx.ari.stop_moh(call.channel_id)
    try:
        await ctx.ari.add_to_bridge(call.bridge_id, [call.channel_id])
    except AriError as exc:  # the customer hung up meanwhile: its end is on its way to the inbox
        log.info("call %s: not back in the bridge (%s)", call.channel_id, exc)
