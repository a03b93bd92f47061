"""One inbound call: one task, one inbox with one reader, one funnel for its state and records.

The call finds its number and hotline (an unknown number hears that it is not in service), takes
a line of the number or is refused busy (486, before answer), and outside the hotline's hours
gets the hotline's closed action. Inside hours it follows the hotline's entry (or its 8-800 region
route) through IVR menus and queues (queueing.visit) until the contact ends. A call adopted after
a daemon restart resumes where its hop says it was. A video leg that brings a switch token joins
its case instead (engine.handover).

Three rules keep it simple for what later features add:
- `next_event()` is the only reader of the inbox. The call's own channel going is met there and
  nowhere else: it raises CallerGone into whatever the call was doing, which unwinds and records
  how it ended. A message a state does not expect goes to `unexpected()`: logged with the state.
- `_move()` is the only place the state changes. It checks the move (call_state.ALLOWED) and
  submits the records of the change to the ordered write-behind, so the database follows the
  state machine step by step and a call's records are applied in the order they happened.
- Every way out goes through LEAVING (the end reason decided) to ENDED (the hop closed, with the
  cause Asterisk gave when the channel was destroyed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, NoReturn

import psycopg

from hotline.asterisk.ari_events import (
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from hotline.cancellation import raise_if_cancelled
from hotline.engine.built_in_prompts import localised
from hotline.engine.call_state import HANDLED, CallState, allowed
from hotline.engine.camera import note_camera
from hotline.engine.context import CallContext, LiveCall
from hotline.engine.facts import Fact, HopEnded, KeyPressed, LanguageSet, RecordingFact, TransferNoted
from hotline.engine.handover import continue_the_leg, take_the_talk
from hotline.engine.hop_keeper import HopKeeper
from hotline.engine.ivr import run_menu
from hotline.engine.leg import CUT_BY_SHUTDOWN, caller_hangup_cause, is_shutdown_hangup
from hotline.engine.messages import (
    CallerGone,
    CameraTurned,
    ChannelVanished,
    ConsultDialled,
    HandoverAsked,
    HangingUp,
    Message,
    PhoneSwitchAsked,
    PlaceAsked,
    QueueTurn,
    TransferAsked,
)
from hotline.engine.outcomes import EndReason
from hotline.engine.outside import talk_outside
from hotline.engine.queueing.callback_offer import ask_callback_in
from hotline.engine.queueing.visit import (
    BrokeOut,
    CallbackAsked,
    Overflow,
    QueueVisit,
    TalkOver,
    Transferred,
    VisitOutcome,
)
from hotline.engine.routing.hours import next_opening
from hotline.engine.routing.route import (
    Route,
    entry_of,
    hotline_taking_calls,
    route_of_hotline,
    route_of_number,
)
from hotline.engine.stasis_entry import read_phone_token, read_web_headers
from hotline.engine.transfer import CONSULT_ENDED_BY_RESTART, CONSULT_REFUSED, TRANSFER_REFUSED, Handoff
from hotline.errors import AriError, AriNotFound, SwitchRefused
from hotline.logs import CallIds, about_call
from hotline.media import case_bridge_ids
from hotline.provision.model import Hotline, MenuOption, Target, TargetAction
from hotline.store.contacts import LinesBusy
from hotline.store.db import STORE_DOWN
from hotline.store.hops import Hop
from hotline.store.switches import SwitchUse

log = logging.getLogger(__name__)

MAX_ROUTE_STEPS = 8  # menus, queues and overflows one call may pass through (anew after a transfer)
# How long a caller joining a queue waits for its hop to say whose case it continues (so that
# their last agent is offered first): the usual open takes a few ms; a slow database loses only
# the preference.
CASE_PATIENCE_S = 0.015
# Keys pressed and not read yet: a caller typing ahead of a menu needs a few; a flood (2000 SIP
# INFOs in seconds) would otherwise queue here and keep the menu answering stale keys, two ARI
# requests each, long after the caller stopped, and hide the hangup behind them.
KEYS_AHEAD = 16
VANISHED = (None, "channel gone while the daemon was away")
# An adopted channel gone before its subscription: how long its own end events may take to come.
ADOPTED_END_GRACE_S = 2.0


class InboundCall:
    def __init__(self, ctx: CallContext, channel: Channel, dialled: str, hop: Hop | None = None, *,
                 video: bool = False, web: bool = False, switch_token: str | None = None,
                 dialled_out: bool = False) -> None:
        self.ctx = ctx
        self.channel = channel
        self.dialled = dialled
        self.video = video or (hop is not None and hop.media == "video")
        self.hops = HopKeeper(ctx, channel, dialled, video=self.video, customer="", hop=hop)
        self.web = web  # a customer's browser: its id (and switch token) come in its SIP headers
        self.dialled_out = dialled_out  # the customer's phone, dialled for a video leg: its token on it
        # Not None: a video leg moving a live call's customer to video ("" : it brought no token).
        self.switch_token = switch_token
        self.switch: SwitchUse | None = None  # the token used: the case and leg this one continues
        self.video_bridge = False  # its talk moved to the case's SFU bridge when its camera came on
        # A customer's web leg: they hung up with the page's button (so a drop is not one), its
        # agent's endpoint while its talk waits for the page to come back, and the dropped call
        # of the same customer this leg comes back to.
        self.meant_to_hang_up = False
        self.awaiting_rejoin: str | None = None
        # The endpoint of the agent this call talks with now: their phone's consult call (an
        # attended transfer begun on the phone) belongs to this call.
        self.talking_with: str | None = None
        self.talk_leg: str | None = None  # that agent's channel (a supervisor's snoop listens on it)
        self.talk_since: float | None = None  # when that talk was answered (epoch s)
        self.rejoins: LiveCall | None = None
        self.state = CallState.ENTERED
        self.end_reason: EndReason | None = None  # decided on the way to LEAVING
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.answered = False
        self.transferred = False  # an agent passed it on: it talked already
        # The hotline whose routes it follows now (the one that took it, then one a menu key, an
        # overflow or a transfer sent it to): the `record` of its queues that set none.
        self.in_hotline: Hotline | None = None
        self.announced_recording = False  # "this call may be recorded" played: once per call
        # Its priority in queues (higher first): the number's, then a region route's or a menu
        # key's where they set one (the most specific wins); an adopted leg's is its hop's, and
        # a transfer keeps it.
        self.priority = (hop.priority or 0) if hop is not None else 0
        # The language its prompts play in (CHANNEL(language), which Asterisk keeps on the channel,
        # so an adopted call's stays, as on its hop): its number's, else its hotline's, until a
        # menu key changes it; None: Asterisk's default. Built-in prompts are named as it names them.
        self.language: str | None = hop.language if hop is not None else None
        self.gone = False  # the channel is hanging up or gone (its own event said so)
        # ... and not by the caller: it vanished while the daemon was not watching, or Asterisk
        # cut it shutting down. A failure, never an abandon.
        self.cut = False
        self.shut_down = False  # ... by Asterisk shutting down: failed even in a talk
        self._destroyed = False
        self._cause: tuple[int | None, str | None] = (None, None)
        self._turn_posted = False
        self.placed = asyncio.Event()  # set by its first move: in line, talking or leaving
        self._strays: set[asyncio.Task[None]] = set()
        self._keys_ahead = 0  # the caller's keys in the inbox
        self._keys_dropped = 0
        # The video leg asking for this call's place in line, kept until the queue visit looks.
        self._place_asked: PlaceAsked | None = None

    @property
    def channel_id(self) -> str:
        return self.channel.id

    @property
    def hop(self) -> Hop | None:
        return self.hops.hop

    # -- the inbox: everyone posts, only this call's task reads ----------------------------------

    def post(self, message: Message) -> None:
        if self.is_own_key(message):
            if self._keys_ahead >= KEYS_AHEAD:
                self._drop_key()
                return
            self._keys_ahead += 1
        self.inbox.put_nowait(message)

    def _drop_key(self) -> None:
        self._keys_dropped += 1
        if self._keys_dropped == 1:  # a flood is one line
            log.warning("call %s: %d keys pressed ahead and not read yet: dropping the next ones",
                        self.channel_id, KEYS_AHEAD)

    def wake(self) -> None:
        """The queue manager: this caller's turn may have come. One QueueTurn waits at a time."""
        if not self._turn_posted:
            self._turn_posted = True
            self.inbox.put_nowait(QueueTurn())

    async def next_event(self, timeout: float | None = None) -> Message | None:
        """The one reader of the inbox: the next message within `timeout` seconds (None: wait as
        long as it takes), or None. The call's own channel going raises CallerGone, once, here."""
        try:
            if timeout is None:
                message = await self.inbox.get()
            else:
                async with asyncio.timeout(max(timeout, 0.0)):
                    message = await self.inbox.get()
        except TimeoutError:
            return None
        if isinstance(message, QueueTurn):
            self._turn_posted = False
        elif self.is_own_key(message):
            self._keys_ahead -= 1
        elif self._is_own_end(message):
            self._own_channel_went(message)
        return message

    def _is_own_end(self, message: Message) -> bool:
        if isinstance(message, ChannelVanished):
            return message.channel_id == self.channel_id
        return (isinstance(message, ChannelDestroyed | StasisEnd | ChannelHangupRequest)
                and message.channel.id == self.channel_id)

    def _own_channel_went(self, message: Message) -> None:
        if isinstance(message, ChannelDestroyed):
            self._destroyed = True
            if not self.cut:
                self._cause = caller_hangup_cause(message.cause, message.cause_txt)
        elif isinstance(message, ChannelVanished):
            self._destroyed = self.cut = True
            self._cause = VANISHED
            if message.why is not None:  # its node given up for lost: a failure, as a shutdown is
                self.shut_down = True
                self._cause = (None, message.why)
        elif is_shutdown_hangup(message) and not self.gone:
            self.cut_by_shutdown()
        first = not self.gone
        self.gone = True
        if first and self.state not in (CallState.LEAVING, CallState.ENDED):
            log.debug("call %s: caller hung up while %s", self.channel_id, self.state)
            raise CallerGone()

    def unexpected(self, message: Message) -> None:
        """A message the current state has no use for: logged, and a request in it answered no."""
        if isinstance(message, HandoverAsked):
            message.refuse()
        if isinstance(message, PlaceAsked):
            self._keep_place_asked(message)
        if isinstance(message, TransferAsked):
            self._refuse_transfer(message)
        if isinstance(message, ConsultDialled):  # no talk to consult about (any more): 403
            self.unwatch(message.channel_id)
            log.info("call %s: consult call %s to %r refused: no live talk (%s)", self.channel_id,
                     message.channel_id, message.target, self.state)
            self._hang_up_stray_leg(message.channel_id, CONSULT_REFUSED)
        if isinstance(message, PhoneSwitchAsked):
            log.info("call %s: move to the phone asked by %s refused: no live talk (%s)", self.channel_id,
                     message.asked_by, self.state)
        if isinstance(message, CameraTurned):  # outside a talk: recorded, no bridge to change
            note_camera(self, message)
        if isinstance(message, HangingUp):
            self.meant_to_hang_up = True
        if isinstance(message, StasisStart) and message.channel.id != self.channel_id:
            self._hang_up_stray_leg(message.channel.id)
        if not isinstance(message, QueueTurn):  # news for a waiting caller; any later wait looks again
            log.debug("call %s: %s ignored while %s", self.channel_id, type(message).__name__, self.state)

    def _keep_place_asked(self, asked: PlaceAsked) -> None:
        """A video leg asking for the place in line: kept for the queue visit (it looks between
        steps: an announcement or a ring is not cut), refused when this call waits in no line."""
        if self.is_waiting and self._place_asked is None:
            self._place_asked = asked
        else:
            asked.refuse()

    def take_place_asked(self) -> PlaceAsked | None:
        """The video leg's request for the place in line, if one came (the visit gives it)."""
        asked, self._place_asked = self._place_asked, None
        if asked is not None and (asked.reply.done() or not self.is_waiting):
            asked.refuse()  # it gave up waiting, or this call is no longer in line
            return None
        return asked

    def _refuse_transfer(self, asked: TransferAsked) -> None:
        """A transfer asked while this call talks with nobody: refused, and the refusal recorded
        (the CLI waits for that row; a phone that sent a REFER hears 603)."""
        log.info("call %s: transfer to %r refused: no live talk (%s)", self.channel_id, asked.target,
                 self.state)
        self.hops.record(TransferNoted(asked.request, asked.asked_by, asked.target or "(none)", "refused",
                                       f"no live talk (the call is {self.state})", kind=asked.kind))
        if asked.refer_leg is not None:
            leg = asked.refer_leg

            async def decline() -> None:
                with contextlib.suppress(AriError):
                    await self.ctx.ari.transfer_progress(leg, TRANSFER_REFUSED)
            self._in_background(decline())

    def _hang_up_stray_leg(self, channel_id: str, reason: str = "normal") -> None:
        """An agent's leg answered a ring this call no longer waits for (placed before a restart,
        say): hung up, or it would keep its agent busy."""
        log.info("call %s: leg %s answered a ring nobody waits for: hung up", self.channel_id, channel_id)

        async def hang_up() -> None:
            with contextlib.suppress(AriError):
                await self.ctx.ari.hangup(channel_id, reason)
        self._in_background(hang_up())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """A request to Asterisk about another channel that this call need not wait for (kept
        until it is done)."""
        task = asyncio.get_running_loop().create_task(work)
        self._strays.add(task)
        task.add_done_callback(self._strays.discard)

    @property
    def is_up(self) -> bool:
        return not self.gone

    @property
    def ivr_path(self) -> str:
        """The menu keys this leg's caller pressed so far (its hop's ivr_path, written behind)."""
        return self.hops.path

    @property
    def customer(self) -> str:
        """A browser's own id, from its INVITE ("" for any other caller)."""
        return self.hops.customer

    @property
    def may_come_back(self) -> bool:
        """A customer's browser with an id of its own (the same page calling again finds its talk
        by it) whose page's Hang up was not pressed: its leg going is a drop."""
        return self.web and bool(self.hops.customer) and not self.meant_to_hang_up

    @property
    def is_talking(self) -> bool:
        return self.state is CallState.TALKING and not self.gone

    @property
    def is_waiting(self) -> bool:
        """In a queue's line (waiting or being rung): its place can go to its video leg."""
        return self.state in (CallState.WAITING, CallState.RINGING) and not self.gone

    # -- the funnel: every state change and every record of the call ----------------------------

    def move(self, new: CallState, *facts: Fact) -> None:
        """Change state (or stay, to record a step within it) and submit the change's records."""
        old = self.state
        if not allowed(old, new):
            log.error("call %s: %s -> %s is not a transition of a call (recorded anyway)",
                      self.channel_id, old, new)
        elif new is not old:
            log.debug("call %s: %s -> %s", self.channel_id, old, new)
        self.state = new
        if new is not CallState.ENTERED:
            self.placed.set()
        if self._place_asked is not None and not self.is_waiting:  # out of line: no place to give
            self._place_asked.refuse()
            self._place_asked = None
        for fact in facts:
            self.hops.record(fact)

    def note_facts(self, *facts: RecordingFact) -> None:
        """Record `facts` (a recording's start, pause, end) within the state the call is in."""
        self.move(self.state, *facts)

    def leave(self, reason: EndReason, *facts: Fact) -> None:
        """The contact is over for this leg, for `reason` (the first reason given stands)."""
        if self.end_reason is None:
            self.end_reason = reason
        self.move(CallState.LEAVING, *facts)

    def stay_for_survey(self, reason: EndReason, *facts: Fact) -> None:
        """The talk is over for `reason` (the contact's end reason, whatever comes next), and the
        caller stays for the queue's survey; a hangup now raises CallerGone as anywhere."""
        if self.end_reason is None:
            self.end_reason = reason
        self.move(CallState.SURVEY, *facts)

    def cut_by_shutdown(self) -> None:
        """Asterisk is shutting down and hangs up every channel: this call's end is a failure,
        talking or not (told by its own channel, or by the agent leg it talks to)."""
        self.cut = self.shut_down = True
        self._cause = CUT_BY_SHUTDOWN

    @property
    def cut_why(self) -> str:
        """Why Asterisk cut this call (a shutdown, its node lost): a talk's complete says it."""
        return self._cause[1] if self.shut_down and self._cause[1] else CUT_BY_SHUTDOWN[1]

    def reason_caller_left(self) -> EndReason:
        """A caller hanging up while talking ends a handled contact; anywhere before it is
        abandoned; a channel cut by a failure (outside a talk) failed."""
        if self.shut_down:
            return EndReason.FAILED
        if self.state in HANDLED:
            return EndReason.COMPLETED
        return EndReason.FAILED if self.cut else EndReason.ABANDONED

    # -- the life of the call --------------------------------------------------------------------

    async def run(self) -> None:
        """The whole life of the call; the hop is closed exactly once, whatever happens."""
        about_call(self._log_ids)  # this task's log records carry the call's case and hop
        try:
            await self._serve()
        except asyncio.CancelledError:
            # The daemon is stopping: the channel stays in Stasis and the hop open, and the next
            # daemon adopts both. Closing the hop here would record a cut that never happened.
            raise
        except CallerGone:
            self.leave(self.reason_caller_left())
        except Exception as exc:  # ARI refused, database gone for good, a bug: the call still ends
            log.error("call %s failed: %s", self.channel_id, exc, exc_info=not isinstance(exc, AriError))
            self.leave(EndReason.FAILED)
        if self.state is CallState.LEAVING:
            await self._end()
        await self._refuse_what_is_left()

    async def _serve(self) -> None:
        """Serve the call until it is LEAVING (or ENDED: refused before it had a hop)."""
        adopted = self.hop is not None
        if not adopted:
            if not await self._enter():
                return
        else:  # adopted after a restart
            await self._subscribe_adopted()
            if await self._resume():
                return
        route = self._route()
        self.priority = self._priority_of(route)
        self.in_hotline = self.in_hotline or route.hotline  # an adopted call's is its hop's
        if not adopted:  # an adopted channel kept its language in Asterisk
            await self._speak(self._language_of(route))
        if self.rejoins is not None:
            went_on = await take_the_talk(self, self.ctx, self.rejoins)
            if went_on is not None:
                await self._after_visit(went_on)
                return
        elif self.switch is not None:
            went_on = await continue_the_leg(self, self.ctx, self.switch)
            if went_on is not None:
                await self._after_visit(went_on)
                return
            route = self._route()  # the phone leg is gone: the video leg goes where it went
        hotline = route.hotline
        if hotline is None:
            await self._say_and_leave(self.ctx.not_in_service, EndReason.FAILED)
            return
        taking, last = hotline_taking_calls(self.ctx.directory.snapshot, hotline, datetime.now(UTC))
        if taking is None:
            await self._closed(last)
            return
        self.in_hotline = taking
        entry = entry_of(taking, self.channel.caller_num, self.channel_id)
        self._set_priority(entry.priority, "region route")
        await self._follow(entry.target)

    async def _enter(self) -> bool:
        """Open the hop (taking a line) and subscribe, both at once; False when the call was
        refused (busy, or a switch token that opens nothing) and has ended."""
        if self.web:
            await self._read_web_headers()
        elif self.dialled_out:
            self.switch_token = await read_phone_token(self.ctx.ari, self.channel_id)
        route = self._route()
        try:
            await asyncio.gather(self._open_hop(route), self._subscribe())
        except LinesBusy:
            await self._refuse_busy(route)
            return False
        except SwitchRefused as refused:
            log.warning("call %s: switch refused: token %s", self.channel_id, refused.state)
            await self._hangup_quietly("rejected")  # 403 before answer; no case, no hop
            self.move(CallState.ENDED)
            return False
        return True

    async def _read_web_headers(self) -> None:
        """A browser's customer id, and a switch leg's token, from its INVITE's headers."""
        switching = self.switch_token is not None
        headers = await read_web_headers(self.ctx.ari, self.channel_id, switch=switching)
        self.hops.customer = headers.customer
        if switching:
            self.switch_token = headers.token

    def _priority_of(self, route: Route) -> int:
        """Where the caller starts: its number's priority; a switch leg, the leg's it continues."""
        if self.switch is not None:
            return self.switch.priority or 0
        return route.number.priority if route.number is not None else 0

    def _set_priority(self, priority: int | None, by: str) -> None:
        """A more specific way in (a region route, a menu key) sets the caller's priority."""
        if priority is not None and priority != self.priority:
            log.info("call %s: priority %d -> %d by %s", self.channel_id, self.priority, priority, by)
            self.priority = priority

    def _language_of(self, route: Route) -> str | None:
        """The language the caller hears: a switch leg's is the leg's it continues (chosen by a
        menu key, maybe); any other's its number's, else its hotline's."""
        if self.switch is not None and self.switch.language:
            return self.switch.language
        if route.number is not None and route.number.language:
            return route.number.language
        return route.hotline.language if route.hotline is not None else None

    async def _speak(self, language: str | None, *facts: Fact) -> None:
        """Set the channel's language before any prompt plays (Asterisk then picks sounds/LANG and
        says numbers with that language's grammar), and record it on the hop. None: Asterisk's
        default stays."""
        if language is None:
            return
        try:
            await self.ctx.ari.set_channel_variable(self.channel_id, "CHANNEL(language)", language)
        except AriNotFound:
            await self.until_caller_gone()
        self.language = language
        log.info("call %s: language %s", self.channel_id, language)
        self.move(self.state, *(facts or (LanguageSet(language),)))

    async def choose_language(self, language: str, digit: str) -> None:
        """A menu key `language:LANG`: the channel's language from now on (engine.ivr.CallIO)."""
        await self._speak(language, KeyPressed(digit, language))

    def _chose(self, option: MenuOption) -> None:
        self._set_priority(option.priority, f"menu key {option.digit}")

    def _broke_out(self, queue: str, digit: str) -> None:
        """A key of the queue's breakout menu sets the priority as the same key in the menu does."""
        prov = self.ctx.directory.snapshot.prov
        menu = prov.menus.get(prov.queues[queue].breakout_menu or "") if queue in prov.queues else None
        option = next((o for o in menu.options if o.digit == digit), None) if menu else None
        if option is not None:
            self._chose(option)

    def _route(self) -> Route:
        snapshot = self.ctx.directory.snapshot
        if self.switch_token is not None:
            return route_of_hotline(snapshot, self.switch.hotline_id if self.switch else None)
        return route_of_number(snapshot, self.dialled, self.ctx.region)

    async def _follow(self, target: Target, overflowed: bool = False,
                      handoff: Handoff | None = None) -> None:
        """Follow the hotline's entry through menus, queues and overflows until the call leaves;
        `handoff`: what a transfer to one party does before the caller waits first in the line of
        the queue `target` names (an outside number dialled: engine.outside)."""
        prov = self.ctx.directory.snapshot.prov
        steps = 0
        while steps < MAX_ROUTE_STEPS:
            steps += 1
            if target.action == TargetAction.MENU:
                self.move(CallState.IN_MENU)
                target = await run_menu(self, prov.menus, target, self._pressed, self._chose)
            elif target.action == TargetAction.QUEUE and target.name in prov.queues:
                if handoff is not None and handoff.number is not None:
                    if await talk_outside(self, self.ctx, handoff.number, prov.queues[target.name].music):
                        return
                    handoff = Handoff()  # nobody answered: first in line
                outcome = await QueueVisit(self, self.ctx, prov.queues[target.name], handoff).run()
                handoff = None
                if isinstance(outcome, TalkOver | CallbackAsked):
                    return
                if isinstance(outcome, BrokeOut):
                    self._broke_out(target.name, outcome.digit)
                if isinstance(outcome, Transferred):  # a new route from the target, with its own steps
                    self.transferred, steps, overflowed = True, 0, False
                    prov, handoff = self.ctx.directory.snapshot.prov, outcome.handoff
                target, overflowed = outcome.target, overflowed or isinstance(outcome, Overflow)
            elif target.action == TargetAction.HOTLINE and target.name in prov.hotlines:
                self.in_hotline = prov.hotlines[target.name]  # its record from now on
                target = self.in_hotline.entry
            elif target.action == TargetAction.VIDEO and target.name in prov.queues:
                await self._send_video_link()  # then wait in the queue: the video leg takes the place
                target = Target(TargetAction.QUEUE, target.name)
            elif target.action == TargetAction.CALLBACK and target.name in prov.queues:
                if await self._ask_callback(target.name):
                    return
                break  # no number given (or none stored): goodbye
            else:
                break
        # hangup (and a bare `callback` stored before it named its queue)
        await self.answer()
        self.leave(EndReason.OVERFLOW if overflowed else EndReason.COMPLETED)

    async def _closed(self, hotline: Hotline) -> None:
        """Outside hours: the closed prompt, and with the closed action `callback:QUEUE` the
        caller is asked their number; the placer holds the request until the hotline opens (its
        expiry counts from the next opening)."""
        prompt = f"sound:{hotline.closed_prompt}" if hotline.closed_prompt else None
        target = hotline.closed
        if target.action != TargetAction.CALLBACK or target.name is None:
            await self._say_and_leave(prompt, EndReason.CLOSED)
            return
        await self.answer()
        self.move(CallState.PROMPTING)
        if prompt:
            await self.play(prompt)
        opening = next_opening(hotline, datetime.now(UTC))
        if not await self._ask_callback(target.name, expiry_from=opening):
            self.leave(EndReason.CLOSED)

    async def _ask_callback(self, queue: str, expiry_from: datetime | None = None) -> bool:
        """A menu key or closed action `callback:QUEUE`: the request stored in QUEUE's line
        (joining now) and the call leaving `callback`; False: nothing stored."""
        await self.hops.opened(self.ctx.store_open_patience_s)
        await self.answer()
        steps = await ask_callback_in(self, self.ctx, queue, hop=self.hop, caller_id=self.channel.caller_num,
                                      priority=self.priority, expiry_from=expiry_from)
        if steps is None:
            return False
        self.leave(EndReason.CALLBACK, *steps)
        return True

    async def _after_visit(self, outcome: VisitOutcome) -> None:
        """A visit not begun in _follow (a talk or a place taken over from the phone leg) ended:
        over, or on to where it led (a transfer, an overflow, a breakout key)."""
        if isinstance(outcome, Transferred):
            await self._follow_transfer(outcome)
        elif not isinstance(outcome, TalkOver | CallbackAsked):
            await self._follow(outcome.target, overflowed=isinstance(outcome, Overflow))

    async def _follow_transfer(self, transferred: Transferred) -> None:
        """A talk resumed or taken over (not begun in _follow) was transferred: on to its target."""
        self.transferred = True
        await self._follow(transferred.target, handoff=transferred.handoff)

    async def _send_video_link(self) -> None:
        """A menu's `video:QUEUE` key: the link to go on waiting by video, sent in the background
        as the queue's video key sends it."""
        await self.hops.opened(self.ctx.store_open_patience_s)
        if self.ctx.ask_video_link is not None and self.hop is not None:
            self.ctx.ask_video_link(self.hop.id)
        else:
            log.info("call %s: video key chosen, but no link can be sent", self.channel_id)

    async def _pressed(self, digit: str) -> None:
        self.move(self.state, KeyPressed(digit))

    async def _resume(self) -> bool:
        """A call adopted after a daemon restart picks up where its hop says it was: bridged with
        an agent (the talk goes on), or waiting in a queue (same place in line). False: it
        starts over (IVR prompts are cheap to replay)."""
        hop, snapshot = self.hop, self.ctx.directory.snapshot
        if hop is None or hop.queue_id is None:
            return False
        names = {ident: name for name, ident in snapshot.ids.get("queues", {}).items()}
        queue = snapshot.prov.queues.get(names.get(hop.queue_id, ""))
        if queue is None:
            return False
        self.answered = True
        # The hop's hotline (the dialled number's): where a transfer to another hotline sent the
        # caller before the restart is not kept, so its queues without a record of their own
        # follow the hop's hotline's.
        self.in_hotline = route_of_hotline(snapshot, hop.hotline_id).hotline
        visit = QueueVisit(self, self.ctx, queue)
        # An agent on the hop: talking (a transfer clears it until the next agent answers).
        if hop.answered_at is not None and hop.agent_id is not None:
            await self._resume_talk(visit, hop.agent_id, hop.answered_at.timestamp())
            return True
        if hop.queued_at is None:
            return False
        if await self._resume_unrecorded_talk(visit, hop.queued_at.timestamp()):
            return True
        outcome = await visit.resume_waiting(hop.queued_at.timestamp(), head=await self._joined_first(hop))
        if not isinstance(outcome, TalkOver | CallbackAsked):
            await self._follow(outcome.target, overflowed=isinstance(outcome, Overflow))
        return True

    async def _joined_first(self, hop: Hop) -> bool:
        """Whether its visit began first in line (after a transfer nobody answered); the database
        away: at its join time, as before."""
        try:
            return await self.ctx.contacts.joined_first_in_line(hop.id)
        except (*STORE_DOWN, TimeoutError) as exc:
            raise_if_cancelled()
            log.warning("call %s: its place first in line is not known (%s): at its join time",
                        self.channel_id, exc)
            return False

    async def _resume_talk(self, visit: QueueVisit, agent_id: int, answered_at: float) -> None:
        agents = {ident: name for name, ident in self.ctx.directory.snapshot.ids.get("agents", {}).items()}
        agent_leg = await self._agent_leg_in_bridge()
        ended_consult: tuple[Fact, ...] = ()
        if agent_leg is None and agent_id in agents:  # the customer out of the bridge: on hold?
            agent_leg = await self._off_hold(agents[agent_id])
            ended_consult = await self._consult_ended_by_restart()
        if agent_leg is not None and agent_id in agents:
            ended = await visit.resume_talk(agents[agent_id], agent_leg, answered_at, *ended_consult)
            if isinstance(ended, Transferred):
                await self._follow_transfer(ended)
        else:
            # One side left while nobody was watching: the talk is over for whoever is still in
            # the case's bridge too (left there, an agent's leg would keep its agent busy).
            await self._release_bridge()
            self.leave(EndReason.COMPLETED, *ended_consult)

    async def _consult_ended_by_restart(self) -> tuple[Fact, ...]:
        """The row ending an attended transfer the stopped daemon left under way (its `consulting`
        row has no row of its end): `cancelled`, the restart said as why. None to write when no
        consult was under way, or the database cannot say (logged)."""
        if self.hop is None:
            return ()
        try:
            consult = await self.ctx.contacts.open_consult(self.hop)
        except psycopg.Error as exc:
            log.warning("call %s: whether a consult was under way is unknown (%s)", self.channel_id, exc)
            return ()
        if consult is None:
            return ()
        log.info("call %s: the attended transfer to %s ended by the restart", self.channel_id, consult.target)
        return (TransferNoted(None, consult.asked_by, consult.target, "cancelled", CONSULT_ENDED_BY_RESTART,
                              kind="attended", from_queue_id=consult.from_queue_id,
                              from_agent_id=consult.from_agent_id),)

    async def _resume_unrecorded_talk(self, visit: QueueVisit, joined_at: float) -> bool:
        """The hop says waiting, yet the caller may be in the case's bridge with an agent: the
        daemon was killed after the bridge, before the answer was written. True: that talk was
        followed to its end. A leg in the bridge that is no agent's is let go (the caller waits on)."""
        leg_id = await self._agent_leg_in_bridge()
        if leg_id is None:
            return False
        try:
            leg = await self.ctx.ari.channel(leg_id)
        except AriNotFound:
            leg = None
        ended = await visit.resume_unrecorded_talk(leg, joined_at) if leg is not None else None
        if isinstance(ended, Transferred):
            await self._follow_transfer(ended)
        if ended is not None:
            return True
        await self._release_bridge()
        return False

    async def _release_bridge(self) -> None:
        with contextlib.suppress(AriError):
            bridge = await self.ctx.ari.bridge(self.bridge_id)
            for channel in bridge.channels:
                if channel != self.channel_id:
                    with contextlib.suppress(AriError):
                        await self.ctx.ari.hangup(channel)
            await self.ctx.ari.destroy_bridge(self.bridge_id)

    async def _off_hold(self, agent: str) -> str | None:
        """A daemon stopped during an attended transfer left the customer on hold, out of the
        case's bridge, where `agent` talks with the agent consulted: the consult is over (that leg
        is hung up) and the customer is back with `agent`. The same when it was stopped after the
        answer was written, before the customer joined the bridge. The agent's leg, or None."""
        found = self.ctx.directory.snapshot.prov.agents.get(agent)
        try:
            bridge = await self.ctx.ari.bridge(self.bridge_id)
        except AriError:
            return None
        if found is None or self.channel_id in bridge.channels:
            return None
        mine, others = None, []
        for channel_id in bridge.channels:
            with contextlib.suppress(AriError):
                name = (await self.ctx.ari.channel(channel_id)).name
                if mine is None and name.startswith(f"PJSIP/{found.endpoint}-"):
                    mine = channel_id
                else:
                    others.append(channel_id)
        if mine is None:
            return None
        for channel_id in others:
            with contextlib.suppress(AriError):
                await self.ctx.ari.hangup(channel_id)
        with contextlib.suppress(AriError):
            await self.ctx.ari.stop_moh(self.channel_id)
        try:
            await self.ctx.ari.add_to_bridge(self.bridge_id, [self.channel_id])
        except AriError:
            return None
        # Out of the bridge at the restart: on hold for a consult, or killed between the answer
        # written and the customer bridged (seen under load): either way the talk goes on.
        log.info("call %s: back in the case's bridge with %s after the restart", self.channel_id, agent)
        return mine

    async def _agent_leg_in_bridge(self) -> str | None:
        """The other channel of the case's bridge (or the SFU bridge its talk moved to), if the
        caller is still in it."""
        try:
            bridge = await self.ctx.ari.bridge(self.bridge_id)
        except AriNotFound:
            if self.case_id is None or self.video_bridge:
                return None
            self.video_bridge = True
            return await self._agent_leg_in_bridge()
        except AriError:
            return None
        others = [c for c in bridge.channels if c != self.channel_id]
        return others[0] if self.channel_id in bridge.channels and others else None

    # -- the hop ---------------------------------------------------------------------------------

    def _log_ids(self) -> CallIds:
        hop = self.hop
        return (hop.case_id, hop.id) if hop is not None else (None, None)

    async def _open_hop(self, route: Route) -> None:
        """The leg's hop: a switch leg's from its token, any other's opened taking a line. Only a
        line limit (busy before answer) or a token makes the call wait for it; otherwise it is
        opened behind the call."""
        dropped = self.ctx.find_dropped(self.hops.customer) if self.web and self.hops.customer else None
        if self.switch_token is not None:
            self.switch = await self.hops.use_switch_token(self.switch_token)
        elif dropped is not None and dropped.case_id is not None:
            self.rejoins = dropped  # the same page back after its leg dropped: the same case
            await self.hops.open_in_case(dropped.case_id, route)
        elif route.number is not None and route.number.lines is not None:
            await self.hops.open(route)
        else:
            self.hops.open_behind(route)

    async def _refuse_busy(self, route: Route) -> None:
        """All lines held: 486 Busy Here before answer, and the refusal recorded (supervisors count
        these to know when a number needs more lines)."""
        log.info("call %s: all lines of %s are held: busy", self.channel_id,
                 route.number.number if route.number else "?")
        await self._hangup_quietly("busy")
        self.move(CallState.ENDED, self.hops.refused_busy(route))

    async def _subscribe(self) -> None:
        # Without a subscription Asterisk stops sending the channel's events at StasisEnd, and
        # the hangup cause travels only in ChannelDestroyed, which comes after it. The session
        # subscribes the app to all channels on connect; this is for an Asterisk that refused.
        if not self.ctx.ari.all_channels:
            await self.ctx.ari.subscribe(self.ctx.app, f"channel:{self.channel_id}")

    async def _subscribe_adopted(self) -> None:
        """An adopted caller may hang up between the reconcile's channel list and here (Asterisk
        answers 422 'Event source does not exist'): their StasisEnd and ChannelDestroyed are on
        the way, and their leaving is recorded as any caller's hangup (an abandon while waiting),
        not as a failure of the call. Should no end come within ADOPTED_END_GRACE_S, the channel
        counts as vanished."""
        try:
            await self._subscribe()
        except AriError as exc:
            log.info("call %s: its channel went during adoption (%s): its end is on the way",
                     self.channel_id, exc)
            asyncio.get_running_loop().call_later(ADOPTED_END_GRACE_S, self._vanished_unless_gone)

    def _vanished_unless_gone(self) -> None:
        if not self.gone:
            self.inbox.put_nowait(ChannelVanished(self.channel_id))

    # -- the end ---------------------------------------------------------------------------------

    async def _end(self) -> None:
        """LEAVING -> ENDED: hang up unless the channel went already, wait for its destruction
        (its cause is the hop's), and close the hop, after everything the call recorded."""
        if not self.gone:
            await self._hangup_quietly()
        await self._await_destroyed()
        await self.hops.opened()
        if self.hop is None:
            self.hops.write_late(self._route())
        reason = self.end_reason or EndReason.FAILED
        self.move(CallState.ENDED, HopEnded(reason, *self._cause))
        log.info("call %s ended: hop %s %s (cause %s %s)", self.channel_id,
                 self.hop.id if self.hop else "(written late)", reason, self._cause[0], self._cause[1] or "")

    async def _await_destroyed(self) -> None:
        """Read the inbox until the channel's ChannelDestroyed (or a grace period passes)."""
        deadline = asyncio.get_running_loop().time() + self.ctx.hangup_grace_s
        while not self._destroyed:
            message = await self.next_event(deadline - asyncio.get_running_loop().time())
            if message is None:
                log.warning("call %s: no ChannelDestroyed within %.0f s", self.channel_id,
                            self.ctx.hangup_grace_s)
                return
            if not self._is_own_end(message):
                self.unexpected(message)

    async def _refuse_what_is_left(self) -> None:
        """A handover asked of this call while it ended gets its no now, not after a timeout."""
        while not self.inbox.empty() and (message := await self.next_event(0)) is not None:
            self.unexpected(message)

    # -- media, as the IVR and the queue use it (engine.ivr.CallIO, queueing.visit.VisitCall) ----

    def take_answer(self) -> bool:
        """Whether the caller still needs answering; from now on it counts as answered (whoever
        asked answers it: this task, or a job it started)."""
        needed = not self.answered and self.channel.state != "Up"
        self.answered = True
        return needed

    async def answer(self) -> None:
        """Answer once (an adopted call arrives already up)."""
        if self.take_answer():
            await self.ctx.ari.answer(self.channel_id)

    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None:
        """Play `media` to the caller (answering first), built-in prompts under their file in the
        caller's language; with stop_on_digit a key pressed stops it and is returned. CallerGone
        when the caller hangs up meanwhile."""
        try:
            await self.answer()
            playback_id = await self.ctx.ari.play(self.channel_id, localised(media, self.language))
        except AriNotFound:  # the caller hung up a moment ago; its events are on the way
            await self.until_caller_gone()
        while True:
            message = await self.next_event()
            if isinstance(message, PlaybackFinished) and message.playback_id == playback_id:
                return None
            if stop_on_digit and self.is_own_key(message):
                assert isinstance(message, ChannelDtmfReceived)
                await self._stop_playback(playback_id)
                return message.digit
            if message is not None:
                self.unexpected(message)

    async def _stop_playback(self, playback_id: str) -> None:
        """Stop a playback a key cut short. Asterisk refuses to stop some (HTTP 500 for `digits:`
        read back, say): it then plays to its end, and the key still counts."""
        try:
            await self.ctx.ari.stop_playback(playback_id)
        except AriNotFound:
            return
        except AriError as exc:
            log.debug("call %s: playback %s not stopped (%s): let it end", self.channel_id, playback_id, exc)
            while True:
                message = await self.next_event()
                if isinstance(message, PlaybackFinished) and message.playback_id == playback_id:
                    return
                if message is not None:
                    self.unexpected(message)

    async def until_caller_gone(self) -> NoReturn:
        """ARI says the caller's channel is gone (a request about it answered 404): its own event
        is on the way, behind what the inbox holds. Read on until it comes (CallerGone): the
        caller hung up, which is an abandon or a completed talk, not a failure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.hangup_grace_s
        while (message := await self.next_event(deadline - loop.time())) is not None:
            self.unexpected(message)
        raise AriNotFound(f"channel {self.channel_id} is gone, and no event said so", 404)

    async def digit(self, timeout: float) -> str | None:
        """The next key the caller presses within `timeout` seconds, or None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (message := await self.next_event(deadline - loop.time())) is not None:
            if self.is_own_key(message):
                assert isinstance(message, ChannelDtmfReceived)
                return message.digit
            self.unexpected(message)
        return None

    def is_own_key(self, message: Message | None) -> bool:
        return isinstance(message, ChannelDtmfReceived) and message.channel.id == self.channel_id

    async def _say_and_leave(self, media: str | None, reason: EndReason) -> None:
        await self.answer()
        if media:
            self.move(CallState.PROMPTING)
            await self.play(media)
        self.leave(reason)

    async def _hangup_quietly(self, reason: str = "normal") -> None:
        try:
            await self.ctx.ari.hangup(self.channel_id, reason)
        except AriError:
            pass

    # -- what the queue visit and the switch read of the call ------------------------------------

    @property
    def case_id(self) -> int | None:
        return self.hop.case_id if self.hop else None

    @property
    def bridge_id(self) -> str:
        """The case's bridge (a later hop of the case joins it); a call whose hop could not be
        written yet (database down) has one of its own, never a bridge shared with others."""
        if self.case_id is None:
            return f"case-channel-{self.channel_id}"
        return case_bridge_ids(self.case_id)[1 if self.video_bridge else 0]

    def watch(self, channel_id: str) -> None:
        """Route another channel's events (an agent leg this call placed) to this call's inbox."""
        self.ctx.watch(channel_id, self)

    def unwatch(self, channel_id: str) -> None:
        self.ctx.unwatch(channel_id)

    async def case_known(self) -> None:
        """Until the hop opened behind the call says whose case this is (and so which agent
        talked with the customer last), but never holding the caller long for it."""
        if self.ctx.continue_case_within_s:
            await self.hops.opened(CASE_PATIENCE_S)

    @property
    def preferred_agent(self) -> str | None:
        """The agent who last talked with this customer, when this call continues their case (or
        the agent of the phone leg a switch leg replaces); none for a call an agent transferred."""
        if self.transferred:
            return None
        if self.switch is not None:
            last = self.switch.agent_id
        else:
            last = self.hop.case_last_agent_id if self.hop is not None else None
        if last is None:
            return None
        names = {ident: name for name, ident in self.ctx.directory.snapshot.ids.get("agents", {}).items()}
        return names.get(last)
