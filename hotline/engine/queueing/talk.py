"""An agent's leg for a caller (ringing, then talking), and a talk or a place in line as one leg
of the customer hands it to the next (the switch to video: engine.handover asks, the visit gives)."""

from __future__ import annotations

from dataclasses import dataclass

from hotline.engine.queueing.agent_state import AgentState
from hotline.engine.queueing.queues import Waiter
from hotline.provision.model import Queue
from hotline.store.hops import Hop


@dataclass
class Ringing:
    """The leg the engine placed to `agent` for a caller, and when it started ringing."""

    agent: AgentState
    channel_id: str
    started: float


@dataclass(frozen=True)
class Talk:
    """A caller's talk with an agent, as one leg hands it to the next."""

    queue: Queue
    leg: Ringing
    answered_at: float
    visit_hop: Hop  # the hop that joined the queue: the visit's complete is recorded there
    recorded: bool = False  # the talk is being recorded (an on_demand queue's, once asked)
    record: str | None = None  # the visit's record mode (engine.recording.record_mode): kept by the next leg


@dataclass(frozen=True)
class Place:
    """A waiting caller's place in line, as its phone leg hands it to its video leg: the video
    leg's waiter (joined at the phone leg's join time, already in line) and the visit's hop."""

    queue: Queue
    waiter: Waiter
    visit_hop: Hop  # the hop that joined the queue: the visit's events go on there
    record: str | None = None  # the visit's record mode (engine.recording.record_mode): kept by the next leg
