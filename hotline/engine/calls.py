"""One inbound call: its own task and inbox, a small state machine, every change through one method.

The call finds its number and hotline in the directory (an unknown number hears that it is not
in service), takes a line of the number or is refused busy (486, before answer), and outside
the hotline's hours gets the hotline's closed action. Inside hours it follows the hotline's entry
(or its 8-800 region route) through IVR menus and queues (queue_visit) until the contact ends.
A call adopted after a daemon restart resumes where its hop says it was.

A video leg that brings a switch token (engine.switching) joins its case instead: next to the
agent of the phone leg it replaces, or, that leg gone, into the phone leg's hotline.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import psycopg
from psycopg_pool import PoolTimeout
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from hotline.asterisk.ari import AriClient
from hotline.asterisk.ari_events import (
    AriEvent,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    StasisEnd,
)
from hotline.engine.directory import Directory
from hotline.engine.hours import is_open
from hotline.engine.ivr import run_menu
from hotline.engine.queue_visit import Overflow, QueueVisit
from hotline.engine.queues import QueueManager
from hotline.engine.regions import route_by_region
from hotline.errors import AriError, AriNotFound
from hotline.media import WEB_ENDPOINT
from hotline.numbers import to_e164
from hotline.provision.model import Hotline, Number, Target
from hotline.store.contacts import (
    Contacts,
    Hop,
    LinesBusy,
    NewHop,
    Record,
    close_hop_record,
    ivr_digit_record,
)
from hotline.store.db import STORE_DOWN
from hotline.store.switches import Switches, SwitchRefused, SwitchUse, TokenState
from hotline.store.write_behind import WriteBehind

log = logging.getLogger(__name__)

T = TypeVar("T")


class CallState(enum.Enum):
    ENTERED = "entered"
    ANSWERED = "answered"
    PROMPTING = "prompting"
    IN_MENU = "in_menu"
    IN_QUEUE = "in_queue"
    BRIDGED = "bridged"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


@dataclass(frozen=True)
class CallContext:
    """What every call needs, passed in by the daemon (no module-level singletons)."""

    ari: AriClient
    contacts: Contacts
    records: WriteBehind  # what calls record, written behind them in batches
    directory: Directory
    queues: QueueManager
    watch: Callable[[str, InboundCall], None]
    unwatch: Callable[[str], None]
    node: str
    app: str = "hotline"
    region: str = "RU"
    not_in_service: str = "sound:ss-noservice"
    hangup_grace_s: float = 5.0     # how long to wait for ChannelDestroyed after our hangup
    # The caller is not kept waiting for the database: after this long the call is served anyway
    # and its hop written when the database is back (within store_patience_s).
    store_open_patience_s: float = 2.0
    store_patience_s: float = 600.0
    switches: Switches | None = None  # None: video legs with a switch token are refused
    continue_case_within_s: int | None = None  # a customer calling again continues their case
    find_call: Callable[[int], InboundCall | None] = lambda hop_id: None  # the live call of a hop
    # A key the caller presses while talking with an agent to be sent a link to move to video.
    switch_key: str = ""
    ask_switch: Callable[[InboundCall], Awaitable[None]] | None = None
    # The legs of parties brought into a case's talk (a conference): released when the talk ends.
    conference_legs: Callable[[int], list[str]] = lambda case_id: []


class _CallerLeaving(Exception):
    """The caller's hangup is under way; converted to ChannelGone once its cause is known."""


class ChannelGone(Exception):
    """The caller's channel ended (hangup, or it vanished while the daemon was away)."""

    def __init__(self, cause: int | None, cause_text: str | None, *, vanished: bool = False) -> None:
        super().__init__(cause_text or "channel gone")
        self.cause = cause
        self.cause_text = cause_text
        self.vanished = vanished


@dataclass(frozen=True)
class ChannelVanished(AriEvent):
    """Synthetic: reconcile found this call's channel gone while ARI was disconnected."""

    channel_id: str


