"""The switch to video on the engine's side: a video leg that brought a valid token takes over
the talk of the phone leg it replaces.

The order keeps the agent from ever losing the customer: the video leg is answered and added to
the case's bridge first (the agent's session gets one re-INVITE: the new video stream), then it
asks the phone leg's call for its talk, by a message in that call's inbox (HandoverAsked). The
phone leg's own task answers, when its talk can be given (queueing.visit: `_hand_over`), and
hangs its own leg up; the agent's channel never leaves the bridge. A phone leg that is ending
answers no at once; one that does not answer in time keeps its talk.
"""

from __future__ import annotations

import asyncio
import logging

from hotline.engine.context import CallContext, LiveCall
from hotline.engine.messages import HandoverAsked
from hotline.engine.queueing.talk import Talk
from hotline.engine.queueing.visit import QueueVisit, TalkEnd, VisitCall
from hotline.store.switches import SwitchUse

log = logging.getLogger(__name__)

HANDOVER_TIMEOUT_S = 5.0


async def join_the_talk(call: VisitCall, ctx: CallContext, use: SwitchUse) -> TalkEnd | None:
    """Follow the talk of the leg `use` replaces, to its end (or its transfer); None when that
    leg is not talking here any more (ended, not with an agent, or on another node)."""
    phone = ctx.find_call(use.from_hop_id)
    if phone is None or not phone.is_talking:
        log.info("call %s: hop %s it replaces is not talking here: the video leg enters its hotline",
                 call.channel_id, use.from_hop_id)
        return None
    return await take_the_talk(call, ctx, phone)


async def take_the_talk(call: VisitCall, ctx: CallContext, phone: LiveCall) -> TalkEnd | None:
    """Answer `call`, add it to `phone`'s bridge and follow the talk `phone` hands over (a switch
    leg, or a customer's page come back after its leg dropped); None when it hands none over."""
    await call.answer()
    await ctx.ari.add_to_bridge(phone.bridge_id, [call.channel_id])
    talk = await ask_for_the_talk(phone, call.channel_id)
    if talk is None:
        log.warning("call %s: leg %s did not hand its talk over: this leg enters its hotline",
                    call.channel_id, phone.channel_id)
        return None
    return await QueueVisit(call, ctx, talk.queue).take_over_talk(talk)


async def ask_for_the_talk(phone: LiveCall, video_channel_id: str,
                           timeout_s: float = HANDOVER_TIMEOUT_S) -> Talk | None:
    """The phone leg's talk, as its own task hands it over, or None (refused, or no answer in
    time: the phone leg then keeps it)."""
    reply: asyncio.Future[Talk | None] = asyncio.get_running_loop().create_future()
    phone.post(HandoverAsked(video_channel_id, reply))
    try:
        async with asyncio.timeout(timeout_s):
            return await reply
    except TimeoutError:
        if reply.done() and not reply.cancelled():  # handed over just as the time ran out
            return reply.result()
        reply.cancel()
        return None
