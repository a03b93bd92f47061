"""Stasis entry: one task per call, ARI events routed to each call's inbox; reconcile after every
(re)connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from hotline.asterisk.ari_events import (
    AriEvent,
    Channel,
    ChannelDestroyed,
    ChannelEvent,
    ChannelTransfer,
    ChannelUserevent,
    PlaybackEvent,
    StasisStart,
)
from hotline.engine.call import InboundCall
from hotline.engine.callback_placer import CALLBACK_LEG
from hotline.engine.callback_talk import AdoptedTalk, found_talks
from hotline.engine.conference import (
    CONFERENCE_LEG,
    ConferenceLeg,
    InviteRinging,
    InviteRings,
    invite_ringing,
)
from hotline.engine.context import CallContext, Inbox
from hotline.engine.customer_view import CustomerView, view_of
from hotline.engine.live_hub import RingNews
from hotline.engine.messages import CameraTurned, ChannelVanished, ConsultDialled, HangingUp
from hotline.engine.node_loss import lost_end
from hotline.engine.outside import OUTSIDE_LEG
from hotline.engine.phone_switch import PhoneRinging, phone_switch_asked
from hotline.engine.queueing.consult import CONSULT_BRIDGE
from hotline.engine.recording import close_left_open, recording_asked
from hotline.engine.rejoin import AwaitingRejoin, read_note
from hotline.engine.rejoin import adoption as rejoin_adoption
from hotline.engine.stasis_entry import StasisEntry, parse_entry
from hotline.engine.supervision import (
    SUPERVISION_BRIDGE,
    SUPERVISOR_LEG,
    LiveTalk,
    SuperviseAsked,
    Supervision,
    Talk,
    refusal,
    supervise_asked,
)
from hotline.engine.supervision_phone import (
    NO_TALK,
    Dialled,
    PhoneRefusal,
    caller_of,
    phone_refusal,
    target_of,
)
from hotline.engine.transfer import CONSULT_REFUSED, TRANSFER_REFUSED, transfer_asked, transfer_referred
from hotline.engine.unwatched_end import unwatched_end
from hotline.errors import AriError, AriNotFound
from hotline.media import AGENTS_CONTEXT
from hotline.provision.model import Agent
from hotline.store.hops import Hop
from hotline.store.supervisions import Supervisions

log = logging.getLogger(__name__)

AGENT_LEG = "-agent-"  # in the ids of the channels a call places to agents
# Queue events that end a visit: written already for a hop closed unwatched, not written again.
VISIT_ENDS = frozenset({"complete", "abandon"})
ADOPTION_STEP_S = 1.0  # how long reconcile waits for an adopted call to be back in line


class Router:
    """Owns every call task: started here, stored here, cancelled and awaited in close()."""

    def __init__(self, ctx: CallContext, supervisions: Supervisions | None = None) -> None:
        self.ctx = ctx
        self.supervision_store = supervisions  # None: supervision requests are not taken
        self.supervisions: dict[str, Supervision] = {}  # by the supervisor's leg
        self.inboxes: dict[str, Inbox] = {}  # channel id -> the inbox its events go to
        self.calls: dict[str, InboundCall] = {}  # the calls' own channels
        self.conference: dict[str, ConferenceLeg] = {}  # the legs of parties brought into a case
        self._legs: dict[str, set[str]] = {}  # a call's channel -> the agent legs it watches
        # Talks waiting for a dropped customer's page, taken over after a restart (engine.rejoin).
        self.rejoin_waits: dict[str, AwaitingRejoin] = {}
        self.invite_rings = InviteRings(ctx.hub)  # conference invitations ringing: their pops
        self._tasks: set[asyncio.Task[None]] = set()
        # Channels whose task ended during a sweep for open hops nobody owns (a reconcile, a node
        # given up): such a task closed its own hop, the close maybe still in the write-behind.
        self._sweeps = 0
        self._ended_in_sweep: set[str] = set()
        # `hotline node drain`: this node takes no new contact (503: Kamailio tries the next node);
        # the legs of its live calls (a switch to video, a consult) are still taken.
        self.draining = False
        # Adoption puts talks back before waiting callers (an agent talking is busy, not free to
        # ring); with several nodes, every node's talks (the daemon's `talks_first` waits for
        # the other routers' `talks_adopted`).
        self.talks_adopted = asyncio.Event()
        self.talks_first: Callable[[], Awaitable[None]] = _nothing

    async def on_event(self, event: AriEvent) -> None:
        """Called by the ARI read loop: must not await ARI (hand the event to the call's task)."""
        log.debug("ARI event %s", event)
        if isinstance(event, ChannelDestroyed):
            self.invite_rings.ended(event)  # an invitation never answered
        if isinstance(event, StasisStart):
            watched = self.inboxes.get(event.channel.id)
            if watched is None or isinstance(watched, PhoneRinging):
                if watched is not None:  # the phone a video talk dialled answered: its call starts
                    watched.post(event)
                self._on_stasis_start(event)
                return
        inbox = self.inboxes.get(_channel_id_of(event) or "")
        if isinstance(event, ChannelUserevent):
            self._on_user_event(event, inbox)
        elif isinstance(event, ChannelTransfer):
            self._on_refer(event, self.inboxes.get(event.source_channel_id))
        elif inbox is not None:
            inbox.post(event)  # an agent leg's StasisStart too: it answered

    def _on_user_event(self, event: ChannelUserevent, inbox: Inbox | None) -> None:
        """A request about a call (a transfer the CLI asks) goes to the call's inbox as a message;
        a supervision is the router's own (it reads the talk, it does not change it)."""
        supervise = supervise_asked(event)
        if supervise is not None:
            self._supervise(supervise, event.channel.id)
            return
        ringing = invite_ringing(event)
        if ringing is not None:
            self._invite_ringing(event.channel.id, ringing)
            return
        asked = transfer_asked(event) or phone_switch_asked(event) or recording_asked(event)
        if asked is None or inbox is None:
            log.info("user event %r about %s: %s", event.eventname, event.channel.id,
                     "not one of ours" if asked is None else "no call of this daemon has that channel")
            return
        inbox.post(asked)

    def _on_refer(self, event: ChannelTransfer, inbox: Inbox | None) -> None:
        """An agent's phone sent REFER on its leg: the call that leg talks for takes it (the
        leg's own inbox is its call's). Asterisk's echo of a progress the call reported is news to
        nobody."""
        asked = transfer_referred(event)
        if asked is None:
            log.debug("REFER on %s: %s reported", event.source_channel_id, event.state)
        elif inbox is None:
            log.info("REFER on %s, which no talk of this daemon holds: declined", event.source_channel_id)
            self._own(self._decline(event.source_channel_id), f"refer-{event.source_channel_id}", "")
        else:
            inbox.post(asked)

    def _invite_ringing(self, channel_id: str, ringing: InviteRinging) -> None:
        """An invitation into a case's talk rings: the invited agent's page pops it, with the
        customer of the talk this daemon runs (another daemon's talk: that daemon pops it)."""
        call = next((c for c in self.calls.values() if c.case_id == ringing.case_id and c.is_talking), None)
        if call is None or channel_id in self.conference:  # not ours, or answered already
            return
        state = self.ctx.queues.agents.get(self._agent_name(call.talking_with or ""))
        self.invite_rings.ringing(RingNews(
            ringing.agent, channel_id, ringing.case_id, call.hop.id if call.hop else None,
            (state.queue if state else None) or "", call.channel.caller_num, call.channel.caller_name,
            call.talk_since or time.time(), call.ivr_path, kind="conference", passed_by=ringing.passed_by))
        if not self.ctx.ari.all_channels:  # its end, should it never answer
            self._own(self._follow_invitation(channel_id), f"invite-{channel_id}", "")

    def _agent_name(self, endpoint: str) -> str:
        agents = self.ctx.directory.snapshot.prov.agents.values()
        return next((a.name for a in agents if a.endpoint == endpoint), endpoint)

    async def _follow_invitation(self, channel_id: str) -> None:
        try:
            await self.ctx.ari.subscribe(self.ctx.app, f"channel:{channel_id}")
        except AriError:  # gone before it could be followed
            self.invite_rings.gone(channel_id, "ended")

    def _supervise(self, asked: SuperviseAsked, channel_id: str) -> None:
        """Check a supervision request against the talk this daemon runs: refused (a row that says
        why), or a Supervision task that rings the supervisor."""
        store = self.supervision_store
        if store is None:
            log.info("supervision of case %s asked, but this daemon has no store for it", asked.case_id)
            return
        talk = self._talk_of(self.calls.get(channel_id))
        prov = self.ctx.directory.snapshot.prov
        agent = prov.agents.get(asked.supervisor)
        in_a_talk = agent is not None and self.call_of_agent(agent.endpoint) is not None
        why = refusal(asked, talk, prov, self.ctx.queues.agents.get(asked.supervisor),
                      {s.supervisor for s in self.supervisions.values()}, in_a_talk, self.ctx.queues.clock())
        if why is not None or talk is None:
            log.info("supervision of case %s by %s refused: %s", asked.case_id, asked.supervisor, why)
            supervision = Supervision(self.ctx, store, asked, talk or Talk(asked.case_id, None, "", ""))
            self._own(self._refuse_supervision(store, supervision, why or ""), f"refuse-{asked.request}", "")
            return
        supervision = Supervision(self.ctx, store, asked, talk)
        self.supervisions[supervision.channel_id] = supervision
        self._own(supervision.run(), f"supervision-{supervision.channel_id}", supervision.channel_id)

    @staticmethod
    async def _refuse_supervision(store: Supervisions, supervision: Supervision, why: str) -> None:
        await supervision.write(store.refused(supervision.row_ids(), why))

    @staticmethod
    def _talk_of(call: InboundCall | None) -> Talk | None:
        if call is None or not call.is_talking or call.case_id is None:
            return None
        if call.talking_with is None or call.talk_leg is None:
            return None
        return Talk(call.case_id, call.hop.id if call.hop else None, call.talking_with, call.talk_leg)

    def live_talks(self) -> list[LiveTalk]:
        """The talks with an agent this daemon runs now, longest first: what a supervisor's page
        lists (the ones a supervision request to this daemon can find)."""
        names = {a.endpoint: a.name for a in self.ctx.directory.snapshot.prov.agents.values()}
        talks = []
        for call in self.calls.values():
            talk = self._talk_of(call)
            if talk is None or call.talk_since is None:
                continue
            agent = names.get(talk.agent_endpoint, talk.agent_endpoint)
            state = self.ctx.queues.agents.get(agent)
            talks.append(LiveTalk(talk.case_id, (state.queue if state else None) or "", agent,
                                  call.channel.caller_num, call.talk_since))
        return sorted(talks, key=lambda t: t.since)

    def watch(self, channel_id: str, inbox: Inbox) -> None:
        """Another channel's events (an agent leg a call placed) go to that call's inbox."""
        self.inboxes[channel_id] = inbox
        self._legs.setdefault(inbox.channel_id, set()).add(channel_id)

    def unwatch(self, channel_id: str) -> None:
        inbox = self.inboxes.get(channel_id)
        if inbox is not None and inbox.channel_id != channel_id:
            del self.inboxes[channel_id]
            self._legs.get(inbox.channel_id, set()).discard(channel_id)

    def _on_stasis_start(self, event: StasisStart) -> None:
        entry = parse_entry(event.args, event.channel.context)
        if entry is None and (AGENT_LEG in event.channel.id or OUTSIDE_LEG in event.channel.id
                              or SUPERVISOR_LEG in event.channel.id
                              or event.channel.id.startswith(CALLBACK_LEG)):
            self._hang_up_unclaimed_leg(event.channel)
            return
        if entry is None:
            log.warning("StasisStart for %s with unknown arguments %r: ignored", event.channel.id, event.args)
            return
        if entry.kind == "conference":
            self._start_conference_leg(event.channel, entry)
            return
        if entry.kind == "consult":
            self._consult_dialled(event.channel, entry)
            return
        if entry.kind == "supervise":
            self._supervise_dialled(event.channel, entry)
            return
        if self.draining and entry.kind not in ("switch", "phone"):
            log.info("call %s refused: node %s is draining", event.channel.id, self.ctx.node)
            channel_id = event.channel.id
            self._own(self._refuse_new_call(channel_id), f"draining-{channel_id}", channel_id)
            return
        log.info("call %s entered: %s %s from %r%s", event.channel.id, entry.kind, entry.dialled,
                 event.channel.caller_num, " with video" if entry.video else "")
        # A switch leg from anywhere but the web context brings no token: refused (403). A phone
        # leg the daemon dialled brings its token in a channel variable.
        self._start(InboundCall(self.ctx, event.channel, dialled=entry.dialled, video=entry.video,
                                web=entry.web, switch_token="" if entry.kind in ("switch", "phone") else None,
                                dialled_out=entry.kind == "phone"))

    def _start_conference_leg(self, channel: Channel, entry: StasisEntry) -> None:
        if not entry.dialled.isdigit():
            return
        self.invite_rings.answered(channel.id)
        leg = ConferenceLeg(self.ctx, channel, int(entry.dialled), entry.agent, entry.invited_by)
        self.conference[leg.channel_id] = self.inboxes[leg.channel_id] = leg
        self._own(leg.run(), f"conference-{leg.channel_id}", leg.channel_id)

    def _consult_dialled(self, channel: Channel, entry: StasisEntry) -> None:
        """An agent's own phone dialled a colleague: the consult of the talk that agent is in
        (that call then owns the leg's events), or refused 403 when they talk in none here."""
        call = self.call_of_agent(entry.by) if channel.context == AGENTS_CONTEXT else None
        if call is None:
            log.info("consult call %s from %r to %r: no live talk of that agent here: refused",
                     channel.id, entry.by, entry.dialled)
            self._own(self._refuse_leg(channel.id), f"consult-{channel.id}", "")
            return
        self.watch(channel.id, call)
        call.post(ConsultDialled(channel.id, entry.dialled))

    def _supervise_dialled(self, channel: Channel, entry: StasisEntry) -> None:
        """A supervisor's phone dialled a feature code and an agent: their call, unanswered yet,
        becomes their leg in that agent's talk, or is refused with a SIP answer that says why."""
        dialled = Dialled(entry.mode, entry.dialled, entry.by, channel.context == AGENTS_CONTEXT)
        prov = self.ctx.directory.snapshot.prov
        caller, target = caller_of(prov, dialled), target_of(prov, dialled)
        talk = self._talk_of(self.call_of_agent(target.endpoint) if target is not None else None)
        why = self._phone_refusal(dialled, caller, target, talk)
        asked = SuperviseAsked(talk.case_id if talk else 0, dialled.mode, caller.name if caller else "",
                               f"phone:{caller.name if caller else dialled.by}", uuid.uuid4().hex)
        if why is not None or talk is None or self.supervision_store is None:
            why = why or PhoneRefusal(NO_TALK, "this daemon keeps no supervisions")
            log.info("%s of %r dialled from %r (%s) refused (%s): %s", dialled.mode or "supervision",
                     dialled.target, dialled.by, channel.id, why.reason, why.why)
            self._own(self._refuse_dialled(channel.id, why, asked, talk if caller else None),
                      f"supervise-refused-{channel.id}", "")
            return
        log.info("case %s: %s dialled to %s the talk of %s (%s)", talk.case_id, asked.supervisor,
                 dialled.mode, target.name if target else dialled.target, channel.id)
        supervision = Supervision(self.ctx, self.supervision_store, asked, talk, dialled_in=channel.id)
        # Its inbox at once: the phone may hang up before the task first runs.
        self.supervisions[channel.id] = self.inboxes[channel.id] = supervision
        self._own(supervision.run(), f"supervision-{channel.id}", channel.id)

    def _phone_refusal(self, dialled: Dialled, caller: Agent | None, target: Agent | None,
                       talk: Talk | None) -> PhoneRefusal | None:
        state = self.ctx.queues.agents.get(caller.name) if caller is not None else None
        in_a_talk = caller is not None and self.call_of_agent(caller.endpoint) is not None
        return phone_refusal(dialled, caller, target, talk, state,
                             {s.supervisor for s in self.supervisions.values()}, in_a_talk,
                             self.ctx.queues.clock())

    async def _refuse_dialled(self, channel_id: str, why: PhoneRefusal, asked: SuperviseAsked,
                              talk: Talk | None) -> None:
        """The SIP answer first (the phone waits on it), then a row when there is a talk to tie it
        to (and an agent who asked)."""
        with contextlib.suppress(AriError):
            await self.ctx.ari.hangup(channel_id, why.reason)
        store = self.supervision_store
        if talk is not None and store is not None:
            await self._refuse_supervision(store, Supervision(self.ctx, store, asked, talk), why.why)

    def call_of_agent(self, endpoint: str) -> InboundCall | None:
        """The call whose live talk is with the agent of this endpoint."""
        return next((c for c in self.calls.values() if c.is_talking and c.talking_with == endpoint), None)

    async def _refuse_leg(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.ari.hangup(channel_id, CONSULT_REFUSED)

    async def _refuse_new_call(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.ari.hangup(channel_id, "congestion")  # 503 Service Unavailable

    async def _decline(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctx.ari.transfer_progress(channel_id, TRANSFER_REFUSED)

    def conference_legs(self, case_id: int) -> list[str]:
        """The legs of the parties brought into case `case_id`'s talk, its supervisors' too: asked
        for only as the talk ends, to release them (so its supervisions learn that it ended)."""
        supervising = [sup for sup in self.supervisions.values() if sup.case_id == case_id]
        for sup in supervising:
            sup.talk_ended()
        return ([c for c, leg in self.conference.items() if leg.case_id == case_id]
                + [sup.channel_id for sup in supervising])

    def call_of_hop(self, hop_id: int) -> InboundCall | None:
        """The live call whose own leg is hop `hop_id` (a switch looks up the leg it replaces)."""
        return next((call for call in self.calls.values() if call.hop is not None and call.hop.id == hop_id),
                    None)

    def camera_turned(self, customer: str, video: bool) -> bool:
        """The customer page of browser `customer` turned its camera on or off: told to that
        customer's live web call. False: they have none here."""
        call = self._web_call_of(customer)
        if call is None:
            return False
        call.post(CameraTurned(video))
        return True

    def hanging_up(self, customer: str) -> bool:
        """The customer page of browser `customer` is hanging up with its button: the leg's end
        that follows is no drop. False: they have no live call here."""
        call = self._web_call_of(customer)
        if call is None:
            return False
        call.post(HangingUp())
        return True

    def customer_view(self, customer: str) -> CustomerView | None:
        """What browser `customer`'s own page may see of its live call here (None: it has none)."""
        call = self._web_call_of(customer)
        if call is None:
            return None
        return view_of(call.state, call.channel_id, call.talking_with, call.hop.id if call.hop else None,
                       call.case_id, self.ctx.queues, self.ctx.directory.snapshot.prov.agents.values())

    def _web_call_of(self, customer: str) -> InboundCall | None:
        return next((c for c in self.calls.values()
                     if c.web and c.is_up and c.hops.customer == customer), None)

    def dropped_call_of(self, customer: str) -> InboundCall | AwaitingRejoin | None:
        """Browser `customer`'s call whose leg dropped and whose agent waits for them to come back."""
        return next((c for c in self._may_wait() if c.awaiting_rejoin and c.customer == customer), None)

    def dropped_for_agent(self, endpoint: str) -> bool:
        """Whether the agent with this endpoint waits in a talk for a dropped customer's page."""
        return any(c.awaiting_rejoin == endpoint for c in self._may_wait())

    def _may_wait(self) -> list[InboundCall | AwaitingRejoin]:
        """The calls whose talk may wait for a dropped page: live ones, and waits taken over."""
        return [*self.calls.values(), *self.rejoin_waits.values()]

    def _start(self, call: InboundCall) -> None:
        self.calls[call.channel_id] = self.inboxes[call.channel_id] = call
        self._own(call.run(), f"call-{call.channel_id}", call.channel_id)

    def _own(self, work: Coroutine[Any, Any, None], name: str, channel_id: str) -> None:
        task = asyncio.create_task(self._run(work, channel_id), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Coroutine[Any, Any, None], channel_id: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s crashed", channel_id)
        finally:
            self._forget(channel_id)

    def _forget(self, channel_id: str) -> None:
        for leg in self._legs.pop(channel_id, set()):
            if self.inboxes.get(leg) is not None and self.inboxes[leg].channel_id == channel_id:
                del self.inboxes[leg]
        self.inboxes.pop(channel_id, None)
        self.calls.pop(channel_id, None)
        if self._sweeps:
            self._ended_in_sweep.add(channel_id)
        self.conference.pop(channel_id, None)
        self.supervisions.pop(channel_id, None)
        self.rejoin_waits.pop(channel_id, None)

    async def reconcile(self) -> None:
        """After a (re)connect: adopt channels still in Stasis, close hops whose channels are gone."""
        with self._sweep():
            await self._reconcile()

    async def _reconcile(self) -> None:
        self.talks_adopted.clear()
        channels = await self.ctx.ari.channels()
        alive = {c.id for c in channels}
        in_stasis = {c.id for c in channels if _in_stasis_of(c, self.ctx.app)}
        for channel_id, inbox in list(self.inboxes.items()):
            if channel_id not in alive:
                inbox.post(ChannelVanished(channel_id))
        unknown = in_stasis - self.inboxes.keys()
        # An agent phone's consult call (agents' context) is a leg too, never a customer to adopt.
        consult_calls = {c.id for c in channels if c.context == AGENTS_CONTEXT}
        legs = {c for c in unknown
                if AGENT_LEG in c or CONFERENCE_LEG in c or OUTSIDE_LEG in c or c.startswith(CALLBACK_LEG)
                or SUPERVISOR_LEG in c or c in consult_calls}
        await self._adopt_in_line_order(unknown - legs)
        talking = await self._adopt_callback_talks(legs)
        waiting = await self._adopt_rejoin_waits(legs - talking, alive)
        await self._hang_up_orphan_legs(legs - talking - waiting)
        stale = await self._close_unowned_hops()
        await self._close_unowned_supervisions()
        emptied = await self._destroy_empty_case_bridges()
        log.info("reconciled: %d call(s) live, %d adopted, %d stale hop(s) closed, %d empty bridge(s) "
                 "destroyed", len(self.calls), len(in_stasis), stale, emptied)

    @contextlib.contextmanager
    def _sweep(self) -> Iterator[None]:
        self._sweeps += 1
        try:
            yield
        finally:
            self._sweeps -= 1
            if not self._sweeps:
                self._ended_in_sweep.clear()

    async def _unowned_open_hops(self) -> list[Hop]:
        """This node's open hops that no task of this daemon runs, nor ran during the sweep: a
        task that ended meanwhile (told its channel is gone, or finding its talk not to adopt)
        closed its own hop, maybe still on its way through the write-behind; closing it again
        would write its visit's end twice."""
        hops = await self.ctx.contacts.open_hops(self.ctx.node)
        return [hop for hop in hops if hop.channel_id not in self.calls
                and hop.channel_id not in self.inboxes and hop.channel_id not in self._ended_in_sweep]

    async def _close_unowned_hops(self) -> int:
        """Open hops of this node that no call of this daemon runs (nor a callback it places)
        once adoption is done: their channels ended while no daemon watched, or between the
        channel list and their adoption (listed alive, gone when fetched: no event of theirs will
        ever reach a call). Closed
        through the write-behind, after whatever a call recorded before, so a call's own close
        still pending there wins (a second close changes nothing)."""
        stale = await self._unowned_open_hops()
        started, now = await self._asterisk_started(), datetime.now(UTC)
        for hop in stale:
            steps, end = unwatched_end(hop, asterisk_started=started, at=now)
            if steps and await self.ctx.contacts.last_queue_event(hop.id) in VISIT_ENDS:
                steps = []  # the stopped daemon wrote the visit's end, not the hop's close: once is enough
            log.info("hop %s (%s) closed %s: %s", hop.id, hop.channel_id, end.reason, end.cause_text)
            for step in steps:
                self.ctx.records.submit(step.record(hop))
            self.ctx.records.submit(end.record(hop))
            await close_left_open(self.ctx, hop)  # a recorded talk's row, and Asterisk's recorder
        return len(stale)

    async def give_up(self, why: str) -> None:
        """The node is lost (hotline.engine.node_loss): every call on it ends with `why` as its
        cause, as for channels found gone at a reconcile, and so do the hops no call owns."""
        with self._sweep():
            await self._give_up(why)

    async def _give_up(self, why: str) -> None:
        told = len(self.inboxes)
        # the calls' own channels first: a talk then ends as its caller's, not as its agent's leg
        for channel_id in sorted(self.inboxes, key=lambda channel: channel not in self.calls):
            self.inboxes[channel_id].post(ChannelVanished(channel_id, why))
        stale = await self._unowned_open_hops()
        at = datetime.now(UTC)
        for hop in stale:
            steps, end = lost_end(hop, why, at)
            if steps and await self.ctx.contacts.last_queue_event(hop.id) in VISIT_ENDS:
                steps = []
            for step in steps:
                self.ctx.records.submit(step.record(hop))
            self.ctx.records.submit(end.record(hop))
            await close_left_open(self.ctx, hop, why)
        log.warning("%s: %d call(s) told to end, %d hop(s) no call owned closed", why, told, len(stale))

    async def _close_unowned_supervisions(self) -> None:
        """Supervisions a stopped daemon ran: their legs were hung up with the orphans (a daemon
        does not take over a supervision), so their rows end."""
        if self.supervision_store is None:
            return
        running = [s.asked.request for s in self.supervisions.values()]
        try:
            closed = await self.supervision_store.close_unowned(self.ctx.node, running)
        except Exception as exc:  # noqa: BLE001 - the database away: the next reconcile tries again
            log.warning("open supervisions not closed: %s", exc)
            return
        if closed:
            log.info("%d supervision(s) of a stopped daemon ended", closed)

    async def _asterisk_started(self) -> datetime | None:
        """When Asterisk last started (asterisk/info), or None when it cannot say: a hop that
        began before it was cut by that restart."""
        try:
            info = await self.ctx.ari.info()
            return datetime.fromisoformat(str(info["status"]["startup_time"]))
        except (AriError, KeyError, TypeError, ValueError) as exc:
            log.warning("Asterisk's start time unknown (%s): hops ended unwatched are judged without it", exc)
            return None

    async def _destroy_empty_case_bridges(self) -> int:
        """Case bridges whose calls ended while no daemon watched, and the bridges of phone
        consults whose legs were hung up, stay in Asterisk until destroyed."""
        destroyed = 0
        for bridge in await self.ctx.ari.bridges():
            if bridge.id.startswith(("case-", CONSULT_BRIDGE, SUPERVISION_BRIDGE)) and not bridge.channels:
                await self.ctx.ari.destroy_bridge(bridge.id)
                destroyed += 1
        return destroyed

    async def _adopt_in_line_order(self, channel_ids: set[str]) -> None:
        """Adopt the callers left in Stasis, those who joined a queue first started first: the
        first adopted may be offered a free agent at once, before the others are back in line."""
        found: list[tuple[Channel, Hop | None]] = []
        for channel_id in channel_ids:
            try:
                channel = await self.ctx.ari.channel(channel_id)
            except AriNotFound:
                continue
            hop = await self.ctx.contacts.hop_by_channel(self.ctx.node, channel_id)
            if hop is None or hop.ended_at is None:
                found.append((channel, hop))
            else:  # its contact was closed for it (its node given up for lost): nobody serves it
                log.info("hanging up call %s: its hop %s ended %s", channel_id, hop.id, hop.end_reason)
                with contextlib.suppress(AriError):
                    await self.ctx.ari.hangup(channel_id)
        # A caller a transfer nobody answered put first in line goes back first (visit.Handoff).
        heads = {hop.id for _, hop in found if hop is not None and hop.queued_at is not None
                 and hop.agent_id is None and await self.ctx.contacts.joined_first_in_line(hop.id)}
        found.sort(key=lambda item: (item[1] is None or item[1].id not in heads, _line_order(item[1])))
        talks = [(channel, hop) for channel, hop in found if hop is not None and hop.answered_at is not None]
        await self._adopt(talks)
        self.talks_adopted.set()
        await self.talks_first()
        await self._adopt([item for item in found if item not in talks])

    async def _adopt(self, found: Sequence[tuple[Channel, Hop | None]]) -> None:
        for channel, hop in found:
            log.info("adopting call %s (hop %s)", channel.id, hop.id if hop else "new")
            dialled = hop.dialled if hop else channel.exten
            call = InboundCall(self.ctx, channel, dialled=dialled, hop=hop)
            self._start(call)
            # One at a time, each back in its line before the next: the autofill rule offers a
            # free agent to whoever is first in line at that moment.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.placed.wait(), ADOPTION_STEP_S)

    async def _adopt_callback_talks(self, legs: set[str]) -> set[str]:
        """Answered callbacks' talks (their agent's and customer's legs together in the case's
        bridge) go on under this daemon: both legs' events go to one task that follows the talk
        to its end as the placer would have. The legs taken."""
        if not any(leg.startswith(CALLBACK_LEG) for leg in legs):
            return set()
        taken: set[str] = set()
        for found in found_talks(await self.ctx.ari.bridges()):
            if {found.agent_leg, found.customer_leg} <= legs:
                talk = AdoptedTalk(self.ctx, found)
                self.inboxes[talk.channel_id] = talk
                self.watch(found.agent_leg, talk)
                self._own(talk.run(), f"callback-talk-{talk.channel_id}", talk.channel_id)
                taken |= {found.agent_leg, found.customer_leg}
        return taken

    async def _adopt_rejoin_waits(self, legs: set[str], alive: set[str]) -> set[str]:
        """Agents' legs waiting for a dropped customer's page (engine.rejoin): the wait goes on
        under this daemon for what is left of the grace period. The legs taken."""
        agent_legs = {leg for leg in legs if AGENT_LEG in leg and not leg.startswith(CALLBACK_LEG)}
        if not agent_legs:
            return set()
        bridges = {c: b.id for b in await self.ctx.ari.bridges() if b.id.startswith("case-")
                   for c in b.channels}
        taken: set[str] = set()
        for leg in sorted(agent_legs & bridges.keys()):
            wait = await self._rejoin_wait(leg, bridges[leg], alive)
            if wait is not None:
                self.inboxes[wait.channel_id] = self.rejoin_waits[wait.channel_id] = wait
                self.watch(leg, wait)
                self._own(wait.run(), f"rejoin-{wait.channel_id}", wait.channel_id)
                taken.add(leg)
        return taken

    async def _rejoin_wait(self, leg: str, bridge: str, alive: set[str]) -> AwaitingRejoin | None:
        note = await read_note(self.ctx, leg)
        if note is None:
            return None
        hop = await self.ctx.contacts.hop_by_channel(self.ctx.node, note.dropped_channel)
        snapshot = self.ctx.directory.snapshot
        decided = rejoin_adoption(note, hop, alive, snapshot, self.ctx.rejoin_grace_s)
        if isinstance(decided, str) or hop is None:
            log.info("agent leg %s waits for no page: %s", leg, decided)
            return None
        try:
            endpoint = (await self.ctx.ari.channel(leg)).endpoint
        except AriNotFound:
            return None
        queue = snapshot.prov.queues[decided.queue]
        return AwaitingRejoin(self.ctx, hop, queue, decided, leg, bridge, note.customer, endpoint)

    async def _hang_up_orphan_legs(self, legs: set[str]) -> None:
        """Agents' and invited parties' legs in Stasis that no adopted talk holds: their caller
        hung up while no daemon ran, or they answered a ring placed before the restart (the
        caller is rung afresh from its place in line). Left up, each would keep its agent busy."""
        if not legs:
            return
        # Held: in a case bridge with a call this daemon runs (adopted now or live already),
        # whose talk releases it, or in the bridge of such a call's case while its customer is on
        # hold (an attended transfer under way). A bridge whose caller went between the channel
        # list and now holds nothing.
        ours = {call.bridge_id for call in self.calls.values() if call.hop is not None}
        held = {c for bridge in await self.ctx.ari.bridges() if bridge.id.startswith("case-")
                and (bridge.id in ours or any(channel in self.calls for channel in bridge.channels))
                for c in bridge.channels}
        for leg in legs - held:
            log.info("hanging up leg %s: no call holds it any more", leg)
            with contextlib.suppress(AriError):
                await self.ctx.ari.hangup(leg)

    def _hang_up_unclaimed_leg(self, channel: Channel) -> None:
        """An agent's leg answered a ring no call waits for any more (the call ended, or the daemon
        restarted since it rang): hung up, so the agent is free again."""
        log.info("agent leg %s answered after its call ended: hung up", channel.id)

        async def hang_up() -> None:
            with contextlib.suppress(AriError):
                await self.ctx.ari.hangup(channel.id)

        self._own(hang_up(), f"orphan-{channel.id}", channel.id)

    async def close(self) -> None:
        """Stop every call task; their channels stay in Stasis for the next daemon to adopt."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.inboxes.clear()
        self.calls.clear()
        self._legs.clear()
        self.conference.clear()
        self.supervisions.clear()
        self.rejoin_waits.clear()
        self.invite_rings.rings.clear()


def _line_order(hop: Hop | None) -> float:
    """Who was first: by the time the caller joined its queue, else entered; unknown ones last."""
    at = (hop.queued_at or hop.entered_at) if hop is not None else None
    return at.timestamp() if at is not None else float("inf")


async def _nothing() -> None:
    """One node: its own talks are all there are."""


def _in_stasis_of(channel: Channel, app: str) -> bool:
    """Whether `channel` runs Stasis(app, ...) now. The app's own channel list cannot say:
    subscribed to all channels, it lists "__AST_CHANNEL_ALL_TOPIC" instead."""
    if channel.app_name.lower() != "stasis":
        return False
    return channel.app_data.split(",")[0].strip() == app


def _channel_id_of(event: AriEvent) -> str | None:
    if isinstance(event, ChannelEvent):
        return event.channel.id
    if isinstance(event, PlaybackEvent):
        return event.channel_id
    return None
