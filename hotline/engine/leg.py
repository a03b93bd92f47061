"""A leg as the records see it: what its hop says about the channel, who the customer is, and
how its hangup reads. Pure functions of what Asterisk reported."""

from __future__ import annotations

from hotline.asterisk.ari_events import Channel, ChannelHangupRequest
from hotline.media import WEB_ENDPOINT
from hotline.numbers import to_e164
from hotline.store.hops import NewHop
from hotline.text import NUMBER_LIMIT, clean_text

NORMAL_CLEARING = (16, "Normal Clearing")
USER_BUSY = (17, "User busy")


def new_hop(channel: Channel, dialled: str, *, node: str, region: str, video: bool = False,
            number_id: int | None = None, hotline_id: int | None = None) -> NewHop:
    dialled_e164 = to_e164(dialled, region)
    return NewHop(
        node=node, channel_id=channel.id, channel_name=clean_text(channel.name),
        channel_kind=channel_kind(channel, dialled_e164), media="video" if video else "audio",
        dialled=clean_text(dialled), dialled_e164=dialled_e164,
        caller_num=clean_text(channel.caller_num, NUMBER_LIMIT), caller_name=clean_text(channel.caller_name),
        entered_at=channel.created_at, number_id=number_id, hotline_id=hotline_id)


def channel_kind(channel: Channel, dialled_e164: str | None) -> str:
    """webrtc for a customer's browser; pstn when a telephone number was dialled; else sip (a SIP
    address, a video phone's call to a video hotline)."""
    if channel.endpoint == WEB_ENDPOINT:
        return "webrtc"
    return "pstn" if dialled_e164 else "sip"


def customer_key(channel: Channel, region: str, browser_id: str = "") -> str:
    """Who the customer is, across hops: their E.164 number, their browser's own id, else their
    SIP identity. A browser without an id of its own is anonymous: its From user is the shared
    web endpoint's, and would otherwise continue any other such browser's case."""
    if browser_id:
        return f"web:{browser_id}"
    if channel.endpoint == WEB_ENDPOINT:
        return f"anonymous:{WEB_ENDPOINT}"
    number = clean_text(channel.caller_num, NUMBER_LIMIT)
    e164 = to_e164(number, region) if number else None
    if e164:
        return e164
    return f"sip:{number}" if number else f"anonymous:{channel.endpoint or channel.name}"


def caller_hangup_cause(cause: int | None, text: str | None) -> tuple[int | None, str | None]:
    """Asterisk 22 reports a caller's BYE as cause 0 'Unknown' (ARI and AMI alike); a BYE is
    Q.850 16, normal clearing (RFC 3398), which is what a supervisor expects to read."""
    if not cause:
        return NORMAL_CLEARING
    return cause, text


CUT_BY_SHUTDOWN = (None, "cut by Asterisk shutting down")
# A soft ChannelHangupRequest carries Asterisk's softhangup flag as its cause, not a Q.850 one:
# AST_SOFTHANGUP_SHUTDOWN is the hang-up of every channel by a stopping or restarting Asterisk.
SOFTHANGUP_SHUTDOWN = 0x04


def is_shutdown_hangup(message: object) -> bool:
    """Asterisk hanging a channel up because it stops or restarts (not a BYE, not our request)."""
    return (isinstance(message, ChannelHangupRequest) and message.soft
            and message.cause == SOFTHANGUP_SHUTDOWN)
