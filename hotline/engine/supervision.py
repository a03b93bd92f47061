"""Supervision: a supervisor listens to, whispers into or barges into a live talk.

Who asks: the CLI (`hotline case listen|whisper|barge CASE SUPERVISOR`) and the agent page, by an
ARI user event about the customer's channel, the way a transfer is asked (engine.transfer). The
router checks the request against the talk it runs (`refusal`), and a `Supervision` task rings the
supervisor's own phone (their agent endpoint, as agents are rung). Or the supervisor dials a
feature code from that phone (engine.supervision_phone): their call is the leg, answered at once.
On answer:

- listen: a Snoop channel on the agent's leg with spy=both (it hears what the agent's phone sends
  and what it is sent: both sides of the talk) and whisper=none, in a bridge of its own with the
  supervisor's leg; nobody hears the supervisor.
- whisper (coaching): the same with whisper=out: the supervisor speaks toward what the agent's
  phone is sent, so the agent hears them and the customer does not (whisper=in would be heard by
  the customer: checked on Asterisk 22, /work/shared/DESIGN.md).
- barge: the supervisor's leg joins the talk's bridge, as a conference's invited party does: all
  three hear each other.

It ends when the supervisor hangs up, or with the talk: the snoop goes with the agent's leg, and
the talk's end releases the supervisor's leg with the conference's (router.conference_legs). Each
request the daemon takes is a row of `supervisions` (migration 031) that says how it went; the
CLI waits on that row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from hotline.asterisk.ari_events import ChannelDestroyed, ChannelUserevent, StasisEnd, StasisStart
from hotline.engine.context import CallContext
from hotline.engine.messages import ChannelVanished, Message
from hotline.engine.queueing.agent_state import DEVICE_BUSY, AgentState, AgentStatus
from hotline.errors import AriError, AriNotFound
from hotline.media import case_bridge_ids
from hotline.provision.model import Provisioning
from hotline.store.supervisions import Supervisions

log = logging.getLogger(__name__)

SUPERVISE_EVENT = "hotline-supervise"
MODES = ("listen", "whisper", "barge")
SUPERVISOR_LEG = "-sup-"  # in the ids of supervisors' legs and their snoops
SUPERVISION_BRIDGE = "supervise-"  # a listening or whispering supervisor's bridge with the snoop
RING_TIMEOUT_S = 30
SNOOP_PATIENCE_S = 5.0  # how long the snoop may take to enter Stasis
ASKED_LIMIT = 72  # characters kept of each field asked: "agent:" and a 63-character agent name fit
# The snoop's directions on the agent's leg, by mode (barge needs none).
SNOOP_WHISPER = {"listen": "none", "whisper": "out"}


@dataclass(frozen=True)
class SuperviseAsked:
    """Supervise case `case_id`'s talk on the customer's channel the event came about."""

    case_id: int
    mode: str
    supervisor: str
    asked_by: str
    request: str


@dataclass(frozen=True)
class Talk:
    """What a supervision needs of the live talk: its case, its customer's hop, the agent's
    endpoint and the agent's leg (the one a snoop listens on)."""

    case_id: int
    hop_id: int | None
    agent_endpoint: str
    agent_leg: str


@dataclass(frozen=True)
class LiveTalk:
    """A talk a supervisor may pick on their page: from the daemon's own calls, not the rows."""

    case_id: int
    queue: str  # "" when the agent's state names none (a talk adopted without its queue)
    agent: str
    caller: str  # the customer's number as their channel shows it
    since: float  # when it was answered, epoch seconds

    def json(self, now: float) -> dict[str, object]:
        return {"case": self.case_id, "queue": self.queue, "agent": self.agent, "caller": self.caller,
                "talk_s": max(0, int(now - self.since))}


def supervise_asked(event: ChannelUserevent) -> SuperviseAsked | None:
    """The request a user event carries, or None when it is no (well-formed) supervision request."""
    if event.eventname != SUPERVISE_EVENT:
        return None
    v = event.variables
    case, mode, request = v.get("case", ""), v.get("mode", ""), v.get("request", "")
    if not case.isdigit() or mode not in MODES or not request:
        return None
    return SuperviseAsked(int(case), mode, v.get("supervisor", "")[:ASKED_LIMIT],
                          v.get("asked_by", "")[:ASKED_LIMIT] or "unknown", request[:ASKED_LIMIT])


def refusal(asked: SuperviseAsked, talk: Talk | None, prov: Provisioning, state: AgentState | None,
            supervising: Collection[str], in_a_talk: bool, now: float) -> str | None:
    """Why the daemon will not do `asked` (one line), or None: it may. `state`: the supervisor's
    live state; `supervising`: the supervisors whose supervision runs now; `in_a_talk`: the
    supervisor talks with a customer of this daemon."""
    agent = prov.agents.get(asked.supervisor)
    if agent is None:
        return f"there is no agent {asked.supervisor!r}"
    if not agent.supervisor:
        return f"agent {agent.name!r} is not a supervisor (hotline agent set {agent.name} --supervisor)"
    if talk is None or talk.case_id != asked.case_id:
        return f"case {asked.case_id} has no live talk with an agent"
    if agent.endpoint == talk.agent_endpoint:
        return f"{agent.name} is the agent of this talk"
    if agent.name in supervising:
        return f"{agent.name} is already supervising a talk"
    if in_a_talk or _busy(state, now):
        return f"{agent.name} is busy in a call"
    return None


