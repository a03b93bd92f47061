"""Call recording: a talk of a queue whose `record` is "always" (its own, or its hotline's when it
sets none: record_mode) is recorded through ARI's bridge
recording, from the agent's answer to the end of the talk, one recording (one file, one row of
`recordings`) per talk segment. A queue whose `record` is "on_demand" records nothing until the
agent asks (`hotline recording start CASE`, the agent page's Record button): from then on its
talk is recorded as an "always" one is, to the end of the queue visit (a switch to video and a
transfer completed within the visit included), unless `hotline recording stop CASE` ends it
first. A queue that records "never" records nothing, asked or not.

A segment is one leg's talk with one agent: the customer's call answered by an agent, the same
customer's video leg that took the talk over (a switch), the next agent's talk after a transfer.
Asterisk records the case's bridge, so what the file holds is the mixed audio of everyone in it;
of a video talk only its audio (a bridge recording has no video). The file is NAME.FORMAT in
Asterisk's recording directory (`recording_dir`, `recording_format`).

Start, stop, pause and resume (`hotline recording start|stop|pause|resume CASE`, the agent page)
reach the call as a user event about the customer's channel (RECORDING_EVENT), like a transfer the
CLI asks; Asterisk writes nothing while a recording is paused, and each pause is a row of
`recording_pauses`.

Every start, pause, resume and end is a fact of the call's one funnel, written behind it in order
with its other records. A recording Asterisk refuses to start is a row too, `failed`, with why.
A placed callback's talk (engine.callback_talk) is recorded the same way, by its callback's queue's
mode, from the customer's answer; it hears no record_announcement (the customer asked for the call).
A talk adopted after a daemon restart adopts the recording Asterisk went on with (TalkRecorder.adopt);
a finished one's file may then be moved (ctx.recording_finished: engine.recording_mover).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from hotline.asterisk.ari_events import ChannelUserevent
from hotline.cancellation import raise_if_cancelled
from hotline.engine.context import CallContext
from hotline.engine.facts import (
    RecordingEnded,
    RecordingFact,
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
)
from hotline.engine.messages import RecordingAsked
from hotline.errors import AriError
from hotline.provision.model import Hotline, Queue
from hotline.store.db import STORE_DOWN
from hotline.store.hops import Hop
from hotline.store.recordings import OpenRecording

log = logging.getLogger(__name__)

RECORDING_EVENT = "hotline-recording"
RECORDING_ACTIONS = ("start", "stop", "pause", "resume")
ASKED_LIMIT = 64  # characters kept of who asked
# Why a recording a stopped daemon left open was closed by the next one: ended_at is then when
# that daemon learnt it, not when Asterisk stopped.
ENDED_UNWATCHED = ("its talk ended while no daemon ran, and Asterisk's recording with it: ended when the "
                   "restarted daemon learnt it; its file stays in the recording directory")
NOT_ADOPTED = ("Asterisk no longer had it when the restarted daemon took the talk over (ended then "
               "at the latest)")


class RecordedCall(Protocol):
    """What a recorder needs of its talk: an inbound call's (engine.call.InboundCall) or a placed
    callback's (engine.callback_talk.RecordedTalk)."""

    @property
    def channel_id(self) -> str: ...
    @property
    def bridge_id(self) -> str: ...
    @property
    def case_id(self) -> int | None: ...
    def note_facts(self, *facts: RecordingFact) -> None:
        """Record `facts` on the talk's hop, in order with its other records (its state unchanged)."""


@dataclass
class LiveRecording:
    name: str
    fmt: str
    paused: bool = False


def record_mode(queue: Queue, hotline: Hotline | None) -> str:
    """How `queue`'s talks are recorded for a caller in `hotline` (the one that took the call, or
    one a menu, overflow or transfer sent it to): the queue's own `record` wins; a queue that sets
    none has the hotline's ("never" without one)."""
    if queue.record is not None:
        return queue.record
    return hotline.record if hotline is not None else "never"


def announcement_of(queue: Queue, hotline: Hotline | None, mode: str) -> str | None:
    """The sound that says the call may be recorded, played before a queue whose talks are
    recorded (`mode` always or on_demand): the queue's own, else its hotline's; None: none."""
    if mode == "never":
        return None
    if queue.record_announcement is not None:
        return queue.record_announcement
    return hotline.record_announcement if hotline is not None else None


