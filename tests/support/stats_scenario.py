"""One fixed day of a small contact centre, written as the engine writes it (a case and its hops,
queue events with the hop's update alongside), with explicit times, for the statistics tests.

Day D is 2026-11-10 in Europe/Moscow (UTC+3 all year). Queue `support` (service level 20 s,
wrap-up 10 s) is the entry of hotline `moscow` (a one-line city number and an 8-800 number) and
of hotline `video` (a video address); `backoffice` (30 s, no wrap-up) takes support's overflow.
Support has a two-question post-call survey; backoffice has none.

| call | what happens |
|---|---|
| C1 | city 10:00:00, ivanov answers after 5 s wait, talks 60 s, hangs up; the caller hangs up |
|    | in the survey at 10:01:09 without a key |
| C7 | city 10:00:30 while C1 holds the only line: refused busy |
| C2 | 8-800 10:05:00, ivanov rings 10 s without answer, petrova answers at 15 s, talks 120 s, |
|    | hangs up; the caller answers the survey 4 (10:07:22) and 5 (10:07:30), leaves 10:07:35 |
| C3 | 8-800 10:10:00, ringall: ivanov answers at 40 s (petrova's ring ends), talks 30 s; |
|    | the customer switches to a WebRTC video leg (a second hop) at 10:11:05 |
| C4 | 8-800 10:10:20 (second line: C3 holds the first), hangs up after 3 s (short abandon) |
| C5 | 8-800 10:30:00, ivanov rung at 40 s, caller hangs up at 50 s |
| C6 | 8-800 10:40:00, overflows after 90 s to backoffice, petrova answers there after 10 s, 20 s talk |
| C8 | city 08:00:00, hotline closed |
| C9 | video 11:00:00, joins support, the leg fails at 11:00:20 with no outcome |
| H  | holds: ivanov holds C1 10:00:20-10:00:35 (15 s) and C1's caller holds 10:00:40-10:00:46 |
|    | (the customer's: not the agent's handling); petrova holds C2 10:05:30-10:06:00 (30 s) and  |
|    | from 10:07:05 until her talk ends at 10:07:15 (10 s), and C6 in backoffice 10:42:00-10:42:05 |
| P  | 8-800 the day before at 23:59:50, petrova answers at 00:00:05 on D (15 s), talks 10 s |

Agents: ivanov logged in 09:00-13:00, paused `training` 09:00-09:15 and `lunch` 12:00-12:30;
petrova logged in 23:00 the day before to 00:30 on D and 10:00-12:00, paused `break` 11:00-11:10.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from hotline.store.records import hold_end_record, hold_record, survey_answer_record, survey_record

from support.provisioning import provision

MSK = ZoneInfo("Europe/Moscow")
DAY = datetime(2026, 11, 10, tzinfo=MSK)
NODE = "lab-node"

PROVISIONING = """
[queues.support]
survey = ["hotline/q1", "hotline/q2"]
service_level = 20
wrapup = 10
overflow = "queue:backoffice"
max_wait = 90

[queues.backoffice]
service_level = 30

[hotlines.moscow]
entry = "queue:support"
time_zone = "Europe/Moscow"

[hotlines.video]
entry = "queue:support"
time_zone = "Europe/Moscow"

[numbers."+74951234567"]
hotline = "moscow"
lines = 1

[numbers."+78005553535"]
hotline = "moscow"

[numbers.video-support]
hotline = "video"

[agents.ivanov]
queues = { support = 0 }

