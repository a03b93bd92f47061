"""A case's timeline across its legs: hops, queue events, switches and transfers in the order they
happened, as `hotline case show` prints it (plain SQL over cases, hops, queue_events, switches,
switch_refusals, transfers, media_changes, supervisions, recordings, case_notes, survey_answers, holds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, LiteralString, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from hotline.errors import CaseNotFound
from hotline.store.case_notes import Note, notes_of_case
from hotline.store.customer_ratings import Rating, ratings_of_case
from hotline.store.recordings import Pause, Recording, case_recordings, pauses_of

T = TypeVar("T")


@dataclass(frozen=True)
class Moment:
    at: datetime
    hop: int  # the hop's sequence number in its case
    channel: str  # "pstn/audio", "webrtc/video"
    what: str


@dataclass(frozen=True)
class Switch:
    id: int
    from_hop_id: int
    to_hop_id: int | None
    requested_by: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    to_number: str | None = None  # a phone the daemon dialled (migration 026); None: a video link
    outcome: str | None = None  # answered | no_answer | busy | failed; None: ringing, or not known
    outcome_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None

    def moments(self, seq: int, kind: str, channel: dict[int, tuple[int, str]]) -> list[Moment]:
        if self.to_number is None:
            out = [Moment(self.issued_at, seq, kind, f"switch to video asked by {self.requested_by}, "
                                                     f"link valid until {self.expires_at:%H:%M:%S}")]
        else:
            out = [Moment(self.issued_at, seq, kind,
                          f"move to phone asked by {self.requested_by}: calling {self.to_number}")]
            if self.outcome is not None and self.outcome_at is not None and self.outcome != "answered":
                said = phone_outcome_text(self.outcome, self.hangup_cause, self.hangup_cause_text)
                out.append(Moment(self.outcome_at, seq, kind, f"moved to phone: {said}"))
        if self.used_at is not None and self.to_hop_id is not None:
            how = "the phone answered" if self.to_number else "switch link used"
            out.append(Moment(self.used_at, *channel[self.to_hop_id],
                              f"{how}: this leg joined, replacing hop {seq}"))
        return out


def phone_outcome_text(outcome: str, cause: int | None, cause_text: str | None) -> str:
    """'no answer (cause 19 No Answer)': how a dial of the customer's phone ended, in words."""
    said = outcome.replace("_", " ")
    why = " ".join(str(part) for part in (cause, cause_text) if part not in (None, ""))
    return f"{said} (cause {why})" if why and outcome != "answered" else said


@dataclass(frozen=True)
class SwitchRefusal:
    hop_id: int
    reason: str
    refused_at: datetime


@dataclass(frozen=True)
class Participant:
    joined_at: datetime
    left_at: datetime | None
    invited_by: str
    agent: str | None


@dataclass(frozen=True)
class Transfer:
    hop_id: int
    at: datetime
    kind: str
    asked_by: str
    from_queue: str | None
    from_agent: str | None
    target: str
    outcome: str
    detail: str

    def text(self) -> str:
        where = " ".join(f"{label} {name}" for label, name in (("queue", self.from_queue),
                                                                ("agent", self.from_agent)) if name)
        said = f"{self.kind} transfer asked by {self.asked_by}" + (f" from {where}" if where else "")
        return f"{said} to {self.target}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class SupervisionRow:
    """A row of supervisions (migration 031): a supervisor's listen, whisper or barge."""

    hop_id: int | None
    mode: str
    supervisor: str
    agent: str | None
    asked_by: str
    outcome: str
    detail: str
    asked_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    def moments(self, seq: int, channel: str) -> list[Moment]:
        whom = f" with agent {self.agent}" if self.agent else ""
        asked = f"{self.mode} of the talk{whom} by supervisor {self.supervisor}, asked by {self.asked_by}"
        if self.outcome == "refused":
            return [Moment(self.asked_at, seq, channel, f"{asked}: refused ({self.detail})")]
        who = f"supervisor {self.supervisor}"
        # asked_by phone:NAME: the supervisor dialled a feature code, and that call was their leg.
        how = "they dialled in" if self.asked_by.startswith("phone:") else "their phone rang"
        out = [Moment(self.asked_at, seq, channel, f"{asked}: {how}")]
        if self.started_at is not None:
            out.append(Moment(self.started_at, seq, channel, f"{who} in ({self.mode})"))
        if self.ended_at is not None:
            said = "not answered" if self.outcome == "unanswered" else f"{self.mode} ended"
            out.append(Moment(self.ended_at, seq, channel, f"{who}: {said} ({self.detail})"))
        return out


@dataclass(frozen=True)
class MediaChange:
    hop_id: int
    at: datetime
    media: str  # what the leg sends from then on: audio | video

    def text(self) -> str:
        return "camera turned on: video" if self.media == "video" else "camera turned off: audio only"


@dataclass(frozen=True)
class SurveyAnswer:
    """A row of survey_answers (migration 039): a post-call survey's question answered."""

    hop_id: int
    question: int
    score: int
    answered_at: datetime
    agent: str | None

    def text(self) -> str:
        return f"survey question {self.question} answered {self.score} (the talk with {self.agent or '?'})"


