"""What a customer's own web page may know of its call, as it goes (the page's live stage): in
line (its place and the estimated wait), talking (the agent's display name), or gone. Nothing of
any other caller: the page learns its own place in line, never who else waits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hotline.engine.call_state import CallState
from hotline.engine.queueing.queues import QueueManager
from hotline.provision.model import Agent

WAITING = "waiting"
TALKING = "talking"
CONNECTING = "connecting"  # in Stasis, not yet in a line (routing, a menu)


@dataclass(frozen=True)
class CustomerView:
    stage: str  # connecting | waiting | talking
    hop_id: int | None
    case_id: int | None
    position: int | None = None  # 1: next to be served
    wait_s: int | None = None  # the queue's estimate of what is left (None: nothing to go by yet)
    agent: str = ""  # the agent's display name (their name when they have none)

    def as_json(self) -> dict[str, object]:
        return {"stage": self.stage, "hop": self.hop_id, "position": self.position, "wait_s": self.wait_s,
                "agent": self.agent}


def view_of(state: CallState, channel_id: str, talking_with: str | None, hop_id: int | None,
            case_id: int | None, queues: QueueManager, agents: Iterable[Agent]) -> CustomerView:
    """The view of one call (its state, its channel, the endpoint of the agent it talks with)."""
    if state is CallState.TALKING and talking_with:
        return CustomerView(TALKING, hop_id, case_id, agent=_shown_name(talking_with, agents))
    if state in (CallState.WAITING, CallState.RINGING):
        for line in queues.waiting.values():
            waiter = next((w for w in line if w.channel_id == channel_id), None)
            if waiter is not None:
                estimate = queues.estimated_wait(waiter)
                return CustomerView(WAITING, hop_id, case_id, position=queues.position(waiter),
                                    wait_s=None if estimate is None else round(estimate))
    return CustomerView(CONNECTING, hop_id, case_id)


def _shown_name(endpoint: str, agents: Iterable[Agent]) -> str:
    agent = next((a for a in agents if a.endpoint == endpoint), None)
    if agent is None:
        return ""
    return agent.display_name or agent.name


