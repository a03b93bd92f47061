"""Media: which codecs each kind of endpoint offers, and whether a call carries video.

Asterisk passes video through and never transcodes it, so both legs of a bridge must share a
video codec: every video endpoint offers VP8 and H.264, what browsers and video phones share.
"""

from __future__ import annotations

from collections.abc import Iterable

AUDIO_CODECS = ("ulaw", "alaw", "opus")
WEBRTC_AUDIO_CODECS = ("opus", "ulaw", "alaw")  # browsers speak opus natively
VIDEO_CODECS = ("vp8", "h264")

# The endpoint customers' browsers call as (the click-to-call and switch pages): its calls are
# WebRTC legs. `hotline apply` renders it.
WEB_ENDPOINT = "hotline-web"
# Its dialplan context: the only one whose calls may carry a customer id and a switch token.
WEB_CONTEXT = "hotline-web"
# Agents' own endpoints' context: the only one whose calls may be an agent's consult call.
AGENTS_CONTEXT = "hotline-agents"
# The PJSIP WebSocket transport (pjsip.conf) that browsers' endpoints are bound to by name.
WS_TRANSPORT = "transport-ws"

# The case's bridge where video can flow: a mixing bridge whose video is a selective forwarding
# unit, so every party sees every other one, and a party can join or leave without the others'
# streams being cut (with video_single the joining customer saw its own picture echoed and froze
# after a switch). Where neither the caller nor the agent has video, a plain mixing bridge: the SFU
# doubled Asterisk's CPU per audio call on the bench (27.9 against 14.2 ms at 70 calls/s).
CASE_BRIDGE_TYPE = "mixing,video_sfu"
AUDIO_BRIDGE_TYPE = "mixing"
# A talk that gained video (a browser's camera turned on) moved into an SFU bridge of its own: the
# case's bridge id with this suffix. The plain one's id cannot be taken again at once: Asterisk
# answers 409 for it while the channels that were in it live on (checked on the lab).
VIDEO_BRIDGE_SUFFIX = "-video"


def case_bridge_ids(case_id: int) -> tuple[str, str]:
    """Where a case's talk can be: its bridge, or the SFU bridge it moved to when video came."""
    return f"case-{case_id}", f"case-{case_id}{VIDEO_BRIDGE_SUFFIX}"


def case_bridge_type(caller_video: bool, agent_video: bool, *, web: bool = False) -> str:
    """SFU when the caller or the agent has video (a phone caller's agent with video may see the
    customer after a switch to video); a plain mixing bridge for an audio caller and agent. A
    browser's voice call (`web`) stays plain even with a video agent: no switch leg ever joins
    it, and if its camera is turned on, the talk moves to an SFU bridge then (engine.camera)."""
    if caller_video or (agent_video and not web):
        return CASE_BRIDGE_TYPE
    return AUDIO_BRIDGE_TYPE


def endpoint_codecs(capabilities: Iterable[str]) -> tuple[str, ...]:
    """The codecs an agent's endpoint allows, in order of preference."""
    caps = frozenset(capabilities)
    audio = WEBRTC_AUDIO_CODECS if "webrtc" in caps else AUDIO_CODECS
    return audio + (VIDEO_CODECS if "video" in caps else ())


def originate_formats(capabilities: Iterable[str]) -> str | None:
    """The formats to dial an agent with, or None for Asterisk's default (audio agents).

    A video agent is dialled with video even on an audio call: without it the INVITE is
    audio-only, and when the customer later switches to video, the SFU's re-INVITE adds only a
    receive stream: the agent would see the customer but never send its own picture."""
    caps = frozenset(capabilities)
    return ",".join(endpoint_codecs(caps)) if "video" in caps else None


def carries_video(native_formats: str) -> bool:
    """Whether a channel negotiated video, from CHANNEL(videonativeformat): '(vp8)' or '(vp8|h264)'
    for a video call, '(nothing)' or '' for an audio one."""
    names = native_formats.strip().strip("()").split("|")
    return any(name.strip() and name.strip() != "nothing" for name in names)