@dataclass(frozen=True)
class Hold:
    """A row of holds (migration 042): a leg of the talk on hold, by the agent or the customer."""

    hop_id: int
    held_by: str  # agent | customer
    agent: str | None
    started_at: datetime
    ended_at: datetime | None

    def moments(self, seq: int, channel: str) -> list[Moment]:
        who = f"the agent {self.agent}" if self.held_by == "agent" and self.agent else f"the {self.held_by}"
        out = [Moment(self.started_at, seq, channel, f"put on hold by {who}")]
        if self.ended_at is not None:
            held = (self.ended_at - self.started_at).total_seconds()
            out.append(Moment(self.ended_at, seq, channel, f"hold by {who} ended after {held:.0f} s"))
        return out


Row = dict[str, Any]  # a whole row (`case show --format json` shows every column)


@dataclass(frozen=True)
class CaseTimeline:
    case: Row
    hops: list[Row]
    switches: list[Switch]
    events: list[Row]
    participants: list[Participant]
    refusals: list[SwitchRefusal]
    transfers: list[Transfer]
    media_changes: list[MediaChange]
    supervisions: list[SupervisionRow] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    pauses: dict[int, list[Pause]] = field(default_factory=dict)  # by recording id
    notes: list[Note] = field(default_factory=list)
    survey_answers: list[SurveyAnswer] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)

    def moments(self) -> list[Moment]:
        """Everything that happened to the case, oldest first (same instant: hop order)."""
        channel = {h["id"]: (h["seq"], f"{h['channel_kind']}/{h['media']}") for h in self.hops}
        out: list[Moment] = []
        for h in self.hops:
            out += _hop_moments(h, *channel[h["id"]])
        for e in self.events:
            out.append(Moment(e["at"], *channel[e["hop_id"]], _event_text(e)))
        for s in self.switches:
            out += s.moments(*channel[s.from_hop_id], channel)
        for r in self.refusals:
            out.append(Moment(r.refused_at, *channel[r.hop_id],
                              f"switch to video asked by the caller, refused: {r.reason}"))
        for t in self.transfers:
            out.append(Moment(t.at, *channel[t.hop_id], t.text()))
        for c in self.media_changes:
            out.append(Moment(c.at, *channel[c.hop_id], c.text()))
        for v in self.supervisions:
            out += v.moments(*channel.get(v.hop_id or 0, (0, "supervision")))
        for rec in self.recordings:
            out += _recording_moments(rec, self.pauses.get(rec.id, []), *channel[rec.hop_id])
        for p in self.participants:
            out.append(Moment(p.joined_at, 0, "conference",
                              f"{p.agent or 'a party'} joined, invited by {p.invited_by}"))
            if p.left_at is not None:
                out.append(Moment(p.left_at, 0, "conference", f"{p.agent or 'a party'} left"))
        for n in self.notes:
            out.append(Moment(n.created_at, 0, "note", f"note by {n.author}: {note_line(n.text)}"))
        for answer in self.survey_answers:
            out.append(Moment(answer.answered_at, *channel[answer.hop_id], answer.text()))
        for rating in self.ratings:
            out.append(Moment(rating.rated_at, *channel[rating.hop_id], rating.text()))
        for hold in self.holds:
            out += hold.moments(*channel[hold.hop_id])
        return sorted(out, key=lambda m: (m.at, m.hop))