@dataclass(frozen=True)
class SwitchedAway(AriEvent):
    """Synthetic: the customer joined the case's bridge on a video leg (channel to_channel_id); this
    call hands the talk over (`handover` gets it) and its own leg goes."""

    to_channel_id: str
    handover: asyncio.Future[object]


@dataclass(frozen=True)
class Route:
    """Where the dialled number leads, decided before the call is answered."""

    number: Number | None = None
    hotline: Hotline | None = None
    number_id: int | None = None
    hotline_id: int | None = None


BUSY = (17, "User busy")
MAX_ROUTE_STEPS = 8  # menus, queues and overflows one call may pass through


class InboundCall:
    def __init__(self, ctx: CallContext, channel: Channel, dialled: str, hop: Hop | None = None, *,
                 video: bool = False, customer: str = "", switch_token: str | None = None) -> None:
        self.ctx = ctx
        self.channel = channel
        self.dialled = dialled
        self.hop = hop
        self.video = video or (hop is not None and hop.media == "video")
        self.customer = customer  # a browser's own id: its customer key across calls
        # Not None: a video leg moving a live call's customer to video ("" : it brought no token).
        self.switch_token = switch_token
        self.switch: SwitchUse | None = None  # the token used: the case and leg this one continues
        self.switched_to: SwitchedAway | None = None  # this call's talk went on on a video leg
        self.state = CallState.ENTERED
        self.inbox: asyncio.Queue[AriEvent] = asyncio.Queue()
        self._hangup_cause: tuple[int | None, str | None] = (None, None)
        self.hangup_seen = False
        self._answered = False

    @property
    def channel_id(self) -> str:
        return self.channel.id

    async def run(self) -> None:
        """The whole life of the call; the hop is closed exactly once, whatever happens."""
        route = self._route()
        adopted = self.hop is not None
        try:
            if self.hop is None:
                # Both are needed before anything else; neither needs the other.
                self.hop, _ = await asyncio.gather(self._open_hop(route), self._subscribe())
            end_reason = await self._serve_to_the_end(route, adopted)
        except LinesBusy:
            await self._refuse_busy(route)
            return
        except SwitchRefused as refused:
            log.warning("call %s: switch refused: token %s", self.channel_id, refused.state.value)
            await self._hangup_quietly("rejected")  # 403 before answer; no case, no hop
            self._set_state(CallState.ENDED)
            return
        except asyncio.CancelledError:
            # The daemon is stopping: the channel stays in Stasis and the hop open, and the next
            # daemon adopts both. Closing the hop here would record a cut that never happened.
            raise
        except ChannelGone as gone:
            end_reason = "failed" if gone.vanished else _caller_hung_up_reason(self.state)
            self._hangup_cause = (gone.cause, gone.cause_text)
        except AriNotFound:
            # The channel went between an event and our request: it hung up; learn the cause.
            await self._await_destroyed()
            end_reason = _caller_hung_up_reason(self.state)
        except Exception as exc:  # ARI refused, database gone for good, a bug: the call still ends
            log.error("call %s failed: %s", self.channel_id, exc, exc_info=not isinstance(exc, AriError))
            end_reason = "failed"
            await self._hangup_quietly()
        await self._end(end_reason)

    def _route(self) -> Route:
        snapshot = self.ctx.directory.snapshot
        if self.switch_token is not None:
            return self._route_of_switch()
        number = snapshot.number(to_e164(self.dialled, self.ctx.region) or self.dialled)
        if number is None:
            return Route()
        return Route(number, snapshot.hotline(number.hotline), snapshot.id_of("numbers", number.number),
                     snapshot.id_of("hotlines", number.hotline))

    def _route_of_switch(self) -> Route:
        """A switch leg dials no number: it goes where the leg it continues went (its hotline)."""
        if self.switch is None or self.switch.hotline_id is None:
            return Route()
        snapshot = self.ctx.directory.snapshot
        names = {ident: name for name, ident in snapshot.ids.get("hotlines", {}).items()}
        hotline = snapshot.prov.hotlines.get(names.get(self.switch.hotline_id, ""))
        return Route(hotline=hotline, hotline_id=self.switch.hotline_id if hotline else None)

    async def _open_hop(self, route: Route) -> Hop | None:
        """Open the case and hop, taking a line of the number; LinesBusy when none is free."""
        if self.switch_token is not None:
            return await self._use_switch_token()
        try:
            async with asyncio.timeout(self.ctx.store_open_patience_s):
                return await self._store(lambda: self._write_new_hop(route), self.ctx.store_open_patience_s)
        except (*STORE_DOWN, TimeoutError) as exc:
            log.warning("call %s: database unavailable (%s); serving the call, its hop is written "
                        "when the database is back", self.channel_id, exc)
            return None

    async def _use_switch_token(self) -> Hop:
        """The video leg's hop, in the case its token is for; SwitchRefused for a bad token. No
        database, no switch: the token cannot be checked, and an unchecked one opens nothing."""
        if self.ctx.switches is None or not self.switch_token:
            raise SwitchRefused(TokenState.UNKNOWN)
        switches = self.ctx.switches
        hop = new_hop(self.channel, self.dialled, self.ctx, Route(), video=self.video)
        try:
            self.switch = await switches.use(self.switch_token, hop)
        except STORE_DOWN as exc:
            log.error("call %s: switch token not checked, the database is unavailable: %s",
                      self.channel_id, exc)
            raise SwitchRefused(TokenState.UNKNOWN) from exc
        log.info("call %s: video leg of case %s (hop %s) replacing hop %s", self.channel_id,
                 self.switch.hop.case_id, self.switch.hop.id, self.switch.from_hop_id)
        return self.switch.hop

    async def _write_new_hop(self, route: Route) -> Hop:
        return await self.ctx.contacts.open_case_with_hop(
            new_hop(self.channel, self.dialled, self.ctx, route, video=self.video),
            customer_key(self.channel, self.ctx.region, self.customer),
            line_limit=route.number.lines if route.number else None,
            continue_within_s=self.ctx.continue_case_within_s)

    async def _refuse_busy(self, route: Route) -> None:
        """All lines held: 486 Busy Here before answer, and the refusal recorded (supervisors count
        these to know when a number needs more lines)."""
        log.info("call %s: all lines of %s are held: busy", self.channel_id,
                 route.number.number if route.number else "?")
        await self._hangup_quietly("busy")
        self._set_state(CallState.ENDED)
        try:
            await self._store(lambda: self.ctx.contacts.record_refused(
                new_hop(self.channel, self.dialled, self.ctx, route, video=self.video),
                customer_key(self.channel, self.ctx.region, self.customer), "busy", *BUSY),
                self.ctx.store_patience_s)
        except STORE_DOWN as exc:
            log.error("call %s: could not record the busy refusal: %s", self.channel_id, exc)

    async def _serve_to_the_end(self, route: Route, adopted: bool = False) -> str:
        try:
            if adopted:
                resumed = await self._resume()
                if resumed is not None:
                    return resumed
            return await self._serve(route)
        except _CallerLeaving:
            await self._await_destroyed()
            raise ChannelGone(*caller_hangup_cause(*self._hangup_cause)) from None

    async def _subscribe(self) -> None:
        # Without a subscription Asterisk stops sending the channel's events at StasisEnd, and
        # the hangup cause travels only in ChannelDestroyed, which comes after it. The session
        # subscribes the app to all channels on connect; this is for an Asterisk that refused.
        if not self.ctx.ari.all_channels:
            await self.ctx.ari.subscribe(self.ctx.app, f"channel:{self.channel_id}")

    async def _serve(self, route: Route) -> str:
        if self.switch is not None:
            from hotline.engine.switching import join_the_talk  # switching builds on this module
            joined = await join_the_talk(self, self.switch)
            if joined is not None:
                return joined
            route = self._route()  # the phone leg is gone: the video leg goes where it went
        hotline = route.hotline
        if hotline is None:
            await self._say_and_hang_up(self.ctx.not_in_service)
            return "failed"
        taking, last = self._open_hotline(hotline)
        if taking is None:
            await self._say_and_hang_up(f"sound:{last.closed_prompt}" if last.closed_prompt else None)
            return "closed"
        return await self._enter(self._entry_of(taking))

    async def _resume(self) -> str | None:
        """A call adopted after a daemon restart picks up where its hop says it was: bridged with
        an agent (the talk goes on), or waiting in a queue (same place in line); else None, and
        it starts over (IVR prompts are cheap to replay)."""
        hop, snapshot = self.hop, self.ctx.directory.snapshot
        if hop is None or hop.queue_id is None:
            return None
        names = {ident: name for name, ident in snapshot.ids.get("queues", {}).items()}
        queue = snapshot.prov.queues.get(names.get(hop.queue_id, ""))
        if queue is None:
            return None
        self._answered = True
        self._set_state(CallState.IN_QUEUE)
        await self._subscribe()
        visit = QueueVisit(self, queue)
        if hop.answered_at is not None and hop.agent_id is not None:
            agent_leg = await self._agent_leg_in_bridge()
            agents = {ident: name for name, ident in snapshot.ids.get("agents", {}).items()}
            if agent_leg is not None and hop.agent_id in agents:
                return await visit.resume_talk(agents[hop.agent_id], agent_leg, hop.answered_at.timestamp())
            await self._say_and_hang_up(None)  # the agent left while nobody was watching
            return "completed"
        if hop.queued_at is not None:
            outcome = await visit.resume_waiting(hop.queued_at.timestamp())
            if isinstance(outcome, str):
                return outcome
            return await self._enter(outcome.target, overflowed=isinstance(outcome, Overflow))
        return None

    async def _agent_leg_in_bridge(self) -> str | None:
        """The other channel of the case's bridge, if the caller is still in it."""
        try:
            bridge = await self.ctx.ari.bridge(f"case-{self.case_id}")
        except AriNotFound:
            return None
        others = [c for c in bridge.get("channels", []) if c != self.channel_id]
        return others[0] if self.channel_id in bridge.get("channels", []) and others else None

    def _entry_of(self, hotline: Hotline) -> Target:
        """The hotline's entry, or for an 8-800 line the queue its region routes say for this
        caller (longest number prefix, then geocoded region)."""
        if hotline.regions:
            queue = route_by_region(hotline, self.channel.caller_num or None)
            if queue is not None:
                log.info("call %s: caller %s routed by region to queue %s", self.channel_id,
                         self.channel.caller_num, queue)
                return Target("queue", queue)
        return hotline.entry

    async def _enter(self, target: Target, overflowed: bool = False) -> str:
        """Follow the hotline's entry: menus, queues, overflows, until the contact ends."""
        prov = self.ctx.directory.snapshot.prov
        for _ in range(MAX_ROUTE_STEPS):
            if target.action == "menu":
                self._set_state(CallState.IN_MENU)
                target = await run_menu(self, prov.menus, target, self._pressed)
            elif target.action == "queue" and target.name in prov.queues:
                self._set_state(CallState.IN_QUEUE)
                outcome = await QueueVisit(self, prov.queues[target.name]).run()
                if isinstance(outcome, str):
                    return outcome
                target, overflowed = outcome.target, overflowed or isinstance(outcome, Overflow)
            elif target.action == "hotline" and target.name in prov.hotlines:
                target = prov.hotlines[target.name].entry
            else:
                break
        # hangup, and (for now) video and callback, which later work acts on.
        await self._say_and_hang_up(None)
        return "overflow" if overflowed else "completed"

    async def _pressed(self, digit: str) -> None:
        self.record_key(digit)

    def record_key(self, digit: str) -> None:
        """A key the caller pressed in a menu (or to leave a queue): appended to the hop's IVR path."""
        if self.hop is not None:
            self.record(ivr_digit_record(self.hop.id, digit))

    def _open_hotline(self, hotline: Hotline) -> tuple[Hotline | None, Hotline]:
        """(the hotline that takes the call now, or None: closed; the last hotline looked at).
        A closed hotline may send callers on to another (validation refuses cycles)."""
        snapshot = self.ctx.directory.snapshot
        seen: set[str] = set()
        while not is_open(hotline, datetime.now(UTC)):
            seen.add(hotline.name)
            target = hotline.closed
            if target.action != "hotline" or target.name is None or target.name in seen:
                return None, hotline  # hangup, callback (recorded as closed until callbacks exist)
            hotline = snapshot.hotline(target.name)
        return hotline, hotline

    # -- media, as the IVR and the queue use it (hotline.engine.ivr.CallIO) ----------------------

    async def answer(self) -> None:
        """Answer once (an adopted call arrives already up)."""
        if self.channel.state != "Up" and not self._answered:
            await self.ctx.ari.answer(self.channel_id)
            self._answered = True
            if self.state is CallState.ENTERED:
                self._set_state(CallState.ANSWERED)

    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None:
        """Play `media` to the caller (answering first); with stop_on_digit a key pressed stops it
        and is returned. ChannelGone when the caller hangs up meanwhile."""
        await self.answer()
        playback_id = await self.ctx.ari.play(self.channel_id, media)
        def done(e: AriEvent) -> bool:
            finished = isinstance(e, PlaybackFinished) and e.playback_id == playback_id
            return finished or (stop_on_digit and isinstance(e, ChannelDtmfReceived))
        event = await self._wait_for(done)
        if isinstance(event, ChannelDtmfReceived):
            await self.ctx.ari.stop_playback(playback_id)
            return event.digit
        return None

    async def digit(self, timeout: float) -> str | None:
        """The next key the caller presses within `timeout` seconds, or None."""
        try:
            async with asyncio.timeout(timeout):
                event = await self._wait_for(lambda e: isinstance(e, ChannelDtmfReceived))
        except TimeoutError:
            return None
        assert isinstance(event, ChannelDtmfReceived)
        return event.digit

    async def _say_and_hang_up(self, media: str | None) -> None:
        await self.answer()
        if media:
            self._set_state(CallState.PROMPTING)
            playback_id = await self.ctx.ari.play(self.channel_id, media)
            await self._wait_for(lambda e: isinstance(e, PlaybackFinished) and e.playback_id == playback_id)
        self._set_state(CallState.HANGING_UP)
        await self.ctx.ari.hangup(self.channel_id, "normal")
        await self._await_destroyed()

    async def _wait_for(self, wanted: Callable[[AriEvent], bool]) -> AriEvent:
        """Next event that `wanted` accepts; raises ChannelGone when the caller's channel ends first."""
        while True:
            event = await self.inbox.get()
            self.check_caller_gone(event)
            if wanted(event):
                return event

    def _is_caller_hangup(self, event: AriEvent) -> bool:
        return (isinstance(event, ChannelDestroyed | ChannelHangupRequest | StasisEnd)
                and event.channel.id == self.channel_id)

    def check_caller_gone(self, event: AriEvent) -> None:
        """Raise ChannelGone when `event` says the caller is gone (the agent legs' events pass)."""
        if isinstance(event, ChannelVanished) and event.channel_id == self.channel_id:
            raise ChannelGone(None, "channel gone while the daemon was away", vanished=True)
        if not self._is_caller_hangup(event):
            return
        self.hangup_seen = True
        if isinstance(event, ChannelDestroyed):
            raise ChannelGone(*caller_hangup_cause(event.cause, event.cause_txt))
        raise _CallerLeaving()

    async def next_event(self, timeout: float) -> AriEvent | None:
        """The next event within `timeout` seconds, or None."""
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                return await self.inbox.get()
        except TimeoutError:
            return None

    @property
    def is_up(self) -> bool:
        return not self.hangup_seen

    @property
    def case_id(self) -> int | None:
        return self.hop.case_id if self.hop else None

    @property
    def bridge_id(self) -> str:
        """The case's bridge (a later hop of the case joins it); a call whose hop could not be
        written yet (database down) has one of its own, never a bridge shared with others."""
        return f"case-{self.case_id}" if self.case_id is not None else f"case-channel-{self.channel_id}"

    def watch(self, channel_id: str) -> None:
        """Route another channel's events (an agent leg this call placed) to this call's inbox."""
        self.ctx.watch(channel_id, self)

    def unwatch(self, channel_id: str) -> None:
        self.ctx.unwatch(channel_id)

    def bridged_with(self, channel_id: str) -> None:
        self._set_state(CallState.BRIDGED)

    @property
    def preferred_agent(self) -> str | None:
        """The agent who last talked with this customer, when this call continues their case (or
        the agent of the phone leg a switch leg replaces)."""
        if self.switch is not None:
            last = self.switch.agent_id
        else:
            last = self.hop.case_last_agent_id if self.hop is not None else None
        if last is None:
            return None
        names = {ident: name for name, ident in self.ctx.directory.snapshot.ids.get("agents", {}).items()}
        return names.get(last)

    @property
    def is_bridged(self) -> bool:
        return self.state is CallState.BRIDGED and not self.hangup_seen

    async def leave_for_video(self) -> None:
        """The talk went on on the customer's video leg: this leg is hung up (the agent stays in
        the case's bridge), and its hop ends `switched`."""
        self._set_state(CallState.HANGING_UP)
        self.hangup_seen = True
        await self._hangup_quietly()
        await self._await_destroyed()

    async def until_either_hangs_up(self, agent_channel_id: str) -> str:
        """While bridged: "caller" or "agent", whoever hangs up first; "switched" when the
        customer joined on a video leg that takes the talk over (self.switched_to)."""
        while True:
            event = await self.inbox.get()
            if isinstance(event, SwitchedAway):
                self.switched_to = event
                return "switched"
            if (isinstance(event, ChannelDtmfReceived) and event.channel.id == self.channel_id
                    and event.digit == self.ctx.switch_key and self.ctx.ask_switch is not None):
                await self.ctx.ask_switch(self)
                continue
            if self._is_caller_hangup(event) or isinstance(event, ChannelVanished):
                self.hangup_seen = True
                if not isinstance(event, ChannelDestroyed):
                    await self._await_destroyed()
                else:
                    self._hangup_cause = caller_hangup_cause(event.cause, event.cause_txt)
                return "caller"
            if (isinstance(event, ChannelDestroyed | StasisEnd | ChannelHangupRequest)
                    and event.channel.id == agent_channel_id):
                return "agent"

    def record(self, record: Record) -> None:
        """A database write the caller must not wait for (a queue event, a key pressed): written
        behind the call, in order, retried through an outage; the hop closes after the last."""
        self.ctx.records.submit(record)

    async def _await_destroyed(self) -> None:
        """Drain the inbox until ChannelDestroyed (its cause is the hop's), within a grace period."""
        try:
            async with asyncio.timeout(self.ctx.hangup_grace_s):
                while True:
                    event = await self.inbox.get()
                    if isinstance(event, ChannelDestroyed) and event.channel.id == self.channel_id:
                        self._hangup_cause = (event.cause, event.cause_txt)
                        return
                    if isinstance(event, ChannelVanished):
                        return
        except TimeoutError:
            log.warning("call %s: no ChannelDestroyed within %.0f s", self.channel_id,
                        self.ctx.hangup_grace_s)

    async def _end(self, end_reason: str) -> None:
        self._set_state(CallState.ENDED)
        cause, cause_text = self._hangup_cause
        ended_at = datetime.now(UTC)
        try:
            if self.hop is None:  # the database was down when the call came
                route = self._route()
                self.hop = await self._store(lambda: self._write_new_hop(route), self.ctx.store_patience_s)
            hop_id = self.hop.id
            # After this call's records, in the same order (the write-behind is one queue).
            await self.ctx.records.write(close_hop_record(hop_id, end_reason, cause=cause,
                                                             cause_text=cause_text, at=ended_at))
        except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
            # The hop stays open (or unwritten); the next reconcile closes open ones as failed.
            log.error("call %s: could not record its end (%s): %s", self.channel_id, end_reason, exc)
            return
        log.info("call %s ended: hop %s %s (cause %s %s)", self.channel_id, hop_id, end_reason,
                 cause, cause_text or "")

    async def _hangup_quietly(self, reason: str = "normal") -> None:
        try:
            await self.ctx.ari.hangup(self.channel_id, reason)
        except AriError:
            pass

    def _set_state(self, new: CallState) -> None:
        """The one place a call changes state: logged here; later work records queue events here."""
        if new is not self.state:
            log.debug("call %s: %s -> %s", self.channel_id, self.state.value, new.value)
            self.state = new

    async def _store(self, write: Callable[[], Awaitable[T]], patience_s: float) -> T:
        """Retry a database write through an outage instead of dropping it (writes are idempotent)."""
        try:
            return await write()  # the usual case, without building a retry loop for it
        except STORE_DOWN as exc:
            log.warning("call %s: database write failed, retrying: %s", self.channel_id, exc)
        async for attempt in AsyncRetrying(
                stop=stop_after_delay(patience_s),
                wait=wait_exponential(multiplier=0.2, max=5.0),
                retry=retry_if_exception_type(STORE_DOWN),
                before_sleep=lambda state: log.warning(
                    "call %s: database write failed, retrying: %s", self.channel_id,
                    state.outcome.exception() if state.outcome else "?"),
                reraise=True):
            with attempt:
                return await write()
        raise AssertionError("unreachable")


