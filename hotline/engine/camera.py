"""A browser's camera turned on or off during its call (the customer page's camera button).

The page renegotiates the call's media itself (a re-INVITE from JsSIP) and then tells the daemon
(`/api/call/camera`), which posts CameraTurned to the customer's call. The call records the change:
the hop's media follows (video while the camera is on; each change a row of media_changes). A
talk that gains video in a plain mixing bridge moves to an SFU bridge, nobody ever outside a
bridge: every channel of the case's bridge goes at once into a new SFU bridge (a channel added to
a bridge while in another moves), `case-N-video` (media.case_bridge_ids: where conferences and a
restarted daemon look too), and the plain one goes. Turned off, the talk stays where it is: the
picture stops, the talk goes on.

The page's word is taken for what its own call sends: Asterisk tells ARI nothing about a re-INVITE
(CHANNEL(videonativeformat) reads vp8 as soon as the other party's picture comes in), and a page
can only change its own customer's record and bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from hotline.asterisk.ari_events import Bridge
from hotline.engine.call_state import CallState
from hotline.engine.context import CallAri
from hotline.engine.facts import Fact, MediaChanged
from hotline.engine.messages import CameraTurned
from hotline.errors import AriError, AriNotFound
from hotline.media import CASE_BRIDGE_TYPE, VIDEO_BRIDGE_SUFFIX

log = logging.getLogger(__name__)

SFU_MODE = "sfu"
# Asterisk answers addChannel before the channels have moved: the new bridge is looked at until it
# holds them all, every STEP_POLL_S, within STEP_PATIENCE_S.
STEP_POLL_S = 0.02
STEP_PATIENCE_S = 3.0


class CameraCall(Protocol):
    video: bool
    state: CallState

    @property
    def channel_id(self) -> str: ...
    def move(self, new: CallState, *facts: Fact) -> None: ...


def note_camera(call: CameraCall, turned: CameraTurned) -> bool:
    """Record what the leg sends now; True when it just gained video (a word repeated is no change)."""
    if turned.video == call.video:
        return False
    call.video = turned.video
    media = "video" if turned.video else "audio"
    log.info("call %s: camera turned %s: the leg sends %s", call.channel_id, "on" if turned.video else "off",
             media)
    call.move(call.state, MediaChanged(media))
    return turned.video


async def to_sfu(ari: CallAri, bridge_id: str) -> str | None:
    """Move every channel of `bridge_id` at once into a new SFU bridge (its id + VIDEO_BRIDGE_SUFFIX),
    none of them ever outside a bridge, and let the plain one go. The new bridge's id, or None: it
    was an SFU bridge already (a video agent's, or moved before)."""
    bridge = await ari.bridge(bridge_id)
    if bridge.video_mode == SFU_MODE:
        return None
    channels = list(bridge.channels)
    video_bridge = f"{bridge_id}{VIDEO_BRIDGE_SUFFIX}"
    await ari.create_bridge(video_bridge, CASE_BRIDGE_TYPE)
    await _move(ari, video_bridge, channels)
    with contextlib.suppress(AriError):
        await ari.destroy_bridge(bridge_id)
    log.info("bridge %s: video came; the talk moved to SFU bridge %s with %s", bridge_id, video_bridge,
             ", ".join(channels))
    return video_bridge


async def _move(ari: CallAri, bridge_id: str, channels: list[str]) -> None:
    """Add `channels` to `bridge_id` (out of the bridge they are in) and wait until they are there."""
    await ari.add_to_bridge(bridge_id, channels)
    await _until(ari, bridge_id, lambda found: found is not None and set(channels) <= set(found.channels),
                 "holding every channel")


async def _until(ari: CallAri, bridge_id: str, done: Callable[[Bridge | None], bool], what: str) -> None:
    """Look at `bridge_id` until `done` says so."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_PATIENCE_S
    while True:
        try:
            found: Bridge | None = await ari.bridge(bridge_id)
        except AriNotFound:
            found = None
        if done(found):
            return
        if loop.time() > deadline:
            raise AriError(f"bridge {bridge_id} not {what} within {STEP_PATIENCE_S:.0f} s"
                           f" (last seen: {found})", 504)
        await asyncio.sleep(STEP_POLL_S)