async def case_timeline(conn: AsyncConnection, case_id: int) -> CaseTimeline:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT c.*, a.name AS last_agent FROM cases c"
                      " LEFT JOIN agents a ON a.id = c.last_agent_id WHERE c.id = %s", (case_id,))
    case = await cur.fetchone()
    if case is None:
        raise CaseNotFound(f"case {case_id} does not exist")
    await cur.execute(
        "SELECT h.*, l.name AS hotline, q.name AS queue, a.name AS agent FROM hops h"
        " LEFT JOIN hotlines l ON l.id = h.hotline_id LEFT JOIN queues q ON q.id = h.queue_id"
        " LEFT JOIN agents a ON a.id = h.agent_id WHERE h.case_id = %s ORDER BY h.seq", (case_id,))
    hops = await cur.fetchall()
    switches = await _all(conn, Switch, "SELECT id, from_hop_id, to_hop_id, requested_by, issued_at,"
                          " expires_at, used_at, to_number, outcome, outcome_at, hangup_cause,"
                          " hangup_cause_text FROM switches WHERE case_id = %s ORDER BY id", case_id)
    await cur.execute(
        "SELECT e.*, q.name AS queue, a.name AS agent FROM queue_events e JOIN queues q ON q.id = e.queue_id"
        " LEFT JOIN agents a ON a.id = e.agent_id WHERE e.case_id = %s ORDER BY e.id", (case_id,))
    events = await cur.fetchall()
    participants = await _all(conn, Participant, "SELECT p.joined_at, p.left_at, p.invited_by,"
                              " a.name AS agent FROM case_participants p LEFT JOIN agents a"
                              " ON a.id = p.agent_id WHERE p.case_id = %s ORDER BY p.id", case_id)
    refusals = await _all(conn, SwitchRefusal, "SELECT hop_id, reason, refused_at FROM switch_refusals"
                          " WHERE case_id = %s ORDER BY refused_at", case_id)
    transfers = await _all(conn, Transfer, "SELECT t.hop_id, t.at, t.kind, t.asked_by, q.name AS from_queue,"
                           " a.name AS from_agent, t.target, t.outcome, t.detail FROM transfers t"
                           " LEFT JOIN queues q ON q.id = t.from_queue_id LEFT JOIN agents a"
                           " ON a.id = t.from_agent_id WHERE t.case_id = %s ORDER BY t.id", case_id)
    changes = await _all(conn, MediaChange, "SELECT hop_id, at, media FROM media_changes WHERE case_id = %s"
                         " ORDER BY id", case_id)
    supervisions = await _all(conn, SupervisionRow, "SELECT s.hop_id, s.mode, s.supervisor, a.name AS agent,"
                              " s.asked_by, s.outcome, s.detail, s.asked_at, s.started_at, s.ended_at"
                              " FROM supervisions s LEFT JOIN agents a ON a.id = s.agent_id"
                              " WHERE s.case_id = %s ORDER BY s.id", case_id)
    recorded = await case_recordings(conn, case_id)
    pauses = await pauses_of(conn, [r.id for r in recorded])
    answers = await _all(conn, SurveyAnswer, "SELECT s.hop_id, s.question, s.score, s.answered_at,"
                         " a.name AS agent FROM survey_answers s LEFT JOIN agents a ON a.id = s.agent_id"
                         " WHERE s.case_id = %s ORDER BY s.answered_at, s.question", case_id)
    holds = await _all(conn, Hold, "SELECT h.hop_id, h.held_by, a.name AS agent, h.started_at, h.ended_at"
                       " FROM holds h LEFT JOIN agents a ON a.id = h.agent_id WHERE h.case_id = %s"
                       " ORDER BY h.started_at, h.id", case_id)
    return CaseTimeline(case, hops, switches, events, participants, refusals, transfers, changes,
                        supervisions, recorded, pauses, await notes_of_case(conn, case_id), answers,
                        await ratings_of_case(conn, case_id), holds)


def note_line(text: str) -> str:
    """A note on one line of the timeline: its line breaks and tabs shown as ` / ` and a space."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip()).replace("\t", " ")


async def _all(conn: AsyncConnection, kind: type[T], query: LiteralString, case_id: int) -> list[T]:
    cur = conn.cursor(row_factory=class_row(kind))
    await cur.execute(query, (case_id,))
    return await cur.fetchall()


def _hop_moments(h: Row, seq: int, channel: str) -> list[Moment]:
    caller = h["caller_num"] or "anonymous"
    where = f" (hotline {h['hotline']})" if h["hotline"] else ""
    out = [Moment(h["entered_at"], seq, channel, f"entered: {caller} dialled {h['dialled']}{where}")]
    # The hop keeps the keys in order (ivr_path) but not when each was pressed: listed after the
    # entry, in the order pressed.
    keys = h["ivr_path"] or ""
    out += [Moment(h["entered_at"], seq, channel, f"menu key {key} pressed (key {i} of {len(keys)})")
            for i, key in enumerate(keys, 1)]
    if h["ended_at"] is not None:
        cause = ""
        if h["hangup_cause"]:
            cause = f" (cause {h['hangup_cause']} {h['hangup_cause_text'] or ''}".rstrip() + ")"
        out.append(Moment(h["ended_at"], seq, channel, f"ended {h['end_reason']}{cause}"))
    return out


def _recording_moments(r: Recording, pauses: list[Pause], seq: int, channel: str) -> list[Moment]:
    out = [Moment(r.started_at, seq, channel, f"recording #{r.id} started ({r.agent or 'no agent'})")]
    for p in pauses:
        out.append(Moment(p.paused_at, seq, channel, f"recording #{r.id} paused by {p.asked_by or '?'}"))
        if p.resumed_at is not None:
            out.append(Moment(p.resumed_at, seq, channel, f"recording #{r.id} resumed"))
    if r.ended_at is not None:
        length = f": {r.duration_ms / 1000:.1f} s recorded" if r.duration_ms is not None else ""
        out.append(Moment(r.ended_at, seq, channel, f"recording #{r.id} {r.state}{length}"))
    return out


def _event_text(e: Row) -> str:
    text = f"queue {e['queue']}: {e['event']}"
    if e["agent"]:
        text += f" {e['agent']}"
    details = [f"{label} {e[key] / 1000:.1f} s" for key, label in
               (("wait_ms", "waited"), ("ring_ms", "rang"), ("talk_ms", "talked")) if e[key] is not None]
    if e["position"] is not None:
        details.insert(0, f"position {e['position']}")
    if e["priority"] is not None:
        details.insert(0, f"priority {e['priority']}")
    if e["detail"]:
        details.append(e["detail"])
    return text + (f" ({', '.join(details)})" if details else "")
