"""A leg's hop as the store knows it: what is known when it enters (NewHop), and its row (Hop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# As migration 001's check on hops.channel_kind spells them.
CHANNEL_KINDS = frozenset({"pstn", "sip", "webrtc"})


@dataclass(frozen=True)
class NewHop:
    """What is known of a leg when it enters: enough to open its hop."""

    node: str
    channel_id: str
    channel_name: str
    channel_kind: str
    media: str
    dialled: str
    dialled_e164: str | None
    caller_num: str
    caller_name: str
    entered_at: datetime | None = None
    number_id: int | None = None
    hotline_id: int | None = None


@dataclass(frozen=True)
class Hop:
    id: int
    case_id: int
    seq: int
    node: str
    channel_id: str
    channel_kind: str
    dialled: str
    dialled_e164: str | None
    caller_num: str
    entered_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    hangup_cause: int | None
    number_id: int | None = None
    line: int | None = None
    hotline_id: int | None = None
    queue_id: int | None = None
    agent_id: int | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    media: str = "audio"
    case_last_agent_id: int | None = None  # a continued case: the agent who last talked with them
    priority: int | None = None  # the priority of its last queue join (None: never queued)
    language: str | None = None  # its prompts' language (migration 038), where the query reads it
