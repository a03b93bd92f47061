"""The switch to video on the engine's side: a video leg that brought a valid token takes over
the talk of the phone leg it replaces.

The order keeps the agent from ever losing the customer: the video leg is answered and added to
the case's bridge first (the agent's session gets one re-INVITE: the new video stream), then the
phone leg's call hands its talk over and hangs its own leg up. The agent's channel never leaves
the bridge.
"""

from __future__ import annotations

import asyncio
import logging

from hotline.engine.calls import InboundCall, SwitchedAway
from hotline.engine.queue_visit import QueueVisit, Talk
from hotline.store.switches import SwitchUse

log = logging.getLogger(__name__)

HANDOVER_TIMEOUT_S = 5.0


async def join_the_talk(call: InboundCall, use: SwitchUse) -> str | None:
    """Follow the talk of the leg `use` replaces, to its end ("completed"); None when that leg
    is not talking here any more (ended, not with an agent, or on another node)."""
    phone = call.ctx.find_call(use.from_hop_id)
    if phone is None or not phone.is_bridged:
        log.info("call %s: hop %s it replaces is not talking here: the video leg enters its hotline",
                 call.channel_id, use.from_hop_id)
        return None
    await call.answer()
    await call.ctx.ari.add_to_bridge(phone.bridge_id, [call.channel_id])
    talk = await _handover_from(phone, call)
    if talk is None:
        log.warning("call %s: hop %s did not hand its talk over: the video leg enters its hotline",
                    call.channel_id, use.from_hop_id)
        return None
    return await QueueVisit(call, talk.queue).take_over_talk(talk)


async def _handover_from(phone: InboundCall, video: InboundCall) -> Talk | None:
    handover: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    phone.inbox.put_nowait(SwitchedAway("SwitchedAway", video.ctx.app, None, video.channel_id, handover))
    try:
        async with asyncio.timeout(HANDOVER_TIMEOUT_S):
            talk = await handover
    except TimeoutError:
        handover.cancel()  # the phone leg's call then keeps its talk (QueueVisit._hand_over)
        return None
    return talk if isinstance(talk, Talk) else None
