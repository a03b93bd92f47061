"""What arrives in a call's inbox besides ARI's own events: news from the rest of the daemon.

A call's task is the only code that changes the call. Everything else tells it something by
putting one of these in its inbox (or an ARI event, which the router routes by channel), and the
call's task acts on it when its state is ready to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from hotline.asterisk.ari_events import AriEvent
from hotline.engine.queueing.talk import Place, Talk


@dataclass(frozen=True)
class ChannelVanished:
    """Reconcile found this channel gone while ARI was disconnected (no event will say so), or
    its node was given up for lost (`why` says so: the hop's cause)."""

    channel_id: str
    why: str | None = None


@dataclass(frozen=True)
class QueueTurn:
    """The queue manager: something that can change this caller's turn happened (an agent freed,
    logged in, unpaused, out of wrap-up; a caller ahead left or started ringing)."""


@dataclass(frozen=True)
class HandoverAsked:
    """The customer's video leg (channel `video_channel_id`) is in the case's bridge and asks this
    call for its talk. The answer goes in `reply`: the Talk, or None when this call is not
    talking any more. Whoever asked may give up waiting (the future is then cancelled)."""

    video_channel_id: str
    reply: asyncio.Future[Talk | None] = field(compare=False)

    def refuse(self) -> None:
        if not self.reply.done():
            self.reply.set_result(None)


@dataclass(frozen=True)
class PlaceAsked:
    """The customer's video leg (channel `video_channel_id`) asks this waiting call for its place
    in line. The answer goes in `reply`: the Place (the video leg's waiter already in line at this
    call's join time, woken by `wake`), or None when this call is not waiting any more."""

    video_channel_id: str
    wake: Callable[[], None] = field(compare=False)
    reply: asyncio.Future[Place | None] = field(compare=False)

    def refuse(self) -> None:
        if not self.reply.done():
            self.reply.set_result(None)


@dataclass(frozen=True)
class TransferAsked:
    """Pass this call's talk to `target`, as asked (`queue:NAME`, `hotline:NAME`, or a NAME only
    one queue or hotline has), by `asked_by` (cli, phone). `request` names the row the asker waits
    for (None: nobody waits); `refer_leg`: the agent's channel a REFER came on, which hears how it
    went; `kind`: blind, or attended (a REFER with Replaces, or the CLI's consult); `step` of an
    attended one: begin (ring the target while the customer holds), complete, or cancel.
    `phone_leg`: the consult call the agent's own phone placed (a begin); `replaces`: the channel
    of the dialog a REFER's Replaces names, as Asterisk found it ("" when it found none)."""

    target: str
    asked_by: str
    request: str | None = None
    refer_leg: str | None = None
    kind: str = "blind"
    step: str = "begin"
    phone_leg: str | None = None
    replaces: str | None = None


@dataclass(frozen=True)
class ConsultDialled:
    """The agent talking in this call dialled a colleague from their own phone (`channel_id`, in
    Stasis from the agents' context): a consult of the talk, to the agent `target` dialled."""

    channel_id: str
    target: str


@dataclass(frozen=True)
class PhoneSwitchAsked:
    """Move this (video) call's talk to the customer's phone at `number` (as asked: checked again
    here), by `asked_by` (cli, agent:NAME); `request`: the asker's id for it."""

    number: str
    asked_by: str
    request: str | None = None


@dataclass(frozen=True)
class CameraTurned:
    """The customer's page turned its camera on (`video`) or off during the call, and the call's
    media was renegotiated (a re-INVITE): the hop's media follows, and a talk that gains video
    moves to an SFU bridge (engine.camera)."""

    video: bool


@dataclass(frozen=True)
class HangingUp:
    """The customer pressed the page's Hang up: the BYE that follows ends the talk, not a drop."""


@dataclass(frozen=True)
class RecordingAsked:
    """Start, stop, pause or resume (`action`) the recording of this call's talk, as `asked_by`
    (cli, agent:NAME) asks (hotline.engine.recording)."""

    action: str  # start | stop | pause | resume
    asked_by: str


Message = (AriEvent | ChannelVanished | QueueTurn | HandoverAsked | PlaceAsked | PhoneSwitchAsked
           | TransferAsked | ConsultDialled | CameraTurned | HangingUp | RecordingAsked)


class CallerGone(Exception):  # noqa: N818 - control flow, not an error
    """Control flow, not an error: the call's own channel is hanging up or gone. Raised by the
    call's one inbox reader into whatever the call was doing; each layer records how its part
    ended on the way out."""
