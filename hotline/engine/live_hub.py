"""The in-process hub the pages' live streams read: calls and the live publisher put events in,
each open page takes them out of a small queue of its own.

A call's task never waits here: `publish` only appends to the queues of the subscribers of the
event's topic. A page that reads slowly loses its oldest events (its queue is bounded and drops
from the front), never slows a call down. Topics: `agent:NAME` (that agent's screen pop) and
`wallboard` (the live queue picture changed).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

log = logging.getLogger(__name__)

WALLBOARD = "wallboard"
# Per page: a ring, its answer and a few more; a page this far behind wants the latest ones.
SUBSCRIBER_QUEUE = 32

Event = dict[str, object]


def agent_topic(agent: str) -> str:
    return f"agent:{agent}"


class Subscription:
    """One page's queue: `get` waits for the next event, None once the hub or the page closed it."""

    def __init__(self, hub: LiveHub, topic: str, size: int) -> None:
        self.hub = hub
        self.topic = topic
        self.events: deque[Event] = deque(maxlen=size)
        self.dropped = 0  # events lost to a full queue
        self.closed = False
        self._ready = asyncio.Event()

    def put(self, event: Event) -> None:
        if len(self.events) == self.events.maxlen:
            self.dropped += 1  # the deque drops the oldest itself
        self.events.append(event)
        self._ready.set()

    async def get(self, timeout: float | None = None) -> Event | None:
        """The oldest event kept; None when closed, or when `timeout` passed with none."""
        if not self.events and not self.closed:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        if self.closed:
            return None
        return self.events.popleft() if self.events else None

    def close(self) -> None:
        """Idempotent: the hub forgets it, and a `get` waiting ends."""
        self.closed = True
        self.hub.unsubscribe(self)
        self._ready.set()


@dataclass
class LiveHub:
    size: int = SUBSCRIBER_QUEUE
    _topics: dict[str, set[Subscription]] = field(default_factory=dict)
    closed: bool = False

    def subscribe(self, topic: str) -> Subscription:
        subscription = Subscription(self, topic, self.size)
        if self.closed:
            subscription.closed = True
            return subscription
        self._topics.setdefault(topic, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._topics.get(subscription.topic)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._topics[subscription.topic]

    def subscribers(self, topic: str) -> int:
        return len(self._topics.get(topic, ()))

    def publish(self, topic: str, event: Event) -> None:
        """Never blocks and never raises for a subscriber: the caller is a call's task."""
        for subscription in list(self._topics.get(topic, ())):
            subscription.put(event)

    def close(self) -> None:
        """The daemon stops: every stream ends (its page reconnects to the next daemon)."""
        self.closed = True
        for subscribers in list(self._topics.values()):
            for subscription in list(subscribers):
                subscription.close()


# -- the screen pop's events, as the call publishes them -------------------------------------------

RINGING, ANSWERED, GONE = "ringing", "answered", "gone"


@dataclass(frozen=True)
class RingNews:
    """What a queue knows when it rings an agent for a caller."""

    agent: str
    leg: str  # the agent's ringing channel: answered and gone name the same ring
    case_id: int | None
    hop_id: int | None
    queue: str
    caller: str
    caller_name: str
    waiting_since: float  # epoch seconds: when the caller joined the line
    keys: str = ""  # the menu keys the caller pressed on this leg
    # Why this agent's phone rings: a queue's ring, a consult (an attended transfer's target), a
    # blind transfer to this agent, or a conference invitation; and who passes the caller on.
    kind: str = "queue"
    passed_by: str = ""


RING_KINDS = ("queue", "consult", "transfer", "conference")


def ring_event(news: RingNews, state: str, detail: str = "") -> Event:
    """ringing, answered or gone; `detail` says why gone (no answer, answered elsewhere...)."""
    event: Event = {"state": state, "agent": news.agent, "ring": news.leg, "case": news.case_id,
                    "hop": news.hop_id, "queue": news.queue, "caller": news.caller,
                    "caller_name": news.caller_name, "keys": news.keys, "kind": news.kind,
                    "waiting_since": datetime.fromtimestamp(news.waiting_since, UTC).isoformat(),
                    "at": datetime.now(UTC).isoformat()}
    if news.passed_by:
        event["passed_by"] = news.passed_by
    if detail:
        event["detail"] = detail
    return event


def sse_frame(kind: str, event: Event | str) -> bytes:
    """One Server-Sent Event: `event: KIND` and its JSON on one data line (JSON has no newline)."""
    data = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"), default=_jsonable)
    return f"event: {kind}\ndata: {data}\n\n".encode()


def _jsonable(value: object) -> object:
    """Rows' datetimes as ISO 8601, their numerics (a service level) as numbers."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
