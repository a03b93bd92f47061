"""What the dialplan tells the daemon about a call entering Stasis: its arguments, parsed.

    Stasis(hotline,inbound,NUMBER,video=(vp8),customer=HEX)
    Stasis(hotline,switch,switch,video=(vp8),customer=HEX,token=HEX)
    conference,CASE_ID,agent=NAME,by=WHO   (what the daemon itself originates: hotline.engine.conference)

The first two are positional: the entry (`inbound`, or `switch` for a video leg joining a live
call) and the number as provisioned. The rest are `key=value`, in any order, so a dialplan of an
older release (two arguments) still works. Values from the caller's side (SIP headers) are
filtered to hex in the dialplan; they are checked again here, and anything else is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hotline.media import carries_video

ENTRIES = ("inbound", "switch", "conference")
_HEX = re.compile(r"[0-9a-f]{1,128}")


@dataclass(frozen=True)
class StasisEntry:
    kind: str  # inbound | switch
    dialled: str
    video: bool = False
    customer: str = ""  # a browser's own customer id (hex), "" for phones
    token: str = ""  # the switch token (hex), only for kind "switch"
    agent: str = ""  # conference: the invited agent
    invited_by: str = ""  # conference: who invited them


def parse_entry(args: Sequence[str]) -> StasisEntry | None:
    """The entry the arguments describe, or None when they are not one of ours."""
    if len(args) < 2 or args[0] not in ENTRIES or not args[1]:
        return None
    named = dict(arg.partition("=")[::2] for arg in args[2:] if "=" in arg)
    customer, token = named.get("customer", ""), named.get("token", "")
    return StasisEntry(
        kind=args[0], dialled=args[1], video=carries_video(named.get("video", "")),
        customer=customer if _HEX.fullmatch(customer) else "",
        token=token if args[0] == "switch" and _HEX.fullmatch(token) else "",
        agent=named.get("agent", "") if args[0] == "conference" else "",
        invited_by=named.get("by", "") if args[0] == "conference" else "")
