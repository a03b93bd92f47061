"""How a hop is closed when its channel ended while no daemon watched it (found by the reconcile
after a restart: the hop is open, its channel gone).

Asterisk keeps a channel in Stasis when the app's daemon goes away; the caller hears the music or
the agent the last daemon left them with. So a channel that ended in that gap was hung up by one of
its parties, unless Asterisk itself restarted since the hop began, which cut it. What the hop was
doing says how its party left, as it would had a daemon watched (a caller hanging up in line is an
abandon, a talk hung up is completed): the statistics then count such a contact as what it most
likely was, not as a failure of the system. When it ended is not known: the reconcile's time is
used, an upper bound (the daemon's restart, a few seconds)."""

from __future__ import annotations

from datetime import datetime

from hotline.engine.callback_placer import CALLBACK_LEG
from hotline.engine.facts import HopEnded, QueueStep
from hotline.engine.outcomes import EndReason, QueueEventKind
from hotline.engine.outside import OUTSIDE_LEG
from hotline.engine.phone_switch import PHONE_LEG
from hotline.store.hops import Hop

UNWATCHED = "ended while no daemon watched"
CUT_BY_RESTART = "Asterisk restarted while no daemon watched"
# The ids of the legs the daemon dials out (a callback's, a transfer's to a number, a move to the
# customer's phone): unanswered, nobody took them.
DIALLED_OUT = (CALLBACK_LEG, OUTSIDE_LEG, PHONE_LEG)


def unwatched_end(hop: Hop, *, asterisk_started: datetime | None,
                  at: datetime) -> tuple[list[QueueStep], HopEnded]:
    """What closes `hop`: the queue event of its visit if it had one, then its end."""
    if asterisk_started is not None and asterisk_started > hop.entered_at:
        return [], HopEnded(EndReason.FAILED, cause_text=CUT_BY_RESTART, at=at)
    if hop.answered_at is not None:
        steps = []
        if hop.queue_id is not None and hop.agent_id is not None:
            steps.append(QueueStep(hop.queue_id, QueueEventKind.COMPLETE, agent_id=hop.agent_id,
                                   talk_ms=_ms(at, hop.answered_at), detail=UNWATCHED, at=at))
        return steps, HopEnded(EndReason.COMPLETED, cause_text=UNWATCHED, at=at)
    if hop.queue_id is not None and hop.queued_at is not None:
        return ([QueueStep(hop.queue_id, QueueEventKind.ABANDON, wait_ms=_ms(at, hop.queued_at),
                           detail=UNWATCHED, at=at)],
                HopEnded(EndReason.ABANDONED, cause_text=UNWATCHED, at=at))
    if any(marker in hop.channel_id for marker in DIALLED_OUT):
        return [], HopEnded(EndReason.FAILED, cause_text=f"not answered; {UNWATCHED}", at=at)
    return [], HopEnded(EndReason.ABANDONED, cause_text=UNWATCHED, at=at)  # in a menu, a prompt


def _ms(at: datetime, since: datetime) -> int:
    return max(0, int((at - since).total_seconds() * 1000))
