"""The closed sets of values the engine records, as the database's checks spell them.

Each is a `StrEnum`, so a value is its database text and a typo is an AttributeError at import,
not a refused batch at run time (migration 001's CHECKs on hops.end_reason and
queue_events.event list the same words).
"""

from __future__ import annotations

import enum


class EndReason(enum.StrEnum):
    """How a hop ended (hops.end_reason)."""

    COMPLETED = "completed"    # talked with an agent, or left the IVR by choice
    ABANDONED = "abandoned"    # the caller hung up before an agent answered
    BUSY = "busy"              # every line of the number was held: 486 before answer
    OVERFLOW = "overflow"      # a queue sent the caller on, and that ended the contact
    TRANSFERRED = "transferred"
    SWITCHED = "switched"      # the talk went on on the customer's video leg
    FAILED = "failed"          # no such number, an error, or the channel vanished unwatched
    CLOSED = "closed"          # outside the hotline's hours
    CALLBACK = "callback"      # the caller asked to be called back, and hung up


class QueueEventKind(enum.StrEnum):
    """A row of queue_events, like a line of app_queue's queue_log."""

    JOIN = "join"
    RING = "ring"
    RING_NOANSWER = "ring_noanswer"
    ANSWER = "answer"
    ABANDON = "abandon"
    OVERFLOW = "overflow"
    EXIT_KEY = "exit_key"
    COMPLETE = "complete"
    TRANSFER = "transfer"
    CALLBACK = "callback"  # the caller left the line asking to be called back (not an abandon)


class Party(enum.StrEnum):
    """Who ended a talk (queue_events.detail of a complete: '<party> hung up')."""

    CALLER = "caller"
    AGENT = "agent"
