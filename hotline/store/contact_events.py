"""The contact-event stream (migrations 029, 030, 032, 035, 037, 038, 039, 042): every step of a
contact as one row of contact_events, written by triggers in the transaction of the step's own row,
and its JSON shape.

The shape every receiver gets (and `hotline events show CASE` prints), one object per event:
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

from psycopg import AsyncConnection

# a queue event's numbers, as queue_events has them (which ones each event has: README)
QUEUE_DATA = ("position", "wait_ms", "ring_ms", "talk_ms", "detail", "priority")
# kind -> the keys its data may hold
DATA_KEYS: dict[str, tuple[str, ...]] = {
    "case_opened": ("customer",),
    "case_reopened": (),
    "entered_hotline": ("seq", "channel_kind", "media", "dialled", "caller", "caller_name", "node",
                        "channel_id"),
    "menu_key": ("key", "path", "language"),  # language: a `language:LANG` key's (migration 038)
    **{kind: QUEUE_DATA for kind in ("queued", "ringing_agent", "ring_no_answer", "answered", "abandoned",
                                     "overflowed", "exited_queue", "talk_ended")},
    "transfer": ("transfer_id", "type", "asked_by", "target", "outcome", "detail"),
    "switch_requested": ("switch_id", "requested_by", "to"),
    "switched": ("switch_id", "from_hop", "to"),
    "switch_failed": ("switch_id", "to", "outcome", "cause", "cause_text"),
    "media_changed": ("media",),
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
    "survey_answered": ("survey_id", "question", "score"),
    "hold_started": ("hold_id", "held_by"),
    "hold_ended": ("hold_id", "held_by", "hold_ms"),
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


@dataclass(frozen=True)
class Pruned:
    """What one pruning pass deleted (or, dry, would delete)."""
    events: int
    deliveries: int  # delivered or failed deliveries of those events, deleted with them
    failed: int  # of those deliveries, the ones given up on
    held: int  # events past the retention still pending for a webhook: kept

    def then(self, batch: Pruned) -> Pruned:
        """This pass's counts followed by the next batch's (whose `held` is the latest)."""
        return Pruned(self.events + batch.events, self.deliveries + batch.deliveries,
                      self.failed + batch.failed, batch.held)


# The events past the retention that no webhook still has to deliver, oldest first.
_OLD = ("SELECT e.id FROM contact_events e"
        " WHERE e.at < now() - make_interval(days => %(days)s)"
        "   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d"
        "                    WHERE d.event_id = e.id AND d.status = 'pending')"
        " ORDER BY e.id LIMIT %(limit)s")
_HELD = ("SELECT count(*) FROM contact_events e"
         " WHERE e.at < now() - make_interval(days => %(days)s)"
         "   AND EXISTS (SELECT 1 FROM webhook_deliveries d"
         "                WHERE d.event_id = e.id AND d.status = 'pending')")


PRUNE_BATCH = 10_000  # events deleted in one statement (one transaction of the caller's)


async def prune(conn: AsyncConnection, days: int, *, limit: int = PRUNE_BATCH,
                dry_run: bool = False) -> Pruned:
    """Delete up to `limit` events older than `days` days, each with its finished deliveries, in
    one statement (the caller commits; call again while `events == limit`). A pending delivery
    keeps its event: pruning never takes an event from a receiver that has not had it."""
    args = {"days": days, "limit": limit}
    cur = await conn.execute(_HELD, args)
    held = (await cur.fetchone() or (0,))[0]
    if dry_run:
        cur = await conn.execute(
            f"WITH old AS ({_OLD}) SELECT (SELECT count(*) FROM old),"
            "  count(d.event_id), count(d.event_id) FILTER (WHERE d.status = 'failed')"
            "  FROM old LEFT JOIN webhook_deliveries d ON d.event_id = old.id", args)
    else:
        # The events' foreign key is checked at the statement's end, after both deletes.
        cur = await conn.execute(
            f"WITH old AS ({_OLD}),"
            " deliveries AS (DELETE FROM webhook_deliveries d USING old WHERE d.event_id = old.id"
            "                RETURNING d.status),"
            " events AS (DELETE FROM contact_events e USING old WHERE e.id = old.id RETURNING e.id)"
            " SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries),"
            "        (SELECT count(*) FROM deliveries WHERE status = 'failed')", args)
    events, deliveries, failed = await cur.fetchone() or (0, 0, 0)
    return Pruned(events=events, deliveries=deliveries, failed=failed, held=held)
