"""A node given up for lost (several nodes; setting `node_lost_after`): its Asterisk unreachable
that long, the calls it held are taken for gone. Each call's task ends as for a channel found
gone at a reconcile, with the loss as its cause; hops no task owns (left by a daemon stopped
meanwhile) close the same way; and should the node come back with some of those channels still
up, they are hung up, for their hops are closed and no agent waits for them any more."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from hotline.engine.facts import HopEnded, QueueStep
from hotline.engine.outcomes import EndReason
from hotline.engine.unwatched_end import unwatched_end
from hotline.store.hops import Hop

LOST_PREFIX = "node lost: "


def lost_why(node: str, down_s: float) -> str:
    """The cause recorded for the calls of `node`, unreachable for `down_s` seconds."""
    return f"{LOST_PREFIX}{node}'s Asterisk unreachable for {down_s:.0f} s"


def lost_end(hop: Hop, why: str, at: datetime) -> tuple[list[QueueStep], HopEnded]:
    """What closes a lost node's hop that no call owns: its queue visit ends as an unwatched one
    would (a talk complete, a wait abandoned), the hop `failed` with the loss as its cause."""
    steps, _ = unwatched_end(hop, asterisk_started=None, at=at)
    steps = [dataclasses.replace(step, detail=why) for step in steps]
    return steps, HopEnded(EndReason.FAILED, cause_text=why, at=at)
