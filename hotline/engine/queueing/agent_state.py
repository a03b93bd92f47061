"""One agent as the queues see it: logged in or not, paused, ringing, talking, in wrap-up, and
what Asterisk says about the phone.

Pure logic, no I/O: the call tasks and the AMI listener drive it and write the events it returns.
The status is derived from a few independent facts (logged in, pause, our call on the agent,
wrap-up deadline, device state) rather than stored, because they overlap in practice: an agent
may pause during a call (paused once it ends), log out while ringing, or take a personal call
the engine never placed. Every change of the derived status is recorded by `_set()` only.

Times are seconds since the epoch (floats), the same clock the database stores.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from hotline.errors import IllegalTransition, InvalidEvent
from hotline.provision import model

log = logging.getLogger(__name__)


class AgentStatus(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    FREE = "free"
    RINGING = "ringing"
    BUSY = "busy"
    WRAPUP = "wrapup"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"  # logged in, but the phone is not registered


@dataclass(frozen=True)
class Transition:
    """A change of an agent's status, for the caller to write as an event."""

    agent: str
    old: AgentStatus
    new: AgentStatus
    at: float
    cause: str  # the method that caused it ("login", "device:INUSE", "wrapup_ended", ...)


# Asterisk device states (AMI DeviceStateChange, ARI DeviceStateChanged), as app_queue reads them
# with ringinuse=no: a phone already in use, ringing or holding a call is not offered another.
DEVICE_FREE = frozenset({"NOT_INUSE", "UNKNOWN"})  # app_queue offers calls on UNKNOWN too
DEVICE_BUSY = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"})
DEVICE_GONE = frozenset({"UNAVAILABLE", "INVALID"})  # not registered, or no such endpoint
DEVICE_STATES = DEVICE_FREE | DEVICE_BUSY | DEVICE_GONE


class _Phase(enum.Enum):
    """Where the engine's own call to this agent stands."""

    IDLE = "idle"
    RINGING = "ringing"
    TALKING = "talking"


