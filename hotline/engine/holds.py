"""Holds in a talk: a leg of the talk's bridge put on hold and taken off again.

An agent's desk (JsSIP `session.hold()`) or SIP phone holds with a re-INVITE sendonly (or
inactive); Asterisk sends the app ChannelHold on that leg, plays music on hold to the rest of the
bridge by itself, and sends ChannelUnhold on the re-INVITE back to sendrecv. Both sides may hold:
the agent's leg (the hold a contact centre counts in handling time) and the customer's own phone
or page; each hold is recorded with who held. A hold still open when the talk ends is closed then.
"""

from __future__ import annotations

import logging

from hotline.asterisk.ari_events import ChannelHold, ChannelUnhold
from hotline.engine.facts import HoldEnded, HoldStarted

log = logging.getLogger(__name__)

AGENT = "agent"
CUSTOMER = "customer"


class TalkHolds:
    """The holds open in one talk, by who held (one open hold per side at a time)."""

    def __init__(self, agent_leg: str, customer_leg: str, queue_id: int | None,
                 agent_id: int | None) -> None:
        self.legs = {agent_leg: AGENT, customer_leg: CUSTOMER}
        self.queue_id = queue_id
        self.agent_id = agent_id
        self.open: set[str] = set()

    def noticed(self, event: ChannelHold | ChannelUnhold) -> HoldStarted | HoldEnded | None:
        """The fact a hold event makes, or None: a leg not of this talk, a repeated hold (a phone
        that re-INVITEs sendonly again), an unhold with no hold open."""
        side = self.legs.get(event.channel.id)
        if side is None:
            return None
        if isinstance(event, ChannelHold):
            if side in self.open:
                return None
            self.open.add(side)
            log.info("talk on %s: held by the %s", event.channel.id, side)
            return HoldStarted(side, self.queue_id, self.agent_id)
        if side not in self.open:
            return None
        self.open.discard(side)
        log.info("talk on %s: taken off hold by the %s", event.channel.id, side)
        return HoldEnded(side)

    def ended(self) -> list[HoldEnded]:
        """The talk is over: every hold still open ends with it."""
        closing, self.open = sorted(self.open), set()
        return [HoldEnded(side) for side in closing]
