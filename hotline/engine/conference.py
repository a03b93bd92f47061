"""A conference: an agent (or a supervisor) brought into a live case's bridge.

Inviting dials the agent into the Stasis app with the `conference` entry (the CLI does it over ARI
as well as the daemon); the daemon then owns the answered leg here: it joins the case's SFU bridge,
where everyone sees everyone, and is recorded as a participant. The talk belongs to the customer
and their agent: when it ends, the participants are released with it (QueueVisit._follow_talk).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable

from hotline.asterisk.ari import AriClient
from hotline.asterisk.ari_events import AriEvent, Channel, ChannelDestroyed, StasisEnd
from hotline.engine.calls import CallContext, ChannelVanished
from hotline.errors import AriError, HotlineError
from hotline.media import originate_formats
from hotline.provision.model import Agent
from hotline.store.db import STORE_DOWN
from hotline.store.participants import Participants

log = logging.getLogger(__name__)

CONFERENCE_LEG = "-conf-"  # in the ids of the channels invitations place
RING_TIMEOUT_S = 30


class NotTalking(HotlineError):
    """The case has no talk in progress to bring anyone into."""


async def invite(ari: AriClient, app: str, case_id: int, agent: Agent, invited_by: str) -> str:
    """Dial `agent` into case `case_id`'s bridge; the channel id of the leg that rings."""
    channel_id = f"case-{case_id}{CONFERENCE_LEG}{uuid.uuid4().hex[:8]}"
    await ari.originate(f"PJSIP/{agent.endpoint}", app,
                        f"conference,{case_id},agent={agent.name},by={invited_by}", channel_id,
                        timeout_s=RING_TIMEOUT_S, caller_id=f"case {case_id}",
                        formats=originate_formats(agent.capabilities))
    log.info("case %s: %s invited %s (%s)", case_id, invited_by, agent.name, channel_id)
    return channel_id


class ConferenceLeg:
    """An invited party's answered leg: in the case's bridge until it hangs up or the talk ends."""

    def __init__(self, ctx: CallContext, participants: Participants, channel: Channel, case_id: int,
                 agent: str, invited_by: str) -> None:
        self.ctx = ctx
        self.participants = participants
        self.channel = channel
        self.case_id = case_id
        self.agent = agent
        self.invited_by = invited_by or "unknown"
        self.inbox: asyncio.Queue[AriEvent] = asyncio.Queue()
        self.hop = None  # a participant is not a leg of the customer's

    @property
    def channel_id(self) -> str:
        return self.channel.id

    async def run(self) -> None:
        ari = self.ctx.ari
        try:
            if not self.ctx.ari.all_channels:
                await ari.subscribe(self.ctx.app, f"channel:{self.channel_id}")
            await ari.add_to_bridge(f"case-{self.case_id}", [self.channel_id])
        except AriError as exc:  # the talk ended while the invited party's phone rang
            log.info("case %s: %s answered, but there is no talk to join (%s)", self.case_id, self.agent, exc)
            await self._hang_up()
            return
        log.info("case %s: %s joined the conference", self.case_id, self.agent)
        agent_id = self.ctx.directory.snapshot.ids.get("agents", {}).get(self.agent)
        await self._record(self.participants.joined(self.case_id, agent_id, self.ctx.node, self.channel_id,
                                                    self.invited_by))
        await self._until_gone()
        log.info("case %s: %s left the conference", self.case_id, self.agent)
        await self._record(self.participants.left(self.ctx.node, self.channel_id))

    async def _until_gone(self) -> None:
        while True:
            event = await self.inbox.get()
            if isinstance(event, ChannelVanished) and event.channel_id == self.channel_id:
                return
            if isinstance(event, ChannelDestroyed | StasisEnd) and event.channel.id == self.channel_id:
                return

    async def _hang_up(self) -> None:
        try:
            await self.ctx.ari.hangup(self.channel_id, "normal")
        except AriError:
            pass

    async def _record(self, write: Awaitable[None]) -> None:
        try:
            await write
        except STORE_DOWN as exc:  # the conference goes on; only its record is missing
            log.error("case %s: participant %s not recorded: %s", self.case_id, self.agent, exc)