class AgentState:
    """The live state of one agent; identity equality, so it can key dicts and sets."""

    def __init__(self, name: str, endpoint: str, capabilities: Iterable[str] = ("audio",)) -> None:
        self.name = name
        self.endpoint = endpoint
        self.capabilities = frozenset(capabilities)
        self._logged_in = False
        self._pause_reason: str | None = None
        self._phase = _Phase.IDLE
        self._queue: str | None = None  # the queue of the call ringing or talking on this agent
        self._wrapup_until: float | None = None
        self._device = "UNKNOWN"
        self._recorded = AgentStatus.LOGGED_OUT
        self._completed: dict[str, int] = {}
        self._last_ended: dict[str, float] = {}

    @classmethod
    def from_agent(cls, agent: model.Agent) -> AgentState:
        return cls(agent.name, agent.endpoint, agent.capabilities)

    def __repr__(self) -> str:
        return f"AgentState({self.name!r}, {self._recorded.value})"

    # -- what the queues read ------------------------------------------------------------------

    @property
    def pause_reason(self) -> str | None:
        return self._pause_reason

    @property
    def device_state(self) -> str:
        return self._device

    @property
    def queue(self) -> str | None:
        """The queue whose call is ringing or talking on this agent, if any."""
        return self._queue

    @property
    def wrapup_until(self) -> float | None:
        return self._wrapup_until

    @property
    def video(self) -> bool:
        return "video" in self.capabilities

    def calls_completed(self, queue: str) -> int:
        """Calls from `queue` this agent answered and finished (fewestcalls)."""
        return self._completed.get(queue, 0)

    def last_call_ended_at(self, queue: str) -> float | None:
        """When this agent's last call from `queue` ended (leastrecent); None: never."""
        return self._last_ended.get(queue)

    def status(self, now: float) -> AgentStatus:
        """The status at `now`; wrap-up ends by the clock, no timer involved."""
        if not self._logged_in:
            return AgentStatus.LOGGED_OUT
        if self._phase is _Phase.RINGING:
            return AgentStatus.RINGING
        if self._phase is _Phase.TALKING:
            return AgentStatus.BUSY
        if self._pause_reason is not None:
            return AgentStatus.PAUSED
        # Wrap-up before the device: the phone often reports INUSE a moment after our hangup,
        # and the agent is in wrap-up either way.
        if self._wrapup_until is not None and now < self._wrapup_until:
            return AgentStatus.WRAPUP
        return self._device_status()

    def _device_status(self) -> AgentStatus:
        if self._device in DEVICE_BUSY:
            return AgentStatus.BUSY
        if self._device in DEVICE_GONE:
            return AgentStatus.UNAVAILABLE
        return AgentStatus.FREE

    def available(self, now: float) -> bool:
        """May a queue ring this agent now?"""
        return self.status(now) is AgentStatus.FREE

    # -- presence, driven by `hotline agent ...` (through the database) --------------------------

    def login(self, now: float) -> list[Transition]:
        self._require(not self._logged_in, "log in", now, "already logged in")
        done = self.settle(now)
        self._logged_in = True
        return done + self._set(now, "login")

    def logout(self, now: float) -> list[Transition]:
        """Allowed at any time once logged in: the call in progress, if any, goes on and ends
        normally; a new login starts unpaused, as a member re-added to app_queue does."""
        self._require(self._logged_in, "log out", now, "not logged in")
        done = self.settle(now)
        self._logged_in = False
        self._pause_reason = None
        return done + self._set(now, "logout")

    def pause(self, reason: str, now: float) -> list[Transition]:
        """Allowed during a call: the agent is then paused instead of free when it ends."""
        self._require(self._logged_in, "pause", now, "not logged in")
        self._require(self._pause_reason is None, "pause", now, f"already paused: {self._pause_reason}")
        done = self.settle(now)
        self._pause_reason = reason
        return done + self._set(now, "pause")

    def unpause(self, now: float) -> list[Transition]:
        self._require(self._pause_reason is not None, "unpause", now, "not paused")
        done = self.settle(now)
        self._pause_reason = None
        return done + self._set(now, "unpause")

    # -- the phone, as Asterisk reports it -------------------------------------------------------

    def device(self, state: str, now: float) -> list[Transition]:
        """A device state from Asterisk: a fact, so never illegal. INUSE or BUSY make the agent
        busy even for a call the engine did not place; UNAVAILABLE (not registered) takes the
        agent out of the queues until the phone registers again."""
        state = state.upper()
        if state not in DEVICE_STATES:
            raise InvalidEvent(f"agent {self.name}: unknown device state {state!r}")
        done = self.settle(now)
        self._device = state
        return done + self._set(now, f"device:{state}")

    # -- the engine's own call to the agent ------------------------------------------------------

    def in_wrapup(self, now: float) -> bool:
        return self.status(now) is AgentStatus.WRAPUP

    def ringing(self, now: float, queue: str, *, cut_wrapup: bool = False) -> list[Transition]:
        """The engine rings this agent for a caller of `queue`; `cut_wrapup`: in wrap-up too, which
        ends it (a caller the agent transferred rung back to them)."""
        self._require(self.available(now) or cut_wrapup and self.in_wrapup(now), "ring", now, "not available")
        done = self.settle(now)
        if cut_wrapup:
            self._wrapup_until = None
        self._phase, self._queue = _Phase.RINGING, queue
        return done + self._set(now, "ringing")

    def ring_ended_unanswered(self, now: float) -> list[Transition]:
        """Ring timeout, rejection, or another agent answered first (ringall)."""
        self._require(self._phase is _Phase.RINGING, "end the ring", now, "not ringing")
        done = self.settle(now)
        self._phase, self._queue = _Phase.IDLE, None
        return done + self._set(now, "ring_ended_unanswered")

    def answered(self, now: float) -> list[Transition]:
        self._require(self._phase is _Phase.RINGING, "answer", now, "not ringing")
        done = self.settle(now)
        self._phase = _Phase.TALKING
        return done + self._set(now, "answered")

    def answer_dropped(self, now: float) -> list[Transition]:
        """The agent answered, but the call could not be bridged (the caller hung up that very
        moment): free again at once, no call counted, no wrap-up."""
        self._require(self._phase is _Phase.TALKING, "drop an answer", now, "not on a call")
        done = self.settle(now)
        self._phase, self._queue = _Phase.IDLE, None
        return done + self._set(now, "answer_dropped")

    def adopt_call(self, now: float, queue: str) -> list[Transition]:
        """A restarted daemon found this agent bridged with a caller of `queue`: a fact to take,
        whatever the fresh state said."""
        done = self.settle(now)
        self._phase, self._queue = _Phase.TALKING, queue
        return done + self._set(now, "adopted")

    def call_ended(self, now: float, wrapup_s: float) -> list[Transition]:
        """The bridged call ended: count it for the queue, then wrap-up until now + wrapup_s."""
        self._require(self._phase is _Phase.TALKING, "end a call", now, "not on a call")
        done = self.settle(now)
        queue = self._queue or ""
        self._completed[queue] = self._completed.get(queue, 0) + 1
        self._last_ended[queue] = now
        self._phase, self._queue = _Phase.IDLE, None
        self._wrapup_until = now + wrapup_s if wrapup_s > 0 else None
        return done + self._set(now, "call_ended")

    # -- the one place status changes are recorded -----------------------------------------------

    def settle(self, now: float) -> list[Transition]:
        """The transitions the clock alone made since the last change (wrap-up ending), dated
        when they happened. Every change calls it first, so events come out in time order; the
        caller may also call it whenever it wants them written promptly."""
        until = self._wrapup_until
        if self._recorded is AgentStatus.WRAPUP and until is not None and until <= now:
            return self._set(until, "wrapup_ended")
        return []

    def _set(self, at: float, cause: str) -> list[Transition]:
        new = self.status(at)
        if new is self._recorded:
            return []
        transition = Transition(self.name, self._recorded, new, at, cause)
        self._recorded = new
        log.debug("agent %s: %s -> %s (%s)", self.name, transition.old.value, new.value, cause)
        return [transition]

    def _require(self, ok: bool, action: str, now: float, why: str) -> None:
        if not ok:
            raise IllegalTransition(self.name, action, self.status(now), why)
