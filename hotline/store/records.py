"""What calls record, as the database applies it: one JSON object per row change, in order.

A record is what record_call_events() (migrations 006 and 014) takes in a jsonb array; its "k"
says which kind. Calls never write these themselves: their state machine's one funnel submits
them to the write-behind (hotline.store.write_behind), which applies a batch in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from hotline.store.hops import CHANNEL_KINDS, NewHop

# As the check on hops.end_reason spells them (migration 001, 'callback' added by 020;
# hotline.engine.outcomes.EndReason is the engine's).
END_REASONS = frozenset({"completed", "abandoned", "busy", "overflow", "transferred", "switched",
                         "failed", "closed", "callback"})

Record = dict[str, object]
RECORD_SQL = "SELECT record_call_events(%s)"
BATCH_SQL = "SELECT record_call_batch(%s, %s, %s, %s)"


@dataclass(frozen=True)
class QueueEvent:
    """A row of queue_events, like a line of app_queue's queue_log."""

    queue_id: int
    case_id: int
    hop_id: int
    event: str  # join, ring, ring_noanswer, answer, abandon, overflow, exit_key, complete
    agent_id: int | None = None
    position: int | None = None
    wait_ms: int | None = None
    ring_ms: int | None = None
    talk_ms: int | None = None
    detail: str = ""
    at: datetime | None = None  # when it happened (None: when written); written later in batches
    priority: int | None = None  # a join: the priority the caller waits with (also the hop's)


@dataclass(frozen=True)
class TransferRow:
    """A row of transfers: who asked to pass which talk where, and what came of it."""

    hop_id: int
    case_id: int
    request: str | None
    kind: str  # blind | attended
    asked_by: str  # cli, phone
    from_queue_id: int | None
    from_agent_id: int | None
    target: str  # queue:NAME, hotline:NAME
    outcome: str  # transferred | refused
    detail: str = ""
    at: datetime | None = None


def queue_event_record(event: QueueEvent) -> Record:
    """One queue_events row; the database applies with it what it changes on the hop (join:
    the queue and queued_at; answer: the agent and answered_at), so it never holds one without
    the other."""
    return {"k": "event", "at": _iso(event.at), "queue": event.queue_id, "case": event.case_id,
            "hop": event.hop_id, "agent": event.agent_id, "event": str(event.event),
            "position": event.position, "wait_ms": event.wait_ms, "ring_ms": event.ring_ms,
            "talk_ms": event.talk_ms, "detail": event.detail, "priority": event.priority}


def ivr_digit_record(hop_id: int, digit: str, language: str | None = None) -> Record:
    """A key pressed in a menu, appended to the hop's IVR path; a language key's sets the hop's
    language too (migration 038)."""
    record: Record = {"k": "digit", "hop": hop_id, "digit": digit}
    if language is not None:
        record["language"] = language
    return record


def language_record(hop_id: int, language: str) -> Record:
    """The language the leg's prompts play in (migration 038)."""
    return {"k": "language", "hop": hop_id, "language": language}


def close_hop_record(hop_id: int, end_reason: str, *, cause: int | None = None,
                     cause_text: str | None = None, at: datetime | None = None) -> Record:
    """End a hop once (a second close changes nothing); its case closes with its last live hop."""
    if end_reason not in END_REASONS:
        raise ValueError(f"end reason {end_reason!r} is not one of {sorted(END_REASONS)}")
    return {"k": "close", "hop": hop_id, "at": _iso(at), "reason": str(end_reason), "cause": cause,
            "cause_text": cause_text}


def talk_taken_over_record(hop_id: int, queue_id: int | None, agent_id: int | None,
                           at: datetime | None = None) -> Record:
    """A video leg in the agent's bridge goes on with the talk of the leg it replaced: its hop is
    answered by that leg's agent, in that leg's queue (the switch)."""
    return {"k": "talk", "hop": hop_id, "queue": queue_id, "agent": agent_id, "at": _iso(at)}


def refused_record(hop: NewHop, customer_key: str, end_reason: str, cause: int, cause_text: str,
                   at: datetime | None = None) -> Record:
    """A contact refused before it was answered (busy): its case and its ended hop, at once."""
    if hop.channel_kind not in CHANNEL_KINDS:
        raise ValueError(f"channel kind {hop.channel_kind!r} is not one of {sorted(CHANNEL_KINDS)}")
    return {"k": "refused", "at": _iso(at), "key": customer_key, "reason": str(end_reason),
            "cause": cause, "cause_text": cause_text, "node": hop.node, "channel_id": hop.channel_id,
            "channel_name": hop.channel_name, "channel_kind": hop.channel_kind, "media": hop.media,
            "dialled": hop.dialled, "dialled_e164": hop.dialled_e164, "caller_num": hop.caller_num,
            "caller_name": hop.caller_name, "entered_at": _iso(hop.entered_at),
            "number": hop.number_id, "hotline": hop.hotline_id}