def caller_hangup_cause(cause: int | None, text: str | None) -> tuple[int | None, str | None]:
    """Asterisk 22 reports a caller's BYE as cause 0 'Unknown' (ARI and AMI alike); a BYE is
    Q.850 16, normal clearing (RFC 3398), which is what a supervisor expects to read."""
    if not cause:
        return NORMAL_CLEARING
    return cause, text


NORMAL_CLEARING = (16, "Normal Clearing")


def _caller_hung_up_reason(state: CallState) -> str:
    """A caller hanging up while bridged or being hung up ends a handled contact; anywhere
    before (greeting, menu, queue) it is abandoned."""
    return "completed" if state in (CallState.HANGING_UP, CallState.BRIDGED) else "abandoned"


def new_hop(channel: Channel, dialled: str, ctx: CallContext, route: Route, *, video: bool = False) -> NewHop:
    dialled_e164 = to_e164(dialled, ctx.region)
    return NewHop(
        node=ctx.node, channel_id=channel.id, channel_name=clean_text(channel.name),
        channel_kind=channel_kind(channel, dialled_e164), media="video" if video else "audio",
        dialled=clean_text(dialled), dialled_e164=dialled_e164,
        caller_num=clean_text(channel.caller_num), caller_name=clean_text(channel.caller_name),
        entered_at=channel.created_at, number_id=route.number_id, hotline_id=route.hotline_id)


def channel_kind(channel: Channel, dialled_e164: str | None) -> str:
    """webrtc for a customer's browser; pstn when a telephone number was dialled; else sip (a SIP
    address, a video phone's call to a video hotline)."""
    if channel.endpoint == WEB_ENDPOINT:
        return "webrtc"
    return "pstn" if dialled_e164 else "sip"


def customer_key(channel: Channel, region: str, browser_id: str = "") -> str:
    """Who the customer is, across hops: their E.164 number, their browser's own id, else their
    SIP identity."""
    if browser_id:
        return f"web:{browser_id}"
    number = clean_text(channel.caller_num)
    e164 = to_e164(number, region) if number else None
    if e164:
        return e164
    return f"sip:{number}" if number else f"anonymous:{channel.endpoint or channel.name}"


def clean_text(text: str, limit: int = 256) -> str:
    """Caller ids come from the network: drop control characters (PostgreSQL refuses NUL)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")[:limit]
