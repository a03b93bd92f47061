"""The switch to video on the engine's side: a video leg that brought a valid token takes over
the talk, or the place in line, of the phone leg it replaces.

A talk: the order keeps the agent from ever losing the customer: the video leg is answered and
added to the case's bridge first (the agent's session gets one re-INVITE: the new video stream),
then it asks the phone leg's call for its talk, by a message in that call's inbox (HandoverAsked).
The phone leg's own task answers, when its talk can be given (queueing.visit: `_hand_over`), and
hangs its own leg up; the agent's channel never leaves the bridge.

A place in line: the video leg is answered and asks the waiting phone leg's call for its place
(PlaceAsked); the phone leg's visit puts the video leg's waiter in line at its own join time,
leaves, and hangs its leg up (queueing.visit: `_give_place`); the video leg waits on with music.

A phone leg that is ending answers no at once; one that does not answer in time keeps its talk
or its place, and the video leg enters the hotline as a new caller would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from hotline.engine.context import CallContext, LiveCall
from hotline.engine.messages import HandoverAsked, PlaceAsked
from hotline.engine.queueing.talk import Place, Talk
from hotline.engine.queueing.visit import QueueVisit, VisitCall, VisitOutcome
from hotline.store.switches import SwitchUse

log = logging.getLogger(__name__)

HANDOVER_TIMEOUT_S = 5.0
# A waiting phone leg gives its place between steps: an announcement playing or an agent being
# rung finish first (or the ring is cut), so its answer may take longer than a talk's.
PLACE_TIMEOUT_S = 20.0

T = TypeVar("T")


async def continue_the_leg(call: VisitCall, ctx: CallContext, use: SwitchUse) -> VisitOutcome | None:
    """Go on with what the leg `use` replaces was doing: its talk, to its end, or its place in
    line; None when that leg is doing neither here any more (ended, in a menu, on another node)."""
    phone = ctx.find_call(use.from_hop_id)
    if phone is not None and phone.is_talking:
        return await take_the_talk(call, ctx, phone)
    if phone is not None and phone.is_waiting:
        return await _take_the_place(call, ctx, phone)
    log.info("call %s: hop %s it replaces is neither talking nor waiting here: the video leg enters "
             "its hotline", call.channel_id, use.from_hop_id)
    return None


async def take_the_talk(call: VisitCall, ctx: CallContext, phone: LiveCall) -> VisitOutcome | None:
    """Answer `call`, add it to `phone`'s bridge and follow the talk `phone` hands over (a switch
    leg, or a customer's page come back after its leg dropped); None when it hands none over."""
    await call.answer()
    await ctx.ari.add_to_bridge(phone.bridge_id, [call.channel_id])
    talk = await ask_for_the_talk(phone, call.channel_id)
    if talk is None:
        log.warning("call %s: leg %s did not hand its talk over: this leg enters its hotline",
                    call.channel_id, phone.channel_id)
        return None
    return await QueueVisit(call, ctx, talk.queue, record=talk.record).take_over_talk(talk)


async def _take_the_place(call: VisitCall, ctx: CallContext, phone: LiveCall) -> VisitOutcome | None:
    await call.answer()
    place = await ask_for_the_place(phone, call)
    if place is None and phone.is_talking:  # an agent answered it meanwhile: join that talk
        return await take_the_talk(call, ctx, phone)
    if place is None:
        log.warning("call %s: %s did not hand its place over: the video leg enters its hotline",
                    call.channel_id, phone.channel_id)
        return None
    return await QueueVisit(call, ctx, place.queue, record=place.record).take_over_place(place)


async def ask_for_the_talk(phone: LiveCall, video_channel_id: str,
                           timeout_s: float = HANDOVER_TIMEOUT_S) -> Talk | None:
    """The phone leg's talk, as its own task hands it over, or None (refused, or no answer in
    time: the phone leg then keeps it)."""
    reply: asyncio.Future[Talk | None] = asyncio.get_running_loop().create_future()
    phone.post(HandoverAsked(video_channel_id, reply))
    return await _answer(reply, timeout_s)


async def ask_for_the_place(phone: LiveCall, call: VisitCall,
                            timeout_s: float = PLACE_TIMEOUT_S) -> Place | None:
    """The waiting phone leg's place in line, as its own task hands it over, or None."""
    reply: asyncio.Future[Place | None] = asyncio.get_running_loop().create_future()
    phone.post(PlaceAsked(call.channel_id, call.wake, reply))
    return await _answer(reply, timeout_s)


async def _answer(reply: asyncio.Future[T | None], timeout_s: float) -> T | None:
    try:
        async with asyncio.timeout(timeout_s):
            return await reply
    except TimeoutError:
        if reply.done() and not reply.cancelled():  # handed over just as the time ran out
            return reply.result()
        reply.cancel()
        return None