[agents.petrova]
queues = { support = 0, backoffice = 0 }
"""

CITY, TOLLFREE, VIDEO = "+74951234567", "+78005553535", "video-support"


def t(clock: str, day: int = 0) -> datetime:
    """A moment of day D (or `day` days from it), Moscow time."""
    h, m, s = (int(x) for x in clock.split(":"))
    return DAY + timedelta(days=day, hours=h, minutes=m, seconds=s)


@dataclass(frozen=True)
class Leg:
    case_id: int
    hop_id: int


class Centre:
    """Writes contacts as the engine does, at given moments."""

    def __init__(self, db: psycopg.Connection) -> None:
        self.db = db
        self.ids = {kind: dict(db.execute(f"SELECT name, id FROM {kind}").fetchall())
                    for kind in ("queues", "agents", "hotlines")}
        self.numbers = {n: (i, h) for n, i, h in db.execute("SELECT number, id, hotline_id FROM numbers")}
        self._channels = 0

    def call(self, number: str, at: datetime, *, line: int | None = None, kind: str = "pstn",
             media: str = "audio", case: int | None = None, seq: int = 1) -> Leg:
        number_id, hotline_id = self.numbers[number]
        if case is None:
            case = self._one("INSERT INTO cases (customer_key, opened_at) VALUES (%s, %s) RETURNING id",
                             f"+7916000{self._channels:04d}", at)
        self._channels += 1
        hop = self._one(
            "INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, media, dialled, dialled_e164,"
            " number_id, line, hotline_id, caller_num, entered_at) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '', %s) RETURNING id",
            case, seq, NODE, f"chan-{self._channels}", kind, media, number,
            number if number.startswith("+") else None, number_id, line, hotline_id, at)
        return Leg(case, hop)

    def event(self, leg: Leg, queue: str, event: str, at: datetime, agent: str | None = None,
              **fields: Any) -> None:
        """A queue_events row and its hop update in one transaction, as Contacts.queue_event does."""
        queue_id, agent_id = self.ids["queues"][queue], self.ids["agents"].get(agent or "")
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO queue_events (at, queue_id, case_id, hop_id, agent_id, event, position, wait_ms,"
                " ring_ms, talk_ms, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (at, queue_id, leg.case_id, leg.hop_id, agent_id, event, fields.get("position"),
                 fields.get("wait_ms"), fields.get("ring_ms"), fields.get("talk_ms"),
                 fields.get("detail", "")))
            if event == "join":
                self.db.execute("UPDATE hops SET queue_id = %s, queued_at = %s WHERE id = %s",
                                (queue_id, at, leg.hop_id))
            elif event == "answer":
                self.db.execute("UPDATE hops SET agent_id = %s, answered_at = %s WHERE id = %s",
                                (agent_id, at, leg.hop_id))
                self.db.execute("UPDATE cases SET last_agent_id = %s WHERE id = %s", (agent_id, leg.case_id))

    def answered_outside_queues(self, leg: Leg, agent: str, at: datetime) -> None:
        """A leg joined to an agent's existing bridge (a channel switch) is answered with no queue."""
        self.db.execute("UPDATE hops SET agent_id = %s, answered_at = %s WHERE id = %s",
                        (self.ids["agents"][agent], at, leg.hop_id))

    def end(self, leg: Leg, at: datetime, reason: str, cause: int = 16) -> None:
        self.db.execute("UPDATE hops SET ended_at = %s, end_reason = %s, hangup_cause = %s WHERE id = %s",
                        (at, reason, cause, leg.hop_id))
        self.db.execute("UPDATE cases SET status = 'closed', closed_at = %s WHERE id = %s AND NOT EXISTS"
                        " (SELECT 1 FROM hops WHERE case_id = %s AND ended_at IS NULL)",
                        (at, leg.case_id, leg.case_id))

    def survey(self, leg: Leg, queue: str, agent: str, at: datetime,
               *answers: tuple[int, int, datetime]) -> None:
        """The survey after the agent hung up at `at`, and its answers (question, score, when), as the
        engine's records (migration 039's record_call_events)."""
        begun = survey_record(leg.hop_id, self.ids["queues"][queue], self.ids["agents"][agent], 2, at)
        records = [begun, *(survey_answer_record(leg.hop_id, q, score, when) for q, score, when in answers)]
        self.db.execute("SELECT record_call_events(%s)", (Jsonb(records),))

    def hold(self, leg: Leg, queue: str, agent: str, start: datetime, end: datetime,
             held_by: str = "agent") -> None:
        """A hold in the leg's talk and its end, as the engine's records (migration 042)."""
        begun = hold_record(leg.hop_id, held_by, self.ids["queues"][queue], self.ids["agents"][agent], start)
        ended = hold_end_record(leg.hop_id, held_by, end)
        self.db.execute("SELECT record_call_events(%s)", (Jsonb([begun, ended]),))

    def session(self, agent: str, start: datetime, end: datetime) -> None:
        self.db.execute("INSERT INTO agent_sessions (agent_id, logged_in_at, logged_out_at)"
                        " VALUES (%s, %s, %s)", (self.ids["agents"][agent], start, end))

    def pause(self, agent: str, reason: str, start: datetime, end: datetime) -> None:
        self.db.execute("INSERT INTO agent_pauses (agent_id, reason, started_at, ended_at)"
                        " VALUES (%s, %s, %s, %s)", (self.ids["agents"][agent], reason, start, end))

    def _one(self, sql: str, *params: Any) -> int:
        row = self.db.execute(sql, params).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return int(row[0])


def answered_call(c: Centre, leg: Leg, queue: str, joined: datetime, agent: str, wait_s: int, talk_s: int,
                  ring_s: int = 1, by: str = "caller") -> datetime:
    """Join, ring, answer after `wait_s`, complete after `talk_s` (`by` hung up); returns when the
    talk ended."""
    c.event(leg, queue, "join", joined, position=1)
    answered = joined + timedelta(seconds=wait_s)
    c.event(leg, queue, "ring", answered - timedelta(seconds=ring_s), agent)
    c.event(leg, queue, "answer", answered, agent, wait_ms=wait_s * 1000, ring_ms=ring_s * 1000)
    ended = answered + timedelta(seconds=talk_s)
    c.event(leg, queue, "complete", ended, agent, talk_ms=talk_s * 1000, detail=f"{by} hung up")
    return ended


