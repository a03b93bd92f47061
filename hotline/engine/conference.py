"""A conference: an agent (or a supervisor) brought into a live case's bridge.

Inviting dials the agent into the Stasis app with the `conference` entry (the CLI does it over ARI
as well as the daemon); the daemon then owns the answered leg here: it joins the case's SFU bridge,
where everyone sees everyone, and is recorded as a participant. The talk belongs to the customer
and their agent: when it ends, the participants are released with it (queueing.visit).

A leg is a task of its own with an inbox of its own, like a call; its rows (joined, left) go
through the same ordered write-behind as every call's records.

The invited agent's page pops the ring (InviteRings): the inviter, whichever process it is,
tells the app by a user event about the ringing channel; the daemon that runs the case's talk
publishes the ring with the customer's details, and its answer or end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from hotline.asterisk.ari import AriClient
from hotline.asterisk.ari_events import Channel, ChannelDestroyed, ChannelUserevent, StasisEnd
from hotline.engine.context import CallContext
from hotline.engine.live_hub import ANSWERED, GONE, RINGING, LiveHub, RingNews, agent_topic, ring_event
from hotline.engine.messages import ChannelVanished, Message
from hotline.errors import AriError, AriNotFound
from hotline.media import case_bridge_ids, originate_formats
from hotline.provision.model import Agent
from hotline.store.records import participant_joined_record, participant_left_record

log = logging.getLogger(__name__)

CONFERENCE_LEG = "-conf-"  # in the ids of the channels invitations place
RING_TIMEOUT_S = 30
INVITE_RINGING = "hotline-invite-ringing"  # the user event: an invitation's leg is ringing


async def invite(ari: AriClient, app: str, case_id: int, agent: Agent, invited_by: str) -> str:
    """Dial `agent` into case `case_id`'s bridge; the channel id of the leg that rings."""
    channel_id = f"case-{case_id}{CONFERENCE_LEG}{uuid.uuid4().hex[:8]}"
    await ari.originate(f"PJSIP/{agent.endpoint}", app,
                        f"conference,{case_id},agent={agent.name},by={invited_by}", channel_id,
                        timeout_s=RING_TIMEOUT_S, caller_id=f"case {case_id}",
                        formats=originate_formats(agent.capabilities))
    log.info("case %s: %s invited %s (%s)", case_id, invited_by, agent.name, channel_id)
    with contextlib.suppress(AriError):  # no daemon to pop it: the invitation rings all the same
        await ari.user_event(app, INVITE_RINGING, channel_id,
                             {"case": str(case_id), "agent": agent.name, "by": invited_by})
    return channel_id


@dataclass(frozen=True)
class InviteRinging:
    """What the user event of an invitation's ring says."""

    case_id: int
    agent: str
    invited_by: str

    @property
    def passed_by(self) -> str:
        """Who invites, as the invited agent's page names them: an agent by name, or `cli`."""
        return self.invited_by.removeprefix("agent:")


def invite_ringing(event: ChannelUserevent) -> InviteRinging | None:
    """The invitation's ring a user event announces; None for any other (or a malformed) event."""
    if event.eventname != INVITE_RINGING:
        return None
    case, agent = event.variables.get("case", ""), event.variables.get("agent", "")
    if not case.isdigit() or not agent:
        return None
    return InviteRinging(int(case), agent[:64], event.variables.get("by", "")[:64] or "unknown")


class InviteRings:
    """The invitations ringing now, by their leg: the invited agent's page hears each ring, then
    its answer (the leg entering the app) or its end (the leg destroyed unanswered)."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.rings: dict[str, RingNews] = {}

    def ringing(self, news: RingNews) -> None:
        self.rings[news.leg] = news
        self.hub.publish(agent_topic(news.agent), ring_event(news, RINGING))

    def answered(self, channel_id: str) -> None:
        news = self.rings.pop(channel_id, None)
        if news is not None:
            self.hub.publish(agent_topic(news.agent), ring_event(news, ANSWERED))

    def gone(self, channel_id: str, why: str) -> None:
        news = self.rings.pop(channel_id, None)
        if news is not None:
            self.hub.publish(agent_topic(news.agent), ring_event(news, GONE, why))

    def ended(self, event: ChannelDestroyed) -> None:
        if event.channel.id in self.rings:
            self.gone(event.channel.id, f"cause {event.cause} {event.cause_txt}".strip())


class ConferenceLeg:
    """An invited party's answered leg: in the case's bridge until it hangs up or the talk ends."""

    def __init__(self, ctx: CallContext, channel: Channel, case_id: int, agent: str, invited_by: str) -> None:
        self.ctx = ctx
        self.channel = channel
        self.case_id = case_id
        self.agent = agent
        self.invited_by = invited_by or "unknown"
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()

    @property
    def channel_id(self) -> str:
        return self.channel.id

    def post(self, message: Message) -> None:
        self.inbox.put_nowait(message)

    async def run(self) -> None:
        ari = self.ctx.ari
        try:
            if not ari.all_channels:
                await ari.subscribe(self.ctx.app, f"channel:{self.channel_id}")
            await self._join()
        except AriError as exc:  # the talk ended while the invited party's phone rang
            log.info("case %s: %s answered, but there is no talk to join (%s)", self.case_id, self.agent, exc)
            with contextlib.suppress(AriError):
                await ari.hangup(self.channel_id, "normal")
            return
        log.info("case %s: %s joined the conference", self.case_id, self.agent)
        agent_id = self.ctx.directory.snapshot.ids.get("agents", {}).get(self.agent)
        self.ctx.records.submit(participant_joined_record(self.case_id, agent_id, self.ctx.node,
                                                          self.channel_id, self.invited_by,
                                                          at=datetime.now(UTC)))
        await self._until_gone()
        log.info("case %s: %s left the conference", self.case_id, self.agent)
        self.ctx.records.submit(participant_left_record(self.ctx.node, self.channel_id, at=datetime.now(UTC)))

    async def _join(self) -> None:
        """Into the case's bridge, or the SFU bridge its talk moved to when video came."""
        plain, video = case_bridge_ids(self.case_id)
        try:
            await self.ctx.ari.add_to_bridge(plain, [self.channel_id])
        except AriNotFound:
            await self.ctx.ari.add_to_bridge(video, [self.channel_id])

    async def _until_gone(self) -> None:
        while True:
            message = await self.inbox.get()
            if isinstance(message, ChannelVanished) and message.channel_id == self.channel_id:
                return
            if isinstance(message, ChannelDestroyed | StasisEnd) and message.channel.id == self.channel_id:
                return
            log.debug("conference leg %s: %s ignored", self.channel_id, type(message).__name__)
