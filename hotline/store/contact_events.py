"""The contact-event stream (migrations 029, 030, 032, 035): every step of a contact as one row of
contact_events, written by triggers in the transaction of the step's own row, and its JSON shape.

The shape every receiver gets (and `hotline case events` would print), one object per event:
    {"id": 42, "kind": "answered", "at": "2026-12-02T23:50:01.250Z", "case": 7, "hop": 9,
     "hotline": "support-line", "queue": "support", "agent": "ivanov", "data": {...}}
`id` grows with each event and orders a case's events; `hop` is null for a case's own events
(case_opened, case_reopened, case_closed); `hotline`, `queue`, `agent` are names or null; `data`
holds what the kind adds, keys with no value left out (DATA_KEYS lists them per kind).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# a queue event's numbers, as queue_events has them (which ones each event has: README)
QUEUE_DATA = ("position", "wait_ms", "ring_ms", "talk_ms", "detail", "priority")
# kind -> the keys its data may hold
DATA_KEYS: dict[str, tuple[str, ...]] = {
    "case_opened": ("customer",),
    "case_reopened": (),
    "entered_hotline": ("seq", "channel_kind", "media", "dialled", "caller", "caller_name", "node",
                        "channel_id"),
    "menu_key": ("key", "path"),
    **{kind: QUEUE_DATA for kind in ("queued", "ringing_agent", "ring_no_answer", "answered", "abandoned",
                                     "overflowed", "exited_queue", "talk_ended")},
    "transfer": ("transfer_id", "type", "asked_by", "target", "outcome", "detail"),
    "switch_requested": ("switch_id", "requested_by", "to"),
    "switched": ("switch_id", "from_hop", "to"),
    "callback_requested": ("callback_id", "number", "attempts"),
    "callback_placed": ("callback_id", "number", "attempts", "attempt"),
    "callback_ended": ("callback_id", "number", "attempts", "outcome", "detail"),
    **{kind: ("recording_id", "name", "format") for kind in ("recording_started", "recording_paused",
                                                             "recording_resumed")},
    "recording_stopped": ("recording_id", "name", "format", "state", "duration_ms", "detail"),
    "supervision_started": ("supervision_id", "mode", "supervisor", "asked_by"),
    "supervision_ended": ("supervision_id", "mode", "supervisor", "asked_by", "detail"),
    **{kind: ("participant_id", "invited_by", "node", "channel_id") for kind in ("participant_joined",
                                                                               "participant_left")},
    "note_added": ("note_id", "author", "text"),
    "ended": ("reason", "cause", "cause_text"),
    "case_closed": (),
}
KINDS = tuple(DATA_KEYS)


@dataclass(frozen=True)
class ContactEvent:
    id: int
    case_id: int
    hop_id: int | None
    kind: str
    at: datetime
    hotline: str | None
    queue: str | None
    agent: str | None
    data: dict[str, Any]


COLUMNS = "id, case_id, hop_id, kind, at, hotline, queue, agent, data"


def utc_text(moment: datetime) -> str:
    """2026-12-02T23:50:01.250Z: UTC, milliseconds, whatever the server's time zone."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_json(event: ContactEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "at": utc_text(event.at), "case": event.case_id,
            "hop": event.hop_id, "hotline": event.hotline, "queue": event.queue, "agent": event.agent,
            "data": event.data}


def body(event: ContactEvent) -> bytes:
    """The bytes a webhook POSTs (and signs): the event's JSON, UTF-8, keys in a fixed order."""
    return json.dumps(as_json(event), ensure_ascii=False, separators=(",", ":")).encode()