def recording_name(case_id: int | None, at: float) -> str:
    """A name no other recording has, that says when and for which case: the file's name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(at))
    return f"case{case_id or 0}-{stamp}-{uuid.uuid4().hex[:8]}"


def file_name(name: str, fmt: str) -> str:
    return f"{name}.{fmt}"


def recording_asked(event: ChannelUserevent) -> RecordingAsked | None:
    """The RecordingAsked a user event carries, or None when it is no recording request."""
    if event.eventname != RECORDING_EVENT:
        return None
    action = event.variables.get("action", "")
    if action not in RECORDING_ACTIONS:
        log.info("recording request about %s with no action start|stop|pause|resume: %r",
                 event.channel.id, action)
        return None
    return RecordingAsked(action, event.variables.get("asked_by", "")[:ASKED_LIMIT] or "unknown")


class TalkRecorder:
    """The recordings of one queue visit's talks: at most one live at a time (a talk that follows
    another within the visit, an attended transfer completed, ends the previous segment first).

    `mode` is the queue's `record`: "always" records every talk; "on_demand" records once asked
    (`wanted` then stays for the rest of the visit, its later segments too); "never" none."""

    def __init__(self, ctx: CallContext, mode: str, queue_id: int | None) -> None:
        self.ctx = ctx
        self.mode = mode
        self.wanted = mode == "always"  # the talks of this visit are recorded (asked, or always)
        self.queue_id = queue_id
        self.live: LiveRecording | None = None
        self.talking = False  # a talk is under way: a start asked records it from now
        self.agent_id: int | None = None  # the agent of the talk under way

    async def start(self, call: RecordedCall, agent_id: int | None, *, record: bool = True) -> None:
        """The talk with agent `agent_id` began in the call's bridge: record it, if the queue says
        (or the agent asked already, in this visit). `record` False: a talk followed again after a
        restart, whose recording (if any) Asterisk went on with alone; a start asked still works."""
        self.talking, self.agent_id = True, agent_id
        if self.wanted and record:
            await self._record(call)

    async def end(self, call: RecordedCall) -> None:
        """The talk is over: so is its recording. Unless the daemon is stopping (the call's task
        cancelled): the talk goes on in Asterisk, and so does its recording, for the next daemon
        to adopt (`adopt`), its row left open."""
        self.talking = False
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            self.live = None
            return
        await self.stop(call)

    async def _record(self, call: RecordedCall) -> None:
        await self.stop(call)
        fmt = self.ctx.recording_format
        name = recording_name(call.case_id, time.time())
        path = str(PurePosixPath(self.ctx.recording_dir) / file_name(name, fmt))
        started = RecordingStarted(name, self.agent_id, self.queue_id, fmt, path)
        try:
            await self.ctx.ari.record_bridge(call.bridge_id, name, fmt)
        except AriError as exc:  # no recording directory, a full disk, the bridge gone already
            log.warning("call %s: the talk could not be recorded: %s", call.channel_id, exc)
            call.note_facts(started, RecordingEnded(name, failed=f"Asterisk refused: {exc}"[:500]))
            return
        self.live = LiveRecording(name, fmt)
        log.info("call %s: recording the talk as %s", call.channel_id, name)
        call.note_facts(started)

    async def stop(self, call: RecordedCall) -> None:
        """The segment is over: its end recorded first (a cancelled task loses nothing), then
        Asterisk told to stop (a bridge destroyed already ended it)."""
        live, self.live = self.live, None
        if live is None:
            return
        call.note_facts(RecordingEnded(live.name))
        await stop_quietly(self.ctx.ari, live.name)
        if self.ctx.recording_finished is not None:  # its file moved once Asterisk closed it
            self.ctx.recording_finished(live.name, live.fmt)

    async def ask(self, call: RecordedCall, asked: RecordingAsked) -> None:
        """Start, stop, pause or resume the recording, as asked; what makes no sense now (no talk,
        a queue that records never, a recording paused already) changes nothing."""
        refused = self._refusal(asked)
        if refused:
            log.info("call %s: recording %s asked by %s: %s", call.channel_id, asked.action, asked.asked_by,
                     refused)
            return
        if asked.action == "start":
            self.wanted = True
            log.info("call %s: recording started by %s", call.channel_id, asked.asked_by)
            await self._record(call)
        elif asked.action == "stop":
            self.wanted = False
            log.info("call %s: recording stopped by %s", call.channel_id, asked.asked_by)
            await self.stop(call)
        else:
            await self._pause_or_resume(call, asked)

    def _refusal(self, asked: RecordingAsked) -> str:
        """Why `asked` changes nothing now; empty when it does."""
        live = self.live
        if asked.action == "start":
            if self.mode == "never":
                return "this queue records never"
            if not self.talking:
                return "no talk under way"
            return "it is recording already" if live is not None else ""
        if live is None:
            return "no recording of this talk"
        if asked.action in ("pause", "resume") and live.paused == (asked.action == "pause"):
            return f"it is {asked.action}d already"
        return ""

    async def _pause_or_resume(self, call: RecordedCall, asked: RecordingAsked) -> None:
        live = self.live
        assert live is not None
        try:
            if asked.action == "pause":
                await self.ctx.ari.pause_recording(live.name)
            else:
                await self.ctx.ari.resume_recording(live.name)
        except AriError as exc:
            log.warning("call %s: recording %s %s failed: %s", call.channel_id, live.name, asked.action, exc)
            return
        live.paused = asked.action == "pause"
        log.info("call %s: recording %s %sd by %s", call.channel_id, live.name, asked.action, asked.asked_by)
        call.note_facts(RecordingPaused(live.name, asked.asked_by) if live.paused
                  else RecordingResumed(live.name))

    async def adopt_left_open(self, call: RecordedCall, hop_id: int) -> None:
        """After a restart: the recordings the stopped daemon left open on the talk's hop, taken
        over or closed (`adopt`); the database away, they are left as they are (logged)."""
        try:
            left = await self.ctx.contacts.open_recordings(hop_id)
        except (*STORE_DOWN, TimeoutError) as exc:
            raise_if_cancelled()
            log.warning("call %s: its recordings are not known (%s): not adopted", call.channel_id, exc)
            return
        await self.adopt(call, left)

    async def adopt(self, call: RecordedCall, left: list[OpenRecording]) -> None:
        """A talk followed again after a restart: the recordings the stopped daemon left open
        (`left`, oldest first). The one Asterisk still records is this talk's from now on (its end,
        pauses and stop as if never interrupted, so its row ends with the talk and its file holds
        the whole talk); one Asterisk no longer has is closed now, failed, saying so."""
        for found in left:
            try:
                live = await self.ctx.ari.live_recording(found.name)
            except AriError as exc:  # Asterisk unreachable a moment: the talk goes on unrecorded here
                log.warning("call %s: recording %s not adopted: %s", call.channel_id, found.name, exc)
                continue
            if live is None or self.live is not None:
                log.info("call %s: recording %s ended while no daemon watched", call.channel_id, found.name)
                call.note_facts(RecordingEnded(found.name, failed=NOT_ADOPTED))
                continue
            self.live = LiveRecording(found.name, found.format, live.get("state") == "paused")
            self.wanted = True
            log.info("call %s: recording %s adopted (%s)", call.channel_id, found.name, live.get("state"))
            if self.live.paused != (found.state == "paused"):  # a pause or resume the daemon never wrote
                call.note_facts(RecordingPaused(found.name, "before the restart") if self.live.paused
                          else RecordingResumed(found.name))

    async def moved(self, call: RecordedCall, agent_id: int | None) -> None:
        """The talk moved to another bridge (video came: engine.camera), which ended the old
        bridge's recording: the next segment records the new one."""
        if self.live is None:
            return
        paused = self.live.paused
        self.agent_id = agent_id
        await self._record(call)
        if paused:  # paused for a reason (a card number read out): the new bridge's too
            await self.ask(call, RecordingAsked("pause", "the move to a video bridge"))