def late_hop_record(hop: NewHop, customer_key: str) -> Record:
    """A leg's hop written after the leg, when the database was away while it lasted: a new case
    and its hop, once per channel (a hop that was written after all, its answer lost, stays the
    one). The records that follow name it by its channel (`by_channel`)."""
    if hop.channel_kind not in CHANNEL_KINDS:
        raise ValueError(f"channel kind {hop.channel_kind!r} is not one of {sorted(CHANNEL_KINDS)}")
    return {"k": "late", "key": customer_key, "node": hop.node, "channel_id": hop.channel_id,
            "channel_name": hop.channel_name, "channel_kind": hop.channel_kind, "media": hop.media,
            "dialled": hop.dialled, "dialled_e164": hop.dialled_e164, "caller_num": hop.caller_num,
            "caller_name": hop.caller_name, "entered_at": _iso(hop.entered_at),
            "number": hop.number_id, "hotline": hop.hotline_id}


def by_channel(record: Record, node: str, channel_id: str) -> Record:
    """`record` of a hop written late (`late_hop_record`): it names the hop by its leg's channel,
    and its case through the hop, since their ids are the database's to give."""
    named = {**record, "hop": None, "node": node, "channel_id": channel_id}
    if "case" in named:
        named["case"] = None
    return named


def participant_joined_record(case_id: int, agent_id: int | None, node: str, channel_id: str,
                              invited_by: str, at: datetime | None = None) -> Record:
    """A party brought into a case's talk (a conference) joined its bridge."""
    return {"k": "joined", "case": case_id, "agent": agent_id, "node": node, "channel_id": channel_id,
            "invited_by": invited_by, "at": _iso(at)}


def participant_left_record(node: str, channel_id: str, at: datetime | None = None) -> Record:
    return {"k": "left", "node": node, "channel_id": channel_id, "at": _iso(at)}


def media_record(hop_id: int, media: str, at: datetime | None = None) -> Record:
    """The leg's media changed during the call (a browser's camera turned on or off): a row of
    media_changes, and the hop's media follows (migration 023)."""
    return {"k": "media", "hop": hop_id, "media": media, "at": _iso(at)}


def survey_record(hop_id: int, queue_id: int, agent_id: int | None, questions: int,
                  at: datetime | None = None) -> Record:
    """A survey begun after the hop's talk (migration 039): the talk's queue and agent."""
    return {"k": "survey", "hop": hop_id, "queue": queue_id, "agent": agent_id, "questions": questions,
            "at": _iso(at)}


def survey_answer_record(hop_id: int, question: int, score: int, at: datetime | None = None) -> Record:
    """A question of the hop's survey answered with a score 1-5 (migration 039)."""
    return {"k": "survey_answer", "hop": hop_id, "question": question, "score": score, "at": _iso(at)}


def transfer_record(t: TransferRow) -> Record:
    """A transfer asked of a call's talk: done or refused, one row of transfers (migration 019)."""
    return {"k": "transfer", "hop": t.hop_id, "case": t.case_id, "at": _iso(t.at), "request": t.request,
            "kind": t.kind, "asked_by": t.asked_by, "from_queue": t.from_queue_id,
            "from_agent": t.from_agent_id, "target": t.target, "outcome": t.outcome, "detail": t.detail}


@dataclass(frozen=True)
class RecordingRow:
    """A row of recordings (migration 030): one talk segment's bridge recording, begun."""

    name: str
    hop_id: int
    agent_id: int | None
    queue_id: int | None
    fmt: str
    path: str
    at: datetime | None = None


def recording_started_record(r: RecordingRow) -> Record:
    return {"k": "rec_start", "hop": r.hop_id, "name": r.name, "agent": r.agent_id, "queue": r.queue_id,
            "format": r.fmt, "path": r.path, "at": _iso(r.at)}


def recording_paused_record(name: str, asked_by: str, at: datetime | None = None) -> Record:
    return {"k": "rec_pause", "name": name, "asked_by": asked_by, "at": _iso(at)}


def recording_resumed_record(name: str, at: datetime | None = None) -> Record:
    return {"k": "rec_resume", "name": name, "at": _iso(at)}


def recording_ended_record(name: str, failed: str | None = None, at: datetime | None = None) -> Record:
    """The recording's end: done, or failed (`failed` says why: Asterisk refused to start it)."""
    return {"k": "rec_end", "name": name, "failed": failed, "at": _iso(at)}


async def write_records(conn: AsyncConnection, records: list[Record]) -> int:
    """Apply `records` in order, in one statement; returns how many hops they closed."""
    cur = await conn.execute(RECORD_SQL, (Jsonb(records),))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def write_numbered_batch(conn: AsyncConnection, writer: UUID, node: str, batch_no: int,
                               records: list[Record]) -> bool:
    """Apply `records` as `writer`'s batch `batch_no`, unless that batch was applied already (a
    retry after a lost reply); returns whether it was applied now (migration 010)."""
    cur = await conn.execute(BATCH_SQL, (writer, node, batch_no, Jsonb(records)))
    row = await cur.fetchone()
    return bool(row and row[0])


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def hold_record(hop_id: int, held_by: str, queue_id: int | None, agent_id: int | None,
                at: datetime | None = None) -> Record:
    """A leg of the hop's talk put on hold (migration 042): `held_by` agent | customer."""
    return {"k": "hold", "hop": hop_id, "by": held_by, "queue": queue_id, "agent": agent_id, "at": _iso(at)}


def hold_end_record(hop_id: int, held_by: str, at: datetime | None = None) -> Record:
    """The hold `held_by` put on the hop's talk is over (migration 042)."""
    return {"k": "hold_end", "hop": hop_id, "by": held_by, "at": _iso(at)}
