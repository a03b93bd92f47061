"""From video to phone: the customer's video leg hands its talk to their telephone, which the
daemon dials through an outbound trunk; the agent's channel never leaves the case's bridge.

Who asks: `hotline case switch CASE --to phone` and the agent page, by an ARI user event about the
video leg's channel (`ask_phone_switch`); the router turns it into a PhoneSwitchAsked in that
call's inbox, and the call's visit acts on it while it talks (`call_the_phone`). The number is the
customer's, from an earlier phone leg of the case or typed, valid by phonenumbers and inside a
trunk's allowed prefixes (toll fraud: nothing else is ever dialled); the daemon checks it again.

The phone leg joins the way a switch link's video leg does: a switch token is issued for the
video leg (one `switches` row, `requested_by` the asker), the phone is dialled into Stasis with
`phone,NUMBER` and the token in a channel variable (never an argument: Asterisk logs those), and
once answered it uses the token (its hop opens in the case), joins the case's bridge and asks the
video leg for the talk (engine.handover); the video leg is hung up and its hop ends `switched`. A
phone not answered leaves the token unused (it expires) and the video talk as it was; the switch
row says how the dial ended (migration 026): the phone's channel is watched while it rings (a
PhoneRinging: its answer still starts the phone leg's call, router), and ending unanswered it
records 'busy', 'no_answer' or 'failed' with Asterisk's cause, so `hotline case show` says
"moved to phone: no answer (cause)"; the answer is recorded when the phone leg uses the token.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Protocol

from hotline.asterisk.ari_events import ChannelDestroyed, ChannelUserevent, StasisStart
from hotline.cancellation import raise_if_cancelled
from hotline.engine.context import CallContext
from hotline.engine.dial_out import dial_out
from hotline.engine.messages import Message, PhoneSwitchAsked
from hotline.engine.routing.outbound import trunk_for
from hotline.engine.stasis_entry import PHONE_TOKEN_VARIABLE
from hotline.errors import AriError, DialRefused, NotAPhoneNumber, PhoneSwitchRefused, SwitchNotPossible
from hotline.numbers import to_e164
from hotline.provision.model import Trunk
from hotline.store.db import STORE_DOWN

log = logging.getLogger(__name__)

PHONE_SWITCH_EVENT = "hotline-phone-switch"
PHONE_ENTRY = "phone"  # the Stasis entry of a phone leg the daemon dialled: `phone,NUMBER`
PHONE_LEG = "phone-"  # the ids of the channels it dials start with it
RING_GRACE_S = 5.0  # Asterisk ends an unanswered ring first; ours only covers a lost event
ASKED_LIMIT = 64
USER_BUSY, NO_USER_RESPONDING, NO_ANSWER = 17, 18, 19  # Q.850 causes


def dial_outcome(cause: int | None, rang_s: float, ring_timeout_s: float) -> str:
    """How a phone dial that ended unanswered went, from the cause its channel ended with:
    'busy', 'no_answer' (the phone rang out, whatever cause Asterisk gives a ring it timed out),
    or 'failed' (refused, unreachable, a wrong number)."""
    if cause == USER_BUSY:
        return "busy"
    if cause in (NO_USER_RESPONDING, NO_ANSWER) or rang_s >= ring_timeout_s - 1:
        return "no_answer"
    return "failed"


class PhoneRinging:
    """Watches the customer's phone while it rings (an Inbox of the router's): the end of its
    channel before any answer. Its answer goes on starting the phone leg's call as any
    StasisStart does (the router hands it there, and here too)."""

    def __init__(self, video_channel_id: str) -> None:
        self._video = video_channel_id
        self.ended: asyncio.Future[tuple[bool, int | None, str]] = asyncio.get_running_loop().create_future()

    @property
    def channel_id(self) -> str:
        return self._video  # the call it rings for: that call's end stops the watch with it

    def post(self, message: Message) -> None:
        if self.ended.done():
            return
        if isinstance(message, StasisStart):
            self.ended.set_result((True, None, ""))
        elif isinstance(message, ChannelDestroyed):
            self.ended.set_result((False, message.cause, message.cause_txt))


class UserEvents(Protocol):
    async def user_event(self, app: str, name: str, channel_id: str,
                         variables: Mapping[str, str]) -> None: ...


def phone_number(typed: str, trunks: Iterable[Trunk], region: str) -> str:
    """The customer's number in E.164, checked to be valid and dialable through a trunk;
    PhoneSwitchRefused saying why not."""
    e164 = to_e164(typed.strip(), region) if typed.strip() else None
    if e164 is None:
        raise NotAPhoneNumber(f"{typed!r} is not a valid telephone number")
    try:
        trunk_for(trunks, e164)
    except DialRefused as refused:
        raise PhoneSwitchRefused(str(refused)) from None
    return e164


async def ask_phone_switch(ari: UserEvents, app: str, channel_id: str, number: str, asked_by: str) -> str:
    """Ask the daemon that runs the video leg `channel_id` to move its talk to `number`; the
    request id."""
    request = uuid.uuid4().hex
    await ari.user_event(app, PHONE_SWITCH_EVENT, channel_id,
                         {"number": number, "asked_by": asked_by, "request": request})
    return request


def phone_switch_asked(event: ChannelUserevent) -> PhoneSwitchAsked | None:
    """The PhoneSwitchAsked a user event carries, or None when it is no such request."""
    if event.eventname != PHONE_SWITCH_EVENT:
        return None
    return PhoneSwitchAsked(event.variables.get("number", "")[:ASKED_LIMIT],
                            event.variables.get("asked_by", "")[:ASKED_LIMIT] or "unknown",
                            event.variables.get("request") or None)


async def call_the_phone(ctx: CallContext, hop_id: int, video_channel_id: str,
                         asked: PhoneSwitchAsked) -> str:
    """Dial the customer's phone for video leg `hop_id` (channel `video_channel_id`): a switch
    token issued for the leg, the number dialled through its trunk with the token on the channel,
    and followed until it is answered or ends unanswered (recorded on the switch). The phone leg's
    channel id; PhoneSwitchRefused (nothing dialled) when the number or the leg will not do."""
    if ctx.switches is None:
        raise PhoneSwitchRefused("switches need the database, which this daemon has not")
    trunks = ctx.directory.snapshot.prov.trunks.values()
    number = phone_number(asked.number, trunks, ctx.region)
    ring_timeout_s = trunk_for(trunks, number).ring_timeout  # phone_number checked there is one
    try:
        issued = await ctx.switches.issue(hop_id, asked.asked_by, ring_timeout_s + 30, to_number=number)
    except SwitchNotPossible as exc:
        raise PhoneSwitchRefused(str(exc)) from None
    channel_id = f"{PHONE_LEG}{uuid.uuid4().hex[:16]}"
    ringing = PhoneRinging(video_channel_id)
    ctx.watch(channel_id, ringing)  # before the dial: its end cannot come unseen
    started = loop_time()
    try:
        trunk = await dial_out(ctx.ari, trunks, number, app=ctx.app, app_args=f"{PHONE_ENTRY},{number}",
                               channel_id=channel_id,
                               variables={PHONE_TOKEN_VARIABLE: issued.token})
    except (AriError, DialRefused) as exc:
        ctx.unwatch(channel_id)
        await _record(ctx, issued.token, "failed", None, f"not dialled: {exc}")
        raise
    log.info("case %s: video leg (hop %s) moving to the phone %s through trunk %s, asked by %s",
             issued.case_id, hop_id, number, trunk.name, asked.asked_by)
    try:
        async with asyncio.timeout(ring_timeout_s + RING_GRACE_S):
            answered, cause, cause_text = await ringing.ended
    except TimeoutError:  # no news of the phone's channel: its token runs out unused
        log.warning("case %s: no news of the phone %s (%s)", issued.case_id, number, channel_id)
        return channel_id
    finally:
        ctx.unwatch(channel_id)
    if not answered:
        outcome = dial_outcome(cause, loop_time() - started, ring_timeout_s)
        await _record(ctx, issued.token, outcome, cause, cause_text)
        log.info("case %s: the phone %s did not answer: %s (cause %s %s); the video talk goes on",
                 issued.case_id, number, outcome, cause, cause_text)
    return channel_id


async def _record(ctx: CallContext, token: str, outcome: str, cause: int | None, cause_text: str) -> None:
    """The dial's outcome on its switch; the database away: logged only (the talk is not its
    business)."""
    assert ctx.switches is not None  # call_the_phone checked
    try:
        await ctx.switches.phone_not_answered(token, outcome, cause, cause_text)
    except (*STORE_DOWN, TimeoutError) as exc:
        raise_if_cancelled()
        log.warning("phone dial ended %s (cause %s %s), not recorded: database away (%s)", outcome, cause,
                    cause_text, exc)


def loop_time() -> float:
    return asyncio.get_running_loop().time()