async def close_left_open(ctx: CallContext, hop: Hop, why: str = ENDED_UNWATCHED) -> None:
    """The recordings a stopped daemon left open on `hop`, whose call ended while no daemon ran
    (its hop is being closed as such), or whose talk the restarted daemon did not take over (`why`
    says which): closed `failed`, saying so, at the time the daemon learnt it. Asterisk ends a
    bridge's recording with the last party leaving the bridge (on the lab: once the restarted
    daemon hangs up the agent's leg left alone there, which may be a moment from now), so each is
    also told to stop, for good. The database away: left as they are."""
    try:
        left = await ctx.contacts.open_recordings(hop.id)
    except (*STORE_DOWN, TimeoutError) as exc:
        raise_if_cancelled()
        log.warning("hop %s: its open recordings are not known (%s): left open", hop.id, exc)
        return
    for found in left:
        await stop_quietly(ctx.ari, found.name)
        log.info("hop %s: recording %s closed: %s", hop.id, found.name, why)
        ctx.records.submit(RecordingEnded(found.name, why).record(hop))


async def ask_recording(ari: RecordingRequests, app: str, channel_id: str, action: str,
                        asked_by: str) -> None:
    """Ask the daemon that runs `channel_id` to start, stop, pause or resume its talk's recording."""
    if action not in RECORDING_ACTIONS:
        raise ValueError(f"recording action {action!r} is not one of {RECORDING_ACTIONS}")
    await ari.user_event(app, RECORDING_EVENT, channel_id, {"action": action, "asked_by": asked_by})


class RecordingRequests(Protocol):
    async def user_event(self, app: str, name: str, channel_id: str,
                         variables: Mapping[str, str]) -> None: ...


async def stop_quietly(ari: StopsRecordings, name: str) -> None:
    """Tell Asterisk to stop `name`; gone already (its bridge destroyed) or unreachable, the
    recording ends with its bridge anyway."""
    with contextlib.suppress(AriError):
        await ari.stop_recording(name)


class StopsRecordings(Protocol):
    async def stop_recording(self, name: str) -> None: ...
