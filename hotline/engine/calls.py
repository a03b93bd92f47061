"""One inbound call: its own task and inbox, a small state machine, every change through one method.

The call finds its number and hotline in the directory (an unknown number hears that it is not
in service), takes a line of the number or is refused busy (486, before answer), and outside
the hotline's hours gets the hotline's closed action. Inside hours it reaches the hotline's entry:
for now a greeting and a hang-up; IVR and queues are the routing engine's next steps.
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
    ChannelHangupRequest,
    PlaybackFinished,
    StasisEnd,
)
from hotline.engine.directory import Directory
from hotline.engine.hours import is_open
from hotline.errors import AriError, AriNotFound
from hotline.numbers import to_e164
from hotline.provision.model import Hotline, Number
from hotline.store.contacts import Contacts, Hop, LinesBusy, NewHop

log = logging.getLogger(__name__)

T = TypeVar("T")


# What a database outage looks like from here: retried, never a reason to drop a call.
STORE_DOWN = (psycopg.OperationalError, PoolTimeout)


class CallState(enum.Enum):
    ENTERED = "entered"
    ANSWERED = "answered"
    PROMPTING = "prompting"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


@dataclass(frozen=True)
class CallContext:
    """What every call needs, passed in by the daemon (no module-level singletons)."""

    ari: AriClient
    contacts: Contacts
    directory: Directory
    node: str
    app: str = "hotline"
    region: str = "RU"
    greeting: str = "sound:hello-world"
    not_in_service: str = "sound:ss-noservice"
    hangup_grace_s: float = 5.0     # how long to wait for ChannelDestroyed after our hangup
    # The caller is not kept waiting for the database: after this long the call is served anyway
    # and its hop written when the database is back (within store_patience_s).
    store_open_patience_s: float = 2.0
    store_patience_s: float = 600.0


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
class Route:
    """Where the dialled number leads, decided before the call is answered."""

    number: Number | None = None
    hotline: Hotline | None = None
    number_id: int | None = None
    hotline_id: int | None = None


BUSY = (17, "User busy")


class InboundCall:
    def __init__(self, ctx: CallContext, channel: Channel, dialled: str, hop: Hop | None = None) -> None:
        self.ctx = ctx
        self.channel = channel
        self.dialled = dialled
        self.hop = hop
        self.state = CallState.ENTERED
        self.inbox: asyncio.Queue[AriEvent] = asyncio.Queue()
        self._hangup_cause: tuple[int | None, str | None] = (None, None)

    @property
    def channel_id(self) -> str:
        return self.channel.id

    async def run(self) -> None:
        """The whole life of the call; the hop is closed exactly once, whatever happens."""
        route = self._route()
        try:
            if self.hop is None:
                self.hop = await self._open_hop(route)
            end_reason = await self._serve(route)
        except LinesBusy:
            await self._refuse_busy(route)
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
        number = snapshot.number(to_e164(self.dialled, self.ctx.region) or self.dialled)
        if number is None:
            return Route()
        return Route(number, snapshot.hotline(number.hotline), snapshot.id_of("numbers", number.number),
                     snapshot.id_of("hotlines", number.hotline))

    async def _open_hop(self, route: Route) -> Hop | None:
        """Open the case and hop, taking a line of the number; LinesBusy when none is free."""
        try:
            async with asyncio.timeout(self.ctx.store_open_patience_s):
                return await self._store(lambda: self._write_new_hop(route), self.ctx.store_open_patience_s)
        except (*STORE_DOWN, TimeoutError) as exc:
            log.warning("call %s: database unavailable (%s); serving the call, its hop is written "
                        "when the database is back", self.channel_id, exc)
            return None

    async def _write_new_hop(self, route: Route) -> Hop:
        return await self.ctx.contacts.open_case_with_hop(
            new_hop(self.channel, self.dialled, self.ctx, route), customer_key(self.channel, self.ctx.region),
            line_limit=route.number.lines if route.number else None)

    async def _refuse_busy(self, route: Route) -> None:
        """All lines held: 486 Busy Here before answer, and the refusal recorded (supervisors count
        these to know when a number needs more lines)."""
        log.info("call %s: all lines of %s are held: busy", self.channel_id,
                 route.number.number if route.number else "?")
        await self._hangup_quietly("busy")
        self._set_state(CallState.ENDED)
        try:
            await self._store(lambda: self.ctx.contacts.record_refused(
                new_hop(self.channel, self.dialled, self.ctx, route),
                customer_key(self.channel, self.ctx.region), "busy", *BUSY), self.ctx.store_patience_s)
        except STORE_DOWN as exc:
            log.error("call %s: could not record the busy refusal: %s", self.channel_id, exc)

    async def _serve(self, route: Route) -> str:
        # Without this subscription Asterisk stops sending the channel's events at StasisEnd, and
        # the hangup cause travels only in ChannelDestroyed, which comes after it.
        await self.ctx.ari.subscribe(self.ctx.app, f"channel:{self.channel_id}")
        hotline = route.hotline
        if hotline is None:
            await self._say_and_hang_up(self.ctx.not_in_service)
            return "failed"
        taking, last = self._open_hotline(hotline)
        if taking is None:
            await self._say_and_hang_up(f"sound:{last.closed_prompt}" if last.closed_prompt else None)
            return "closed"
        await self._say_and_hang_up(self.ctx.greeting)
        return "completed"

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

    async def _say_and_hang_up(self, media: str | None) -> None:
        if self.channel.state != "Up":
            await self.ctx.ari.answer(self.channel_id)
            self._set_state(CallState.ANSWERED)
        if media:
            self._set_state(CallState.PROMPTING)
            playback_id = await self.ctx.ari.play(self.channel_id, media)
            await self._wait_for(lambda e: isinstance(e, PlaybackFinished) and e.playback_id == playback_id)
        self._set_state(CallState.HANGING_UP)
        await self.ctx.ari.hangup(self.channel_id, "normal")
        await self._await_destroyed()

    async def _wait_for(self, wanted: Callable[[AriEvent], bool]) -> AriEvent:
        """Next event that `wanted` accepts; raises ChannelGone when the channel ends first."""
        while True:
            event = await self.inbox.get()
            if isinstance(event, ChannelDestroyed):
                raise ChannelGone(event.cause, event.cause_txt)
            if isinstance(event, ChannelVanished):
                raise ChannelGone(None, "channel gone while the daemon was away", vanished=True)
            if isinstance(event, ChannelHangupRequest | StasisEnd):
                # The caller hung up (we have not asked to): stop serving, learn the cause.
                await self._await_destroyed()
                raise ChannelGone(*caller_hangup_cause(*self._hangup_cause))
            if wanted(event):
                return event

    async def _await_destroyed(self) -> None:
        """Drain the inbox until ChannelDestroyed (its cause is the hop's), within a grace period."""
        try:
            async with asyncio.timeout(self.ctx.hangup_grace_s):
                while True:
                    event = await self.inbox.get()
                    if isinstance(event, ChannelDestroyed):
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
        try:
            if self.hop is None:  # the database was down when the call came
                route = self._route()
                self.hop = await self._store(lambda: self._write_new_hop(route), self.ctx.store_patience_s)
            hop_id = self.hop.id
            await self._store(lambda: self.ctx.contacts.close_hop(
                hop_id, end_reason, cause=cause, cause_text=cause_text), self.ctx.store_patience_s)
        except (psycopg.Error, PoolTimeout) as exc:
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
    # In this slice the caller can only hang up during the greeting: the contact was handled.
    return "completed" if state is CallState.HANGING_UP else "abandoned"


def new_hop(channel: Channel, dialled: str, ctx: CallContext, route: Route) -> NewHop:
    dialled_e164 = to_e164(dialled, ctx.region)
    return NewHop(
        node=ctx.node, channel_id=channel.id, channel_name=clean_text(channel.name),
        channel_kind=channel_kind(channel, dialled_e164), media="audio",
        dialled=clean_text(dialled), dialled_e164=dialled_e164,
        caller_num=clean_text(channel.caller_num), caller_name=clean_text(channel.caller_name),
        entered_at=channel.created_at, number_id=route.number_id, hotline_id=route.hotline_id)


def channel_kind(channel: Channel, dialled_e164: str | None) -> str:
    """pstn when a telephone number was dialled; sip for a SIP address (webrtc arrives with video)."""
    return "pstn" if dialled_e164 else "sip"


def customer_key(channel: Channel, region: str) -> str:
    """Who the customer is, across hops: their E.164 number, else their SIP identity."""
    number = clean_text(channel.caller_num)
    e164 = to_e164(number, region) if number else None
    if e164:
        return e164
    return f"sip:{number}" if number else f"anonymous:{channel.endpoint or channel.name}"


def clean_text(text: str, limit: int = 256) -> str:
    """Caller ids come from the network: drop control characters (PostgreSQL refuses NUL)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")[:limit]
