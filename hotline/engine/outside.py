"""A customer transferred to an outside number: the agent has left; the customer hears music while
the number is dialled through the trunk whose prefixes allow it (engine.dial_out: the trunk's
caller id, the hotline's number, and audio only), and talks with the far end in the case's bridge.

The outbound leg is a hop of the case of its own (channel kind pstn, dialled = the number), opened
once Asterisk took the dial and closed when the leg ends: `completed` after a talk, `failed` with
Asterisk's cause when the far end never answered. The customer's hop ends `completed` when either
side hangs up after the talk. A far end that does not answer (busy, rejected, the ring timeout)
sends the customer back, first in line, to the queue the talk was in (engine.call)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

from hotline.asterisk.ari_events import ChannelDestroyed, ChannelHangupRequest, StasisEnd, StasisStart
from hotline.engine.context import CallContext
from hotline.engine.dial_out import dial_out
from hotline.engine.messages import CallerGone, ChannelVanished, Message
from hotline.engine.outcomes import EndReason
from hotline.engine.queueing.visit import VisitCall
from hotline.errors import AriError, DialRefused
from hotline.store.hops import Hop, NewHop
from hotline.store.records import close_hop_record

log = logging.getLogger(__name__)

OUTSIDE_LEG = "-out-"  # in the ids of the channels a transfer dials to outside numbers
STORE_PATIENCE_S = 2.0  # the outbound hop is not worth holding the customer for


async def talk_outside(call: VisitCall, ctx: CallContext, number: str, music: str = "default") -> bool:
    """Dial `number` for `call`'s customer and bridge them when it answers, until either hangs up.
    True: they talked and the call is leaving; False: the far end never answered (or the number
    could not be dialled), and the customer, hearing music, is the caller's again."""
    leg = f"{call.channel_id}{OUTSIDE_LEG}{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(AriError):  # the customer gone meanwhile: the next event says so
        await ctx.ari.start_moh(call.channel_id, music)
    call.watch(leg)
    try:
        trunk = await dial_out(ctx.ari, ctx.directory.snapshot.prov.trunks.values(), number, app=ctx.app,
                               app_args=f"outbound,{number}", channel_id=leg)
    except (DialRefused, AriError) as exc:  # a trunk gone since the transfer was asked, Asterisk refused
        log.warning("call %s: could not dial %s: %s", call.channel_id, number, exc)
        call.unwatch(leg)
        return False
    hop = await _open_hop(ctx, call, leg, number, trunk.caller_id, trunk.endpoint)
    try:
        answered, cause = await _until_answered(call, ctx, leg, trunk.ring_timeout)
        if not answered:
            log.info("call %s: %s did not answer (%s)", call.channel_id, number, cause or "ring timeout")
            await _hang_up(ctx, leg)
            _close(ctx, hop, EndReason.FAILED, cause)
            return False
        await _bridge(call, ctx, leg)
        log.info("call %s: talking with %s", call.channel_id, number)
        cause = await _until_gone(call, leg)
    except CallerGone:
        await _hang_up(ctx, leg)
        _close(ctx, hop, EndReason.COMPLETED, None)
        with contextlib.suppress(AriError):
            await ctx.ari.destroy_bridge(call.bridge_id)
        raise
    finally:
        call.unwatch(leg)
    _close(ctx, hop, EndReason.COMPLETED, cause)
    call.leave(EndReason.COMPLETED)
    await _hang_up(ctx, call.channel_id)
    with contextlib.suppress(AriError):
        await ctx.ari.destroy_bridge(call.bridge_id)
    return True


async def _open_hop(ctx: CallContext, call: VisitCall, leg: str, number: str, caller_id: str,
                    endpoint: str) -> Hop | None:
    """The outbound leg's hop in the customer's case; None when the database does not answer in
    time (the call goes on; the leg then has no hop)."""
    if call.hop is None:
        return None
    new = NewHop(node=ctx.node, channel_id=leg, channel_name=f"PJSIP/{endpoint}", channel_kind="pstn",
                 media="audio", dialled=number, dialled_e164=number, caller_num=caller_id, caller_name="",
                 entered_at=datetime.now(UTC), hotline_id=call.hop.hotline_id)
    try:
        async with asyncio.timeout(STORE_PATIENCE_S):
            return await ctx.contacts.add_hop(call.hop.case_id, new)
    except Exception as exc:  # away, slow, or refused: the talk matters more than its row
        log.warning("call %s: no hop for the outbound leg %s (%s)", call.channel_id, leg, exc)
        return None


async def _until_answered(call: VisitCall, ctx: CallContext, leg: str,
                          ring_timeout_s: int) -> tuple[bool, int | None]:
    """(True, None) once the far end answered (its leg entered Stasis); (False, cause) when it
    ended first or rang past the trunk's timeout (cause None)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ring_timeout_s + ctx.ring_grace_s  # Asterisk's timeout comes first
    while (left := deadline - loop.time()) > 0:
        message = await call.next_event(left)
        if isinstance(message, StasisStart) and message.channel.id == leg:
            return True, None
        if _is_end_of(message, leg):
            return False, getattr(message, "cause", None)
        if message is not None:
            call.unexpected(message)
    return False, None


async def _bridge(call: VisitCall, ctx: CallContext, leg: str) -> None:
    ari = ctx.ari
    with contextlib.suppress(AriError):
        await ari.stop_moh(call.channel_id)
    try:
        await ari.create_bridge(call.bridge_id, "mixing")
        await ari.add_to_bridge(call.bridge_id, [call.channel_id, leg])
    except AriError as exc:  # one of the two went that moment: its end is on its way to the inbox
        log.info("call %s: outbound leg %s not bridged (%s)", call.channel_id, leg, exc)


async def _until_gone(call: VisitCall, leg: str) -> int | None:
    """Until the far end hangs up (its cause); the customer hanging up raises CallerGone."""
    while True:
        message = await call.next_event()
        if _is_end_of(message, leg):
            return getattr(message, "cause", None)
        if message is not None:
            call.unexpected(message)


def _close(ctx: CallContext, hop: Hop | None, reason: EndReason, cause: int | None) -> None:
    if hop is not None:
        ctx.records.submit(close_hop_record(hop.id, reason, cause=cause, at=datetime.now(UTC)))


async def _hang_up(ctx: CallContext, channel_id: str) -> None:
    with contextlib.suppress(AriError):
        await ctx.ari.hangup(channel_id, "normal")


def _is_end_of(message: Message | None, channel_id: str) -> bool:
    if isinstance(message, ChannelVanished):
        return message.channel_id == channel_id
    return (isinstance(message, ChannelDestroyed | StasisEnd | ChannelHangupRequest)
            and message.channel.id == channel_id)