def _busy(state: AgentState | None, now: float) -> bool:
    if state is None:
        return False
    return state.status(now) in (AgentStatus.RINGING, AgentStatus.BUSY) or state.device_state in DEVICE_BUSY


async def ask_supervision(ari: SupervisionAsker, app: str, channel_id: str, case_id: int, mode: str,
                          supervisor: str, asked_by: str) -> str:
    """Ask the daemon that runs `channel_id` (the customer's leg of case `case_id`) to ring
    `supervisor` to `mode` its talk; the request id the row of supervisions will carry."""
    request = uuid.uuid4().hex
    await ari.user_event(app, SUPERVISE_EVENT, channel_id, {
        "case": str(case_id), "mode": mode, "supervisor": supervisor, "asked_by": asked_by,
        "request": request})
    return request


class SupervisionAsker(Protocol):
    """What asking needs of ARI (hotline.asterisk.ari.AriClient): a user event."""

    async def user_event(self, app: str, name: str, channel_id: str,
                         variables: Mapping[str, str]) -> None: ...


class Supervision:
    """One supervisor's leg on one talk: rung, then listening, whispering or barged in until the
    supervisor hangs up or the talk ends; its row of supervisions follows each step."""

    def __init__(self, ctx: CallContext, store: Supervisions, asked: SuperviseAsked, talk: Talk,
                 dialled_in: str | None = None) -> None:
        """`dialled_in`: the supervisor's own call (a feature code from their phone,
        engine.supervision_phone), taken as their leg instead of ringing them."""
        self.ctx = ctx
        self.store = store
        self.asked = asked
        self.talk = talk
        tag = uuid.uuid4().hex[:8]
        self.dialled_in = dialled_in is not None
        self.channel_id = dialled_in or f"case-{talk.case_id}{SUPERVISOR_LEG}{tag}"
        # SUPERVISOR_LEG in the snoop's id whatever the leg's: a restarted daemon hangs it up.
        self.snoop_id = f"case-{talk.case_id}{SUPERVISOR_LEG}{tag}-snoop"
        self.bridge_id = f"{SUPERVISION_BRIDGE}{talk.case_id}-{tag}"
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.talk_over = False  # the talk ended: its end releases the supervisor's leg

    def talk_ended(self) -> None:
        self.talk_over = True

    @property
    def supervisor(self) -> str:
        return self.asked.supervisor

    @property
    def case_id(self) -> int:
        return self.talk.case_id

    def post(self, message: Message) -> None:
        self.inbox.put_nowait(message)

    async def run(self) -> None:
        """Ring, supervise, end; every way out leaves no leg, snoop or bridge behind."""
        try:
            if not await (self._take_call() if self.dialled_in else self._ring()):
                return
            await self._supervise()
        finally:
            await self._tear_down()

    async def _ring(self) -> bool:
        agents = self.ctx.directory.snapshot.prov.agents
        endpoint = agents[self.supervisor].endpoint
        self.ctx.watch(self.channel_id, self)
        await self.write(self.store.ringing(self.row_ids(), self.channel_id))
        try:
            await self.ctx.ari.originate(f"PJSIP/{endpoint}", self.ctx.app,
                                         f"supervise,{self.case_id},{self.asked.mode}", self.channel_id,
                                         timeout_s=RING_TIMEOUT_S,
                                         caller_id=f"{self.asked.mode} case {self.case_id}")
        except AriError as exc:
            return await self._not_answered(f"the supervisor's phone could not be dialled ({exc})")
        answered = await self._answer_or_end(RING_TIMEOUT_S + self.ctx.ring_grace_s)
        if answered is not True:
            return await self._not_answered(answered or "not answered")
        return True

    async def _take_call(self) -> bool:
        """The supervisor dialled in: their own call is answered as their leg (no ring)."""
        await self.write(self.store.ringing(self.row_ids(), self.channel_id))
        try:
            await self.ctx.ari.answer(self.channel_id)
        except AriError as exc:
            return await self._not_answered(f"the supervisor's call ended before it was answered ({exc})")
        return True

    async def _answer_or_end(self, within_s: float) -> bool | str:
        """True once the supervisor's phone answers; else why not."""
        try:
            async with asyncio.timeout(within_s):
                while True:
                    message = await self.inbox.get()
                    if isinstance(message, StasisStart) and message.channel.id == self.channel_id:
                        return True
                    if self._gone(message, self.channel_id):
                        if self.talk_over:
                            return "the talk ended before the supervisor answered"
                        cause = message.cause_txt if isinstance(message, ChannelDestroyed) else ""
                        return f"not answered ({cause})" if cause else "not answered"
        except TimeoutError:
            return "not answered"

    async def _not_answered(self, why: str) -> bool:
        log.info("case %s: %s did not take the %s (%s)", self.case_id, self.supervisor, self.asked.mode, why)
        await self.write(self.store.ended(self.asked.request, "unanswered", why))
        return False

    async def _supervise(self) -> None:
        try:
            if self.asked.mode == "barge":
                await self._barge()
            else:
                await self._snoop()
        except (AriError, TimeoutError) as exc:  # the talk ended as the supervisor answered
            log.info("case %s: %s answered, but there is no talk to %s (%s)", self.case_id,
                     self.supervisor, self.asked.mode, exc)
            await self.write(self.store.ended(self.asked.request, "unanswered",
                                               "the talk ended before the supervisor was in"))
            return
        await self.write(self.store.started(self.asked.request))
        log.info("case %s: %s %s (%s)", self.case_id, self.supervisor, _DOING[self.asked.mode],
                 self.channel_id)
        why = await self._until_over()
        log.info("case %s: %s stopped supervising: %s", self.case_id, self.supervisor, why)
        await self._tear_down()  # first: a row that says ended finds nothing of it left
        await self.write(self.store.ended(self.asked.request, "ended", why))

    async def _barge(self) -> None:
        """Into the talk's bridge, or the SFU bridge the talk moved to when video came."""
        plain, video = case_bridge_ids(self.case_id)
        try:
            await self.ctx.ari.add_to_bridge(plain, [self.channel_id])
        except AriNotFound:
            await self.ctx.ari.add_to_bridge(video, [self.channel_id])

    async def _snoop(self) -> None:
        ari = self.ctx.ari
        self.ctx.watch(self.snoop_id, self)
        await ari.snoop(self.talk.agent_leg, self.snoop_id, self.ctx.app,
                        f"supervise-snoop,{self.case_id}", spy="both",
                        whisper=SNOOP_WHISPER[self.asked.mode])
        await self._snoop_in_stasis()
        await ari.create_bridge(self.bridge_id, "mixing")
        await ari.add_to_bridge(self.bridge_id, [self.channel_id, self.snoop_id])

    async def _snoop_in_stasis(self) -> None:
        """A channel is added to a bridge only once it is in Stasis."""
        async with asyncio.timeout(SNOOP_PATIENCE_S):
            while True:
                message = await self.inbox.get()
                if isinstance(message, StasisStart) and message.channel.id == self.snoop_id:
                    return
                if self._gone(message, self.channel_id) or self._gone(message, self.snoop_id):
                    raise AriNotFound(f"{getattr(message, 'channel', message)} gone", 404)

    async def _until_over(self) -> str:
        while True:
            message = await self.inbox.get()
            if self._gone(message, self.channel_id):
                return "the talk ended" if self.talk_over else "the supervisor hung up"
            if self._gone(message, self.snoop_id):
                return "the talk ended"
            log.debug("supervision %s: %s ignored", self.channel_id, type(message).__name__)

    @staticmethod
    def _gone(message: Message, channel_id: str) -> bool:
        if isinstance(message, ChannelVanished):
            return message.channel_id == channel_id
        return isinstance(message, ChannelDestroyed | StasisEnd) and message.channel.id == channel_id

    async def _tear_down(self) -> None:
        """Idempotent: what is gone already is skipped."""
        ari = self.ctx.ari
        for channel in (self.snoop_id, self.channel_id):
            with contextlib.suppress(AriError):
                await ari.hangup(channel, "normal")
            self.ctx.unwatch(channel)
        if self.asked.mode != "barge":
            with contextlib.suppress(AriError):
                await ari.destroy_bridge(self.bridge_id)

    def row_ids(self) -> dict[str, object]:
        ids = self.ctx.directory.snapshot.ids.get("agents", {})
        agents = self.ctx.directory.snapshot.prov.agents
        agent = next((a.name for a in agents.values() if a.endpoint == self.talk.agent_endpoint), None)
        return {"request": self.asked.request, "case_id": self.case_id, "hop_id": self.talk.hop_id,
                "agent_id": ids.get(agent) if agent else None, "supervisor_id": ids.get(self.supervisor),
                "supervisor": self.supervisor, "mode": self.asked.mode, "asked_by": self.asked.asked_by,
                "node": self.ctx.node}

    async def write(self, write: Awaitable[None]) -> None:
        """A row write: a supervision goes on when the database is away (logged, not raised)."""
        try:
            await write
        except Exception as exc:  # noqa: BLE001 - psycopg or pool errors: the call is no less live
            log.warning("case %s: supervision row of %s not written: %s", self.case_id,
                        self.asked.request, exc)


_DOING = {"listen": "listens", "whisper": "whispers to the agent", "barge": "barged in"}
