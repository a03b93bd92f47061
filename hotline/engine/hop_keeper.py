"""A leg's hop and the records written on it: opened when the leg enters (taking a line of the
number, or refused busy), or, when the database was away then, sent through the write-behind
once the leg is over; and whatever the leg recorded before its hop existed, submitted behind it
in order.

The call decides what to record (its funnel, engine.call); this is where a fact meets its hop and
goes to the ordered write-behind. Opening a hop is a question (is a line free? which case does the
customer continue?), so it is asked at once and waited for, within a patience: a caller is never
kept waiting for a database that is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from hotline.asterisk.ari_events import Channel
from hotline.cancellation import raise_if_cancelled
from hotline.engine.context import CallContext
from hotline.engine.facts import KEYS_RECORDED_PER_LEG, Fact, KeyPressed, LanguageSet, Refused
from hotline.engine.leg import USER_BUSY, customer_key, new_hop
from hotline.engine.outcomes import EndReason
from hotline.engine.routing.route import Route
from hotline.errors import SwitchRefused
from hotline.store.db import STORE_DOWN
from hotline.store.hops import Hop, NewHop
from hotline.store.records import by_channel, late_hop_record
from hotline.store.switches import SwitchUse, TokenState

log = logging.getLogger(__name__)

# What a fact is recorded on when its hop was written late: `by_channel` then names the hop by
# the leg's channel instead of these ids.
LATE = Hop(id=0, case_id=0, seq=1, node="", channel_id="", channel_kind="", dialled="", dialled_e164=None,
           caller_num="", entered_at=datetime.fromtimestamp(0, UTC), ended_at=None, end_reason=None,
           hangup_cause=None)


class HopKeeper:
    def __init__(self, ctx: CallContext, channel: Channel, dialled: str, *, video: bool, customer: str,
                 hop: Hop | None = None) -> None:
        self.ctx = ctx
        self.channel = channel
        self.dialled = dialled
        self.video = video
        self.customer = customer  # a browser's own id: its customer key across calls
        self.hop = hop
        self._unwritten: list[Fact] = []  # recorded before the hop existed (database away or slow)
        self._opening: asyncio.Task[None] | None = None  # open_behind's
        self._late = False  # the hop went to the write-behind after the leg: records name its channel
        self.keys = 0  # keys the caller pressed that were recorded (or would have been, past the cap)
        self.path = ""  # the keys recorded on this leg, as its hop's ivr_path will have them

    @property
    def channel_id(self) -> str:
        return self.channel.id

    def record(self, fact: Fact) -> None:
        """Submit `fact` on its hop (the leg's own unless it names another), or keep it until the
        leg's hop is written."""
        if isinstance(fact, Refused):
            self.ctx.records.submit(fact.record())
            return
        if isinstance(fact, KeyPressed):
            if not self._key_within_cap():
                if fact.language is None:
                    return
                fact = LanguageSet(fact.language)  # the path is full; the language still counts
            else:
                self.path += fact.digit
        hop = getattr(fact, "on_hop", None) or self.hop
        if hop is None and self._late:
            self.ctx.records.submit(by_channel(fact.record(LATE), self.ctx.node, self.channel_id))
        elif hop is None:
            self._unwritten.append(fact)
        else:
            self.ctx.records.submit(fact.record(hop))

    def _key_within_cap(self) -> bool:
        """Count a key; False past KEYS_RECORDED_PER_LEG (said once: a flood is one line, not 2000)."""
        self.keys += 1
        if self.keys == KEYS_RECORDED_PER_LEG + 1:
            log.warning("call %s: %d keys recorded on its IVR path; later keys are not", self.channel_id,
                        KEYS_RECORDED_PER_LEG)
        return self.keys <= KEYS_RECORDED_PER_LEG

    async def open(self, route: Route) -> Hop | None:
        """Open the case and hop, taking a line of the number (LinesBusy when none is free); None
        when the database does not answer in time: the call is served, its hop written later."""
        store = self.ctx.store
        if not store.up:
            log.info("call %s: database known away: serving the call, its hop goes through the "
                     "write-behind when it ends", self.channel_id)
            return None
        try:
            # One attempt, not a retry loop: a database that refuses at once (a failover, a
            # connection limit) is away now, and the next callers must not wait out this one's
            # patience before they learn it.
            async with asyncio.timeout(self.ctx.store_open_patience_s):
                self.hop = await self._write(route)
        except (*STORE_DOWN, TimeoutError) as exc:
            raise_if_cancelled()
            reason = str(exc) or f"no answer within {self.ctx.store_open_patience_s:g} s"
            log.warning("call %s: database unavailable (%s); serving the call, its hop goes through the "
                        "write-behind when it ends", self.channel_id, reason)
            store.went_down(reason)
            return None
        store.came_back()
        return self.hop

    def open_behind(self, route: Route) -> None:
        """Open the hop without holding the call up (a number with no line limit: nothing to
        refuse before answer): what the call records meanwhile is kept and submitted behind the
        hop, in order, the moment it exists. A slow database then delays records, not callers."""
        self._opening = asyncio.create_task(self._open_then_submit(route), name=f"hop-{self.channel_id}")

    async def _open_then_submit(self, route: Route) -> None:
        try:
            hop = await self.open(route)
        except Exception:  # a bug or a refusal, not an outage: the hop is written when the call ends
            log.exception("call %s: its hop was not opened", self.channel_id)
            return
        if hop is not None:  # no await since the hop was set: nothing was submitted before these
            self._submit_unwritten()

    async def opened(self, within_s: float | None = None) -> None:
        """Until the hop being opened behind the call is open (or given up), at most `within_s`."""
        if self._opening is None or self._opening.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._opening), within_s)

    def _submit_unwritten(self) -> None:
        unwritten, self._unwritten = self._unwritten, []
        for fact in unwritten:
            self.record(fact)

    async def use_switch_token(self, token: str) -> SwitchUse:
        """The video leg's hop, in the case its token is for; SwitchRefused for a bad token. No
        database, no switch: the token cannot be checked, and an unchecked one opens nothing."""
        if self.ctx.switches is None or not token:
            raise SwitchRefused(TokenState.UNKNOWN)
        if not self.ctx.store.up:
            log.error("call %s: switch token not checked, the database is known away", self.channel_id)
            raise SwitchRefused(TokenState.UNKNOWN)
        try:
            use = await self.ctx.switches.use(token, self.new_hop(Route()))
        except STORE_DOWN as exc:
            raise_if_cancelled()
            log.error("call %s: switch token not checked, the database is unavailable: %s",
                      self.channel_id, exc)
            raise SwitchRefused(TokenState.UNKNOWN) from exc
        log.info("call %s: video leg of case %s (hop %s) replacing hop %s", self.channel_id,
                 use.hop.case_id, use.hop.id, use.from_hop_id)
        self.hop = use.hop
        return use

    async def open_in_case(self, case_id: int, route: Route) -> None:
        """The leg's hop as the next of live case `case_id` (a customer's page come back)."""
        self.hop = await self.ctx.contacts.open_hop_in_case(case_id, self.new_hop(route))
        log.info("call %s: back into case %s as hop %s", self.channel_id, case_id, self.hop.id)

    def refused_busy(self, route: Route) -> Refused:
        """All lines held: the refusal, with the case and ended hop it records."""
        return Refused(self.new_hop(route), self._customer_key(), EndReason.BUSY, *USER_BUSY)

    def write_late(self, route: Route) -> None:
        """The leg is over and its hop was never opened (the database was away, or too slow for the
        caller's patience): the hop goes to the write-behind now, followed by what the leg recorded
        and whatever it records next, each naming the hop by its channel. Like every record, they
        wait out an outage there (spooled past its patience or its memory bound, written by the
        next daemon after a restart), and the call itself is let go at once. The hop starts a new
        case (which case the customer continues is the database's to say) and takes no line (it
        held none)."""
        self.ctx.records.submit(late_hop_record(self.new_hop(route), self._customer_key()))
        self._late = True
        self._submit_unwritten()

    def new_hop(self, route: Route) -> NewHop:
        return new_hop(self.channel, self.dialled, node=self.ctx.node, region=self.ctx.region,
                       video=self.video, number_id=route.number_id, hotline_id=route.hotline_id)

    def _customer_key(self) -> str:
        return customer_key(self.channel, self.ctx.region, self.customer)

    async def _write(self, route: Route) -> Hop:
        return await self.ctx.contacts.open_case_with_hop(
            self.new_hop(route), self._customer_key(),
            line_limit=route.number.lines if route.number else None,
            continue_within_s=self.ctx.continue_case_within_s)