def write_day(dsn: str, db: psycopg.Connection) -> Centre:
    provision(dsn, PROVISIONING)
    c = Centre(db)

    c1 = c.call(CITY, t("10:00:00"), line=1)  # numbers with unlimited lines take none
    c1_talk_end = answered_call(c, c1, "support", t("10:00:00"), "ivanov", 5, 60, ring_s=4, by="agent")
    c.survey(c1, "support", "ivanov", c1_talk_end)
    c.hold(c1, "support", "ivanov", t("10:00:20"), t("10:00:35"))
    c.hold(c1, "support", "ivanov", t("10:00:40"), t("10:00:46"), held_by="customer")
    c.end(c1, t("10:01:09"), "completed")

    c7 = c.call(CITY, t("10:00:30"), line=None)
    c.end(c7, t("10:00:30"), "busy", cause=17)

    c2 = c.call(TOLLFREE, t("10:05:00"))
    c.event(c2, "support", "join", t("10:05:00"), position=1)
    c.event(c2, "support", "ring", t("10:05:01"), "ivanov")
    c.event(c2, "support", "ring_noanswer", t("10:05:11"), "ivanov", ring_ms=10_000, detail="ring timeout")
    c.event(c2, "support", "ring", t("10:05:12"), "petrova")
    c.event(c2, "support", "answer", t("10:05:15"), "petrova", wait_ms=15_000, ring_ms=3000)
    c.hold(c2, "support", "petrova", t("10:05:30"), t("10:06:00"))
    c.hold(c2, "support", "petrova", t("10:07:05"), t("10:07:15"))  # closed with the talk
    c.event(c2, "support", "complete", t("10:07:15"), "petrova", talk_ms=120_000, detail="agent hung up")
    c.survey(c2, "support", "petrova", t("10:07:15"), (1, 4, t("10:07:22")), (2, 5, t("10:07:30")))
    c.end(c2, t("10:07:35"), "completed")

    c3 = c.call(TOLLFREE, t("10:10:00"))
    c.event(c3, "support", "join", t("10:10:00"), position=1)
    c.event(c3, "support", "ring", t("10:10:30"), "ivanov")
    c.event(c3, "support", "ring", t("10:10:30"), "petrova")
    # ringall: the engine ends the other agent's ring before it writes the answer
    c.event(c3, "support", "ring_noanswer", t("10:10:40"), "petrova", ring_ms=10_000, detail="ring timeout")
    c.event(c3, "support", "answer", t("10:10:40"), "ivanov", wait_ms=40_000, ring_ms=10_000)
    c3_video = c.call(VIDEO, t("10:11:05"), kind="webrtc", media="video", case=c3.case_id, seq=2)
    c.answered_outside_queues(c3_video, "ivanov", t("10:11:06"))
    c.event(c3, "support", "complete", t("10:11:10"), "ivanov", talk_ms=30_000, detail="caller hung up")
    c.end(c3, t("10:11:10"), "switched")
    c.end(c3_video, t("10:15:00"), "completed")

    c4 = c.call(TOLLFREE, t("10:10:20"))
    c.event(c4, "support", "join", t("10:10:20"), position=1)
    c.event(c4, "support", "abandon", t("10:10:23"), position=1, wait_ms=3000)
    c.end(c4, t("10:10:23"), "abandoned")

    c5 = c.call(TOLLFREE, t("10:30:00"))
    c.event(c5, "support", "join", t("10:30:00"), position=1)
    c.event(c5, "support", "ring", t("10:30:40"), "ivanov")
    c.event(c5, "support", "ring_noanswer", t("10:30:50"), "ivanov", ring_ms=10_000, detail="caller gone")
    c.event(c5, "support", "abandon", t("10:30:50"), position=1, wait_ms=50_000)
    c.end(c5, t("10:30:50"), "abandoned")

    c6 = c.call(TOLLFREE, t("10:40:00"))
    c.event(c6, "support", "join", t("10:40:00"), position=1)
    c.event(c6, "support", "overflow", t("10:41:30"), wait_ms=90_000, detail="queue:backoffice")
    c6_talk_end = answered_call(c, c6, "backoffice", t("10:41:30"), "petrova", 10, 20)
    c.hold(c6, "backoffice", "petrova", t("10:42:00"), t("10:42:05"))
    c.end(c6, c6_talk_end, "completed")

    c8 = c.call(CITY, t("08:00:00"), line=1)
    c.end(c8, t("08:00:05"), "closed")

    c9 = c.call(VIDEO, t("11:00:00"), kind="sip", media="video")
    c.event(c9, "support", "join", t("11:00:00"), position=1)
    c.end(c9, t("11:00:20"), "failed", cause=0)

    p = c.call(TOLLFREE, t("23:59:50", day=-1))
    c.end(p, answered_call(c, p, "support", t("23:59:50", day=-1), "petrova", 15, 10, ring_s=10), "completed")

    c.session("ivanov", t("09:00:00"), t("13:00:00"))
    c.pause("ivanov", "training", t("09:00:00"), t("09:15:00"))
    c.pause("ivanov", "lunch", t("12:00:00"), t("12:30:00"))
    c.session("petrova", t("23:00:00", day=-1), t("00:30:00"))
    c.session("petrova", t("10:00:00"), t("12:00:00"))
    c.pause("petrova", "break", t("11:00:00"), t("11:10:00"))
    return c
