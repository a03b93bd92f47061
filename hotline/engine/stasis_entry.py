"""What the dialplan tells the daemon about a call entering Stasis: its arguments, parsed, and
for a customer's browser what its SIP headers say.

    Stasis(hotline,inbound,NUMBER,video=(vp8))
    Stasis(hotline,switch,switch,video=(vp8))   (context hotline-web only)
    conference,CASE_ID,agent=NAME,by=WHO   (what the daemon itself originates: hotline.engine.conference)
    phone,NUMBER   (the customer's phone the daemon dialled for a video leg: hotline.engine.phone_switch)
    consult,AGENT,by=ENDPOINT   (context hotline-agents only: an agent's own phone dialling a
                                 colleague, the consult of an attended transfer)
    supervise,AGENT,mode=MODE,by=ENDPOINT   (context hotline-agents only: a supervisor's own phone
                                 dialling a feature code and an agent: hotline.engine.supervision_phone)

The first two are positional: the entry (`inbound`, or `switch` for a video leg joining a live
call) and the number as provisioned. The rest are `key=value`, in any order, so a dialplan of an
older release (two arguments) still works.

A browser's customer id and switch token are not arguments: Asterisk writes an application's
arguments to its log, and a token there could be replayed. The daemon reads them from the call's
SIP headers over ARI, and only for calls from the web context: a number dialled on a trunk can
carry no header the daemon listens to, whatever it contains.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hotline.engine.context import CallAri
from hotline.errors import AriError, AriNotFound
from hotline.media import WEB_CONTEXT, carries_video

ENTRIES = ("inbound", "switch", "conference", "phone", "consult", "supervise")
PHONE_TOKEN_VARIABLE = "HOTLINE_SWITCH_TOKEN"  # a dialled phone leg's switch token (never an argument)
CUSTOMER_HEADER = "X-Hotline-Customer"  # the browser's own id: its customer key across calls
SWITCH_HEADER = "X-Hotline-Switch"  # the switch page's token
_HEX = re.compile(r"[0-9a-f]{1,128}")


@dataclass(frozen=True)
class StasisEntry:
    kind: str  # inbound | switch | conference | phone | consult | supervise
    dialled: str
    video: bool = False
    web: bool = False  # from the customers' web context: its headers are worth reading
    agent: str = ""  # conference: the invited agent
    invited_by: str = ""  # conference: who invited them
    by: str = ""  # consult, supervise: the endpoint of the agent's phone that dialled
    mode: str = ""  # supervise: listen | whisper | barge, as the feature code said


@dataclass(frozen=True)
class WebHeaders:
    customer: str = ""  # hex, "" when absent or malformed
    token: str = ""  # hex, "" when absent, malformed, or not a switch leg


def parse_entry(args: Sequence[str], context: str = "") -> StasisEntry | None:
    """The entry the arguments describe (`context`: the channel's dialplan context), or None when
    they are not one of ours."""
    if len(args) < 2 or args[0] not in ENTRIES or not args[1]:
        return None
    named = dict(arg.partition("=")[::2] for arg in args[2:] if "=" in arg)
    conference = args[0] == "conference"
    return StasisEntry(
        kind=args[0], dialled=args[1], video=carries_video(named.get("video", "")),
        web=context == WEB_CONTEXT and not conference,
        agent=named.get("agent", "") if conference else "",
        invited_by=named.get("by", "") if conference else "",
        by=named.get("by", "") if args[0] in ("consult", "supervise") else "",
        mode=named.get("mode", "") if args[0] == "supervise" else "")


async def read_web_headers(ari: CallAri, channel_id: str, *, switch: bool) -> WebHeaders:
    """The customer id (and for a switch leg the token) the browser sent, each checked to be hex.
    A header that is missing reads as "" (Asterisk answers an empty value)."""
    names = (CUSTOMER_HEADER, SWITCH_HEADER) if switch else (CUSTOMER_HEADER,)
    values = await asyncio.gather(*(_header(ari, channel_id, name) for name in names))
    customer, token = (*values, "")[:2]
    return WebHeaders(customer=_hex(customer), token=_hex(token))


async def _header(ari: CallAri, channel_id: str, name: str) -> str:
    try:
        return await ari.channel_variable(channel_id, f"PJSIP_HEADER(read,{name})")
    except AriNotFound:
        raise
    except AriError:
        return ""  # a header the INVITE lacked


async def read_phone_token(ari: CallAri, channel_id: str) -> str:
    """The switch token the daemon set on a phone leg it dialled (hex, or "" when it has none)."""
    try:
        return _hex(await ari.channel_variable(channel_id, PHONE_TOKEN_VARIABLE))
    except AriNotFound:
        raise
    except AriError:
        return ""


def _hex(value: str) -> str:
    value = value.strip().lower()
    return value if _HEX.fullmatch(value) else ""
