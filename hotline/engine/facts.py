"""What a call records, as facts of its state machine's transitions.

A fact knows what happened but not always where to write it: a call whose hop could not be
opened (the database was away when it came) still records its queue events and keys; they wait
for the hop and are written behind it, in order, once it exists. `record(hop)` turns a fact into
the store's record for that hop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hotline.engine.outcomes import EndReason, QueueEventKind
from hotline.store.hops import Hop, NewHop
from hotline.store.records import (
    QueueEvent,
    Record,
    RecordingRow,
    TransferRow,
    close_hop_record,
    hold_end_record,
    hold_record,
    ivr_digit_record,
    language_record,
    media_record,
    queue_event_record,
    recording_ended_record,
    recording_paused_record,
    recording_resumed_record,
    recording_started_record,
    refused_record,
    survey_answer_record,
    survey_record,
    talk_taken_over_record,
    transfer_record,
)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QueueStep:
    """A queue_events row. `on_hop`: the visit's hop when it is not the call's own (a talk a
    video leg took over goes on being recorded on the phone leg's hop, where it began)."""

    queue_id: int
    event: QueueEventKind
    agent_id: int | None = None
    position: int | None = None
    wait_ms: int | None = None
    ring_ms: int | None = None
    talk_ms: int | None = None
    detail: str = ""
    at: datetime = field(default_factory=now)
    on_hop: Hop | None = None
    priority: int | None = None  # a join: the caller's priority in the queue

    def record(self, hop: Hop) -> Record:
        hop = self.on_hop or hop
        return queue_event_record(QueueEvent(
            queue_id=self.queue_id, case_id=hop.case_id, hop_id=hop.id, event=self.event,
            agent_id=self.agent_id, position=self.position, wait_ms=self.wait_ms, ring_ms=self.ring_ms,
            talk_ms=self.talk_ms, detail=self.detail, at=self.at, priority=self.priority))


# Keys recorded per leg: a way through menus takes a handful; a caller flooding keys (2000 SIP
# INFOs in a few seconds, or a key held down) must not grow a hop's IVR path without limit.
KEYS_RECORDED_PER_LEG = 64


@dataclass(frozen=True)
class KeyPressed:
    """A key the caller pressed in a menu or to leave a queue: appended to the hop's IVR path
    (the first KEYS_RECORDED_PER_LEG of a leg; hop_keeper drops the rest). A `language:LANG` key
    also sets the hop's language (and says so in its menu_key contact event)."""

    digit: str
    language: str | None = None

    def record(self, hop: Hop) -> Record:
        return ivr_digit_record(hop.id, self.digit, self.language)


@dataclass(frozen=True)
class LanguageSet:
    """The language the leg's prompts play in, set as it entered (the number's or hotline's)."""

    language: str

    def record(self, hop: Hop) -> Record:
        return language_record(hop.id, self.language)


@dataclass(frozen=True)
class TalkTakenOver:
    """This (video) leg went on with the talk of the leg it replaced: answered by its agent."""

    queue_id: int | None
    agent_id: int | None
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return talk_taken_over_record(hop.id, self.queue_id, self.agent_id, self.at)


@dataclass(frozen=True)
class HopEnded:
    """The leg is gone: its hop closes with the reason the state machine decided and the cause
    Asterisk gave."""

    reason: EndReason
    cause: int | None = None
    cause_text: str | None = None
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return close_hop_record(hop.id, self.reason, cause=self.cause, cause_text=self.cause_text,
                                at=self.at)


@dataclass(frozen=True)
class Refused:
    """A contact refused before answer (busy): it never had a hop, so it records its case and
    its ended hop at once, needing none."""

    hop: NewHop
    customer_key: str
    reason: EndReason
    cause: int
    cause_text: str
    at: datetime = field(default_factory=now)

    def record(self) -> Record:
        return refused_record(self.hop, self.customer_key, self.reason, self.cause, self.cause_text,
                              self.at)


@dataclass(frozen=True)
class TransferNoted:
    """A transfer asked of the call's talk, done or refused (a row of transfers), on the call's own
    hop (a talk a video leg took over is transferred on the video leg's hop; one done clears the
    hop's agent)."""

    request: str | None
    asked_by: str
    target: str
    outcome: str  # transferred | refused | consulting | cancelled | unanswered
    detail: str = ""
    kind: str = "blind"
    from_queue_id: int | None = None
    from_agent_id: int | None = None
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return transfer_record(TransferRow(
            hop_id=hop.id, case_id=hop.case_id, request=self.request, kind=self.kind,
            asked_by=self.asked_by, from_queue_id=self.from_queue_id, from_agent_id=self.from_agent_id,
            target=self.target, outcome=self.outcome, detail=self.detail, at=self.at))


@dataclass(frozen=True)
class MediaChanged:
    """The leg's media changed while it lived: a browser's camera turned on (video) or off (audio)."""

    media: str  # audio | video
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return media_record(hop.id, self.media, self.at)


@dataclass(frozen=True)
class RecordingStarted:
    """The talk's bridge is being recorded as `name` (hotline.engine.recording), on the call's own
    hop: each leg's talk (a switch's video leg, the next agent after a transfer) is a segment."""

    name: str
    agent_id: int | None
    queue_id: int | None
    fmt: str
    path: str
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return recording_started_record(RecordingRow(self.name, hop.id, self.agent_id, self.queue_id,
                                                     self.fmt, self.path, self.at))


@dataclass(frozen=True)
class RecordingPaused:
    name: str
    asked_by: str
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return recording_paused_record(self.name, self.asked_by, self.at)


@dataclass(frozen=True)
class RecordingResumed:
    name: str
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return recording_resumed_record(self.name, self.at)


@dataclass(frozen=True)
class RecordingEnded:
    name: str
    failed: str | None = None  # why Asterisk would not record (the row says failed)
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return recording_ended_record(self.name, self.failed, self.at)


@dataclass(frozen=True)
class SurveyBegun:
    """The talk's agent hung up in a queue with a survey: the caller is asked its questions."""

    queue_id: int
    agent_id: int | None
    questions: int
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return survey_record(hop.id, self.queue_id, self.agent_id, self.questions, self.at)


@dataclass(frozen=True)
class SurveyAnswered:
    """The caller answered question `question` (1 or 2) of the survey with `score` (1-5)."""

    question: int
    score: int
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return survey_answer_record(hop.id, self.question, self.score, self.at)


@dataclass(frozen=True)
class HoldStarted:
    """A leg of the talk went on hold (hotline.engine.holds): `held_by` agent | customer, with
    the talk's queue and agent."""

    held_by: str
    queue_id: int | None
    agent_id: int | None
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return hold_record(hop.id, self.held_by, self.queue_id, self.agent_id, self.at)


@dataclass(frozen=True)
class HoldEnded:
    """The hold `held_by` put on the talk is over: taken off, or the talk ended."""

    held_by: str
    at: datetime = field(default_factory=now)

    def record(self, hop: Hop) -> Record:
        return hold_end_record(hop.id, self.held_by, self.at)


RecordingFact = RecordingStarted | RecordingPaused | RecordingResumed | RecordingEnded
Fact = (QueueStep | KeyPressed | LanguageSet | TalkTakenOver | HopEnded | Refused | TransferNoted
        | MediaChanged | RecordingFact | SurveyBegun | SurveyAnswered | HoldStarted | HoldEnded)
