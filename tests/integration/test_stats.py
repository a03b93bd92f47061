"""The statistics functions of migration 005 against one fixed day (support/stats_scenario.py): every
figure checked against values computed by hand, then against an independent recomputation in Python
from the raw queue_events, hops and agent intervals, per day and per hour."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from support.checks import rows
from support.stats_scenario import DAY, MSK, TOLLFREE, Centre, answered_call, t, write_day

pytestmark = pytest.mark.lab

Row = dict[str, Any]
WHOLE_DAY = (DAY, DAY + timedelta(days=1))


@pytest.fixture
def centre(db_dsn: str, db: psycopg.Connection) -> Centre:
    return write_day(db_dsn, db)


def stats(db: psycopg.Connection, function: str, since: datetime = DAY, until: datetime = WHOLE_DAY[1],
          bucket: str | None = None, **named: Any) -> list[Row]:
    extra = "".join(f", {k} => %({k})s" for k in named)
    query = (f"SELECT * FROM {function}(%(since)s, %(until)s, %(bucket)s::interval{extra},"
             " tz => 'Europe/Moscow')")
    params = {"since": since, "until": until, "bucket": bucket, **named}
    return db.cursor(row_factory=dict_row).execute(query, params).fetchall()  # type: ignore[arg-type]


def by(key: str, result: list[Row]) -> dict[Any, Row]:
    return {r[key]: r for r in result}


def pct(x: str) -> Decimal:
    return Decimal(x)


# -- by hand -------------------------------------------------------------------------------------

def test_queue_figures_of_the_day_match_the_hand_computed_ones(centre: Centre,
                                                               db: psycopg.Connection) -> None:
    support, backoffice = (by("queue", stats(db, "stats_queue"))[q] for q in ("support", "backoffice"))
    assert support == {
        "queue_id": centre.ids["queues"]["support"], "queue": "support",
        "bucket_start": DAY, "bucket_end": DAY + timedelta(days=1),
        # C1 C2 C3 C4 C5 C6 C9 joined on D; P joined the day before
        "offered": 7, "answered": 3, "answered_in_sl": 2, "abandoned": 2, "short_abandons": 1,
        "abandoned_in_sl": 1, "overflowed": 1, "exited": 0, "refused": 0, "failed": 1, "waiting": 0,
        "busy": 1, "closed": 1,
        "service_level_pct": pct("50.0"),     # 2 / (3 + 2 - 1)
        "sl_answered_pct": pct("66.7"),       # 2 / 3
        "sl_offered_pct": pct("60.0"),        # (2 + 1) / (3 + 2)
        "abandon_rate_pct": pct("28.6"),      # 2 / 7
        "asa_s": 20,                          # (5 + 15 + 40) / 3
        "avg_wait_s": 34,                     # (5 + 15 + 40 + 3 + 50 + 90) / 6 = 33.8
        "max_wait_s": 90,
        "avg_talk_s": 70,                     # (60 + 120 + 30) / 3
        "aht_s": 80,                          # 70 + 10 s wrap-up
        "sl_threshold_s": 20,
        "transferred_out": 0, "transferred_in": 0,   # tests/integration/test_transfer_records.py has some
        "callbacks_requested": 0, "callbacks_answered": 0, "callbacks_failed": 0, "time_to_callback_s": None,
        # C1 and C2 ended by their agents hanging up: two surveys; only C2's caller answered (4, 5)
        "survey_offered": 2, "survey_responses": 1, "survey_response_pct": pct("50.0"),
        "survey_avg_score": Decimal("4.50"),
        # the agents' holds: C1 15 s, C2 30 s and 10 s (closed with the talk); C1's caller's own not
        "hold_count": 3, "hold_time_s": 55, "avg_hold_s": 18,   # 55 / 3 answered
    }
    assert (backoffice["survey_offered"], backoffice["survey_avg_score"]) == (0, None)  # it has no survey
    assert (backoffice["hold_count"], backoffice["hold_time_s"], backoffice["avg_hold_s"]) == (1, 5, 5)
    assert {k: backoffice[k] for k in ("offered", "answered", "answered_in_sl", "service_level_pct", "asa_s",
                                       "aht_s", "busy", "closed", "sl_threshold_s")} == {
        "offered": 1, "answered": 1, "answered_in_sl": 1, "service_level_pct": pct("100.0"), "asa_s": 10,
        "aht_s": 20, "busy": 0, "closed": 0, "sl_threshold_s": 30}


def test_a_call_counts_for_the_day_it_joined_even_when_answered_after_midnight(
        centre: Centre, db: psycopg.Connection) -> None:
    before = stats(db, "stats_queue", DAY - timedelta(days=1), DAY)
    assert [(r["queue"], r["offered"], r["answered"], r["asa_s"]) for r in before] == [("support", 1, 1, 15)]


def test_per_hour_a_quarter_without_calls_has_no_row_and_refusals_land_in_their_own_hour(
        centre: Centre, db: psycopg.Connection) -> None:
    hours = [(r["bucket_start"].astimezone(MSK).hour, r["offered"], r["answered"], r["failed"], r["busy"],
              r["closed"]) for r in stats(db, "stats_queue", bucket="1 hour") if r["queue"] == "support"]
    assert hours == [(8, 0, 0, 0, 0, 1), (10, 6, 3, 0, 1, 0), (11, 1, 0, 1, 0, 0)]


def test_short_abandon_threshold_is_a_parameter(centre: Centre, db: psycopg.Connection) -> None:
    support = by("queue", stats(db, "stats_queue", short_abandon_s=60))["support"]
    assert support["short_abandons"] == 2
    assert support["service_level_pct"] == pct("66.7")  # 2 / (3 + 2 - 2)


def test_agent_figures_of_the_day_match_the_hand_computed_ones(centre: Centre,
                                                               db: psycopg.Connection) -> None:
    agents = {name: {k: v for k, v in r.items() if k not in ("agent_id", "bucket_start", "bucket_end")}
              for name, r in by("agent", stats(db, "stats_agent")).items()}
    assert agents["ivanov"] == {
        "agent": "ivanov",
        "rung": 4,            # C1 C2 C3 C5
        "answered": 2,        # C1 C3
        "missed": 1,          # C2's ring timeout; C5's ring ended because the caller hung up
        "completed": 2, "talk_s": 90, "wrapup_s": 20, "aht_s": 55,
        "logged_in_s": 4 * 3600, "paused_s": 2700, "pause_by_reason": {"lunch": 1800, "training": 900},
        "occupancy_pct": pct("0.9"),   # (90 + 20) / (14400 - 2700)
        "transferred_out": 0, "transferred_in": 0,
        # C1's caller left the survey without a key: offered, no response, no score
        "survey_offered": 1, "survey_responses": 0, "survey_response_pct": pct("0.0"),
        "survey_avg_score": None,
        "hold_count": 1, "hold_time_s": 15, "avg_hold_s": 8,   # C1's 15 s over 2 answered
    }
    assert agents["petrova"] == {
        "agent": "petrova",
        "rung": 3,            # C2 C3 C6 (P's ring was the day before)
        "answered": 3,        # C2 C6 and P's answer at 00:00:05
        "missed": 0,          # her ring on C3 ended because ivanov answered (ringall)
        "completed": 3, "talk_s": 150, "wrapup_s": 20, "aht_s": 57,   # (150 + 10 + 0 + 10) / 3
        "logged_in_s": 1800 + 7200, "paused_s": 600, "pause_by_reason": {"break": 600},
        "occupancy_pct": pct("2.0"),   # 170 / (9000 - 600)
        "transferred_out": 0, "transferred_in": 0,
        # C2's survey (4 and 5); C6 was in backoffice (no survey), P's caller hung up first
        "survey_offered": 1, "survey_responses": 1, "survey_response_pct": pct("100.0"),
        "survey_avg_score": Decimal("4.50"),
        "hold_count": 3, "hold_time_s": 45, "avg_hold_s": 15,  # C2's 30 + 10 s, C6's 5 s; 3 answered
    }


def test_agent_time_is_split_across_hours(centre: Centre, db: psycopg.Connection) -> None:
    ivanov = [(r["bucket_start"].astimezone(MSK).hour, r["logged_in_s"], r["paused_s"], r["pause_by_reason"])
              for r in stats(db, "stats_agent", bucket="1 hour") if r["agent"] == "ivanov"]
    assert ivanov == [(9, 3600, 900, {"training": 900}), (10, 3600, 0, {}), (11, 3600, 0, {}),
                      (12, 3600, 1800, {"lunch": 1800})]


def test_hotline_figures_count_every_leg_by_how_it_ended(centre: Centre, db: psycopg.Connection) -> None:
    hotlines = by("hotline", stats(db, "stats_hotline"))
    figures = ("calls", "answered", "completed", "abandoned", "busy", "closed", "overflowed", "failed",
               "switched", "transferred", "in_progress", "answered_pct", "avg_answer_s", "max_answer_s")
    assert {k: hotlines["moscow"][k] for k in figures} == {
        "calls": 8, "answered": 4, "completed": 3, "abandoned": 2, "busy": 1, "closed": 1, "overflowed": 0,
        "failed": 0, "switched": 1, "transferred": 0, "in_progress": 0, "answered_pct": pct("50.0"),
        "avg_answer_s": 40, "max_answer_s": 100}   # (6 + 15 + 40 + 100) / 4
    assert {k: hotlines["video"][k] for k in figures} == {
        "calls": 2, "answered": 1, "completed": 1, "abandoned": 0, "busy": 0, "closed": 0, "overflowed": 0,
        "failed": 1, "switched": 0, "transferred": 0, "in_progress": 0, "answered_pct": pct("50.0"),
        "avg_answer_s": 1, "max_answer_s": 1}


def test_number_figures_show_busy_refusals_and_the_peak_of_lines_in_use(
        centre: Centre, db: psycopg.Connection) -> None:
    numbers = by("number", stats(db, "stats_number"))
    figures = ("kind", "hotline", "line_limit", "calls", "answered", "abandoned", "busy", "closed", "failed",
               "busy_pct", "peak_lines")
    assert {n: tuple(r[k] for k in figures) for n, r in numbers.items()} == {
        "+74951234567": ("city", "moscow", 1, 3, 1, 0, 1, 1, 0, pct("33.3"), 1),
        "+78005553535": ("tollfree", "moscow", None, 5, 3, 2, 0, 0, 0, pct("0.0"), 2),
        "video-support": ("video", "video", 10, 2, 1, 0, 0, 0, 1, pct("0.0"), 1),
    }


def test_peak_lines_count_legs_up_at_once_with_the_ones_from_before_and_not_the_busy_ones(
        centre: Centre, db: psycopg.Connection) -> None:
    # Three days later, on the 8-800 number (unlimited lines: its legs take no line number).
    def leg(enters: str, ends: str, reason: str = "completed") -> None:
        centre.end(centre.call(TOLLFREE, t(enters, day=3)), t(ends, day=3), reason)
    leg("08:59:00", "09:00:30")  # up when the range starts: it counts for the 09:00 bucket
    leg("09:00:10", "09:05:00")
    leg("10:10:00", "10:10:05")
    leg("10:10:01", "10:10:01", "busy")  # refused: it never held a line
    leg("11:20:00", "11:30:00")
    leg("11:30:00", "11:40:00")  # arrives the instant the other ends: one line in use
    since, until = DAY + timedelta(days=3, hours=9), DAY + timedelta(days=3, hours=12)
    peaks = {r["bucket_start"]: r["peak_lines"] for r in stats(db, "stats_number", since, until, "1 hour")
             if r["number"] == TOLLFREE}
    assert peaks == {since: 2, since + timedelta(hours=1): 1, since + timedelta(hours=2): 1}


def test_channel_figures_per_kind_and_media(centre: Centre, db: psycopg.Connection) -> None:
    figures = ("calls", "cases", "answered", "abandoned", "busy", "switched", "avg_answer_s")
    channels = {(r["channel_kind"], r["media"]): tuple(r[k] for k in figures)
                for r in stats(db, "stats_channel")}
    assert channels == {("pstn", "audio"): (8, 8, 4, 2, 1, 1, 40), ("webrtc", "video"): (1, 1, 1, 0, 0, 0, 1),
                        ("sip", "video"): (1, 1, 0, 0, 0, 0, None)}


def test_case_figures_follow_the_customer_across_legs(centre: Centre, db: psycopg.Connection) -> None:
    [day] = stats(db, "stats_case")
    assert {k: v for k, v in day.items() if k not in ("bucket_start", "bucket_end")} == {
        "cases": 9, "hops": 10, "hops_per_case": pct("1.1"), "multi_hop_cases": 1, "switched_cases": 1,
        "answered_cases": 4, "avg_first_answer_s": 40, "max_first_answer_s": 100}
    switched = [r for r in rows(db, "SELECT * FROM stats_case_list(%s, %s)", *WHOLE_DAY) if r["switched"]]
    assert [(r["hops"], sorted(r["channel_kinds"]), sorted(r["media"]), r["first_answer_s"])
            for r in switched] == [(2, ["pstn", "webrtc"], ["audio", "video"], 40)]


def test_a_second_visit_to_the_same_queue_is_a_call_of_its_own(centre: Centre,
                                                               db: psycopg.Connection) -> None:
    # the next day: a caller overflows to a menu and comes back to support, where ivanov answers
    leg = centre.call(TOLLFREE, t("09:00:00", day=1))
    centre.event(leg, "support", "join", t("09:00:00", day=1), position=1)
    centre.event(leg, "support", "overflow", t("09:01:00", day=1), wait_ms=60_000, detail="menu:main")
    centre.end(leg, answered_call(centre, leg, "support", t("09:01:10", day=1), "ivanov", 5, 30), "completed")
    since, until = DAY + timedelta(days=1), DAY + timedelta(days=2)
    [support] = stats(db, "stats_queue", since, until)
    assert [support[k] for k in ("offered", "answered", "overflowed", "failed", "asa_s", "avg_talk_s")] \
        == [2, 1, 1, 0, 5, 30]
    expected = recompute_queues(db, since, until, per_day)[("support", since)]
    assert {k: support[k] for k in expected} == expected


def test_a_caller_a_full_queue_turns_away_is_refused_not_offered(centre: Centre,
                                                                 db: psycopg.Connection) -> None:
    # the next day: support is full (max_len), the caller goes on to backoffice and hangs up there
    leg = centre.call(TOLLFREE, t("09:30:00", day=1))
    centre.event(leg, "support", "overflow", t("09:30:00", day=1), wait_ms=0,
                 detail="max_len: queue:backoffice")
    centre.event(leg, "backoffice", "join", t("09:30:00", day=1), position=1)
    centre.event(leg, "backoffice", "abandon", t("09:30:25", day=1), position=1, wait_ms=25_000)
    centre.end(leg, t("09:30:25", day=1), "abandoned")
    since, until = DAY + timedelta(days=1), DAY + timedelta(days=2)
    got = by("queue", stats(db, "stats_queue", since, until))
    assert [got["support"][k] for k in ("offered", "overflowed", "refused", "abandon_rate_pct")] \
        == [0, 0, 1, None]
    assert [got["backoffice"][k] for k in ("offered", "abandoned", "abandoned_in_sl", "sl_offered_pct")] \
        == [1, 1, 1, pct("100.0")]
    expected = recompute_queues(db, since, until, per_day)
    assert {q: {k: got[q][k] for k in expected[(q, since)]} for q in got} \
        == {q: expected[(q, since)] for q in got}


def test_rings_cut_short_by_another_agent_or_by_the_caller_leaving_are_not_missed(
        centre: Centre, db: psycopg.Connection) -> None:
    # two days later: ringall twice; petrova answers the first call, the second caller presses a key
    first = centre.call(TOLLFREE, t("09:00:00", day=2))
    second = centre.call(TOLLFREE, t("09:10:00", day=2))
    centre.event(first, "support", "join", t("09:00:00", day=2), position=1)
    for agent in ("ivanov", "petrova"):
        centre.event(first, "support", "ring", t("09:00:01", day=2), agent)
    centre.event(first, "support", "ring_noanswer", t("09:00:05", day=2), "ivanov", ring_ms=4000,
                 detail="answered by petrova")
    centre.event(first, "support", "answer", t("09:00:05", day=2), "petrova", wait_ms=5000, ring_ms=4000)
    centre.event(second, "support", "join", t("09:10:00", day=2), position=1)
    for agent in ("ivanov", "petrova"):
        centre.event(second, "support", "ring", t("09:10:01", day=2), agent)
    for agent in ("ivanov", "petrova"):
        centre.event(second, "support", "ring_noanswer", t("09:10:03", day=2), agent, ring_ms=2000,
                     detail="caller left the queue")
    centre.event(second, "support", "exit_key", t("09:10:03", day=2), wait_ms=3000, detail="1")
    since, until = DAY + timedelta(days=2), DAY + timedelta(days=3)
    got = by("agent", stats(db, "stats_agent", since, until))
    assert {a: (r["rung"], r["answered"], r["missed"]) for a, r in got.items()} \
        == {"ivanov": (2, 0, 0), "petrova": (2, 1, 0)}
    assert by("queue", stats(db, "stats_queue", since, until))["support"]["exited"] == 1
    expected = recompute_agents(db, since, until, per_day, timedelta(days=1))
    assert {(a, since): {k: got[a][k] for k in expected[(a, since)]} for a in got} == expected


def test_day_buckets_follow_the_wall_clock_across_a_dst_change(db: psycopg.Connection) -> None:
    got = rows(db, "SELECT bucket_start, bucket_end FROM stats_buckets('2026-03-28 00:00+01',"
                   " '2026-03-30 00:00+02', '1 day', 'Europe/Berlin')")
    assert [(r["bucket_end"] - r["bucket_start"]).total_seconds() / 3600 for r in got] == [24, 23]


def test_today_views_answer(centre: Centre, db: psycopg.Connection) -> None:
    for view in ("stats_queue_today", "stats_agent_today", "stats_hotline_today"):
        assert rows(db, f"SELECT * FROM {view}") == []  # the scenario's day is in the past


# -- the same figures, recomputed in Python from the raw rows ------------------------------------

def half_up(value: Decimal, places: str = "1") -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def seconds(ms_values: list[int], how: Callable[[list[int]], Decimal] | None = None) -> int | None:
    if not ms_values:
        return None
    total = how(ms_values) if how else Decimal(sum(ms_values)) / len(ms_values)
    return int(half_up(total / 1000))


def percent(part: int, whole: int) -> Decimal | None:
    return half_up(Decimal(100 * part) / whole, "0.1") if whole else None


Bucketing = Callable[[datetime], datetime]


def per_day(at: datetime) -> datetime:
    return at.astimezone(MSK).replace(hour=0, minute=0, second=0, microsecond=0)


def per_hour(at: datetime) -> datetime:
    return at.astimezone(MSK).replace(minute=0, second=0, microsecond=0)


def walk_visits(events: list[Row]) -> Iterator[Row]:
    """Each hop's events in the order written: a join opens a visit of that queue, its first
    answer/abandon/overflow/exit_key closes it, a complete after the answer gives its talk."""
    by_hop: dict[int, list[Row]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e["id"]):
        by_hop[e["hop_id"]].append(e)
    for hop_events in by_hop.values():
        open_visits: dict[int, Row] = {}
        talking: dict[int, Row] = {}
        for e in hop_events:
            q = e["queue_id"]
            if e["event"] == "join":
                open_visits[q] = {"queue_id": q, "hop_id": e["hop_id"], "at": e["at"], "outcome": None,
                                  "wait_ms": None, "talk_ms": None}
                yield open_visits[q]
            elif e["event"] == "overflow" and q not in open_visits:  # turned away before joining
                yield {"queue_id": q, "hop_id": e["hop_id"], "at": e["at"], "outcome": "refused",
                       "wait_ms": None, "talk_ms": None}
            elif e["event"] in ("answer", "abandon", "overflow", "exit_key") and q in open_visits:
                visit = open_visits.pop(q)
                visit.update(outcome=e["event"], wait_ms=e["wait_ms"])
                if e["event"] == "answer":
                    talking[q] = visit
            elif e["event"] == "complete" and q in talking:
                talking.pop(q)["talk_ms"] = e["talk_ms"]


def survey_figures(db: psycopg.Connection, since: datetime, until: datetime, bucket: Bucketing,
                   subject: str) -> dict[tuple[int, datetime], Row]:
    """The surveys begun in the period per (queue or agent id, bucket of the begin): offered, with
    an answer, and the mean score of every answer."""
    answers: dict[int, list[int]] = defaultdict(list)
    for a in rows(db, "SELECT survey_id, score FROM survey_answers"):
        answers[a["survey_id"]].append(a["score"])
    acc: dict[tuple[int, datetime], Row] = defaultdict(lambda: {"offered": 0, "responses": 0, "scores": []})
    for s in rows(db, "SELECT * FROM surveys"):
        if since <= s["started_at"] < until and s[subject] is not None:
            a = acc[(s[subject], bucket(s["started_at"]))]
            a["offered"] += 1
            a["responses"] += bool(answers[s["id"]])
            a["scores"] += answers[s["id"]]
    return {key: {"survey_offered": a["offered"], "survey_responses": a["responses"],
                  "survey_response_pct": percent(a["responses"], a["offered"]),
                  "survey_avg_score": half_up(Decimal(sum(a["scores"])) / len(a["scores"]), "0.01")
                  if a["scores"] else None} for key, a in acc.items()}


def hold_figures(db: psycopg.Connection, since: datetime, until: datetime, bucket: Bucketing,
                 subject: str) -> dict[tuple[int, datetime], Row]:
    """The agents' holds begun in the period per (queue or agent id, bucket of the start): how
    many, and their length."""
    acc: dict[tuple[int, datetime], Row] = defaultdict(lambda: {"holds": 0, "ms": Decimal(0)})
    for h in rows(db, "SELECT * FROM holds WHERE held_by = 'agent'"):
        if since <= h["started_at"] < until and h[subject] is not None:
            a = acc[(h[subject], bucket(h["started_at"]))]
            a["holds"] += 1
            a["ms"] += Decimal((h["ended_at"] - h["started_at"]).total_seconds()) * 1000
    return dict(acc)


def hold_columns(held: Row | None, answered: int) -> Row:
    if held is None:
        return {"hold_count": 0, "hold_time_s": 0, "avg_hold_s": None if not answered else 0}
    return {"hold_count": held["holds"], "hold_time_s": seconds([held["ms"]]),
            "avg_hold_s": int(half_up(held["ms"] / answered / 1000)) if answered else None}


NO_SURVEY = {"survey_offered": 0, "survey_responses": 0, "survey_response_pct": None,
             "survey_avg_score": None}


def recompute_queues(db: psycopg.Connection, since: datetime, until: datetime, bucket: Bucketing,
                     short_s: int = 5) -> dict[tuple[str, datetime], Row]:
    queues = {q["id"]: q for q in rows(db, "SELECT id, name, service_level_s, wrapup_s FROM queues")}
    hops = {h["id"]: h for h in rows(db, "SELECT * FROM hops")}
    entry = dict(db.execute("SELECT id, entry_queue_id FROM hotlines").fetchall())
    visits: dict[tuple[str, datetime], list[Row]] = defaultdict(list)
    refused: dict[tuple[str, datetime], int] = defaultdict(int)
    for v in walk_visits(rows(db, "SELECT * FROM queue_events")):
        if since <= v["at"] < until:
            key = (queues[v["queue_id"]]["name"], bucket(v["at"]))
            if v["outcome"] == "refused":
                refused[key] += 1
            else:
                visits[key].append(v)
    refusals: dict[tuple[str, datetime], list[str]] = defaultdict(list)
    for h in hops.values():
        entry_queue = entry.get(h["hotline_id"])
        if h["end_reason"] in ("busy", "closed") and since <= h["entered_at"] < until and entry_queue:
            refusals[(queues[entry_queue]["name"], bucket(h["entered_at"]))].append(h["end_reason"])
    surveyed = {(queues[q]["name"], b): f for (q, b), f in survey_figures(db, since, until, bucket,
                                                                          "queue_id").items()}
    held = {(queues[q]["name"], b): f
            for (q, b), f in hold_figures(db, since, until, bucket, "queue_id").items()}
    out = {}
    by_name = {q["name"]: q for q in queues.values()}
    for key in set(visits) | set(refused) | set(refusals) | set(surveyed) | set(held):
        q, vs = by_name[key[0]], visits.get(key, [])
        sl_ms = q["service_level_s"] * 1000
        answered = [v for v in vs if v["outcome"] == "answer"]
        abandoned = [v for v in vs if v["outcome"] == "abandon"]
        in_sl = [v for v in answered if v["wait_ms"] <= sl_ms]
        ab_in_sl = [v for v in abandoned if v["wait_ms"] <= sl_ms]
        short = [v for v in abandoned if v["wait_ms"] < short_s * 1000]
        resolved = [v["wait_ms"] for v in vs if v["outcome"]]
        talks = [v["talk_ms"] for v in answered if v["talk_ms"] is not None]
        out[key] = {
            "offered": len(vs), "answered": len(answered), "answered_in_sl": len(in_sl),
            "abandoned": len(abandoned), "short_abandons": len(short), "abandoned_in_sl": len(ab_in_sl),
            "overflowed": sum(v["outcome"] == "overflow" for v in vs),
            "exited": sum(v["outcome"] == "exit_key" for v in vs), "refused": refused.get(key, 0),
            "failed": sum(v["outcome"] is None and hops[v["hop_id"]]["ended_at"] is not None for v in vs),
            "waiting": sum(v["outcome"] is None and hops[v["hop_id"]]["ended_at"] is None for v in vs),
            "busy": refusals.get(key, []).count("busy"), "closed": refusals.get(key, []).count("closed"),
            "service_level_pct": percent(len(in_sl), len(answered) + len(abandoned) - len(short)),
            "sl_answered_pct": percent(len(in_sl), len(answered)),
            "sl_offered_pct": percent(len(in_sl) + len(ab_in_sl), len(answered) + len(abandoned)),
            "abandon_rate_pct": percent(len(abandoned), len(vs)),
            "asa_s": seconds([v["wait_ms"] for v in answered]),
            "avg_wait_s": seconds(resolved), "max_wait_s": seconds(resolved, lambda ms: Decimal(max(ms))),
            "avg_talk_s": seconds(talks), "aht_s": seconds([m + q["wrapup_s"] * 1000 for m in talks]),
            **surveyed.get(key, NO_SURVEY),
            **hold_columns(held.get(key), len(answered)),
        }
    return out


def overlap_ms(start: datetime, end: datetime | None, lo: datetime, hi: datetime) -> Decimal:
    ends = end or datetime.now(MSK)
    return Decimal(max(0.0, (min(ends, hi) - max(start, lo)).total_seconds()) * 1000)


def recompute_agents(db: psycopg.Connection, since: datetime, until: datetime, bucket: Bucketing,
                     step: timedelta) -> dict[tuple[str, datetime], Row]:
    agents = dict(db.execute("SELECT id, name FROM agents").fetchall())
    wrapup = dict(db.execute("SELECT id, wrapup_s FROM queues").fetchall())
    events = sorted(rows(db, "SELECT * FROM queue_events"), key=lambda e: e["id"])
    acc: dict[tuple[str, datetime], Row] = defaultdict(lambda: defaultdict(int))
    for i, e in enumerate(events):
        if e["agent_id"] is None or not since <= e["at"] < until:
            continue
        a = acc[(agents[e["agent_id"]], bucket(e["at"]))]
        a["events"] += 1
        if e["event"] == "ring":
            a["rung"] += 1
        elif e["event"] == "answer":
            a["answered"] += 1
        elif e["event"] == "complete":
            a["completed"] += 1
            a["talk_ms"] += e["talk_ms"]
            a["wrapup_ms"] += wrapup[e["queue_id"]] * 1000
        elif e["event"] == "ring_noanswer" and e["detail"] not in ("caller gone", "dial failed",
                                                                   "caller left the queue") \
                and not e["detail"].startswith("answered by "):
            later = (n for n in events[i + 1:] if n["hop_id"] == e["hop_id"]
                     and n["queue_id"] == e["queue_id"] and n["event"] != "ring_noanswer")
            a["missed"] += next(later, {"event": None})["event"] != "answer"
    windows, lo = [], since
    while lo < until:
        windows.append((lo, min(lo + step, until)))
        lo += step
    for kind, sql in (("logged", "SELECT agent_id, '' AS reason, logged_in_at AS s, logged_out_at AS e"
                                 " FROM agent_sessions"),
                      ("paused", "SELECT agent_id, reason, started_at AS s, ended_at AS e"
                                 " FROM agent_pauses")):
        for r in rows(db, sql):
            for lo, hi in windows:
                ms = overlap_ms(r["s"], r["e"], lo, hi)
                if ms > 0:
                    a = acc[(agents[r["agent_id"]], bucket(lo))]
                    a[f"{kind}_ms"] += ms
                    if kind == "paused":
                        a.setdefault("by_reason", defaultdict(Decimal))[r["reason"]] += ms
    surveyed = {(agents[a], b): f
                for (a, b), f in survey_figures(db, since, until, bucket, "agent_id").items()}
    held = {(agents[a], b): f for (a, b), f in hold_figures(db, since, until, bucket, "agent_id").items()}
    out = {}
    for key in set(surveyed) | set(held):
        acc[key]["surveyed"] = 1
    for key, a in acc.items():
        if not a["events"] and not a["logged_ms"] and not a["surveyed"]:
            continue
        handle = a["talk_ms"] + a["wrapup_ms"]
        out[key] = {
            "rung": a["rung"], "answered": a["answered"], "missed": a["missed"], "completed": a["completed"],
            "talk_s": seconds([a["talk_ms"]]), "wrapup_s": seconds([a["wrapup_ms"]]),
            "aht_s": int(half_up(Decimal(handle) / a["completed"] / 1000)) if a["completed"] else None,
            "logged_in_s": seconds([a["logged_ms"]]), "paused_s": seconds([a["paused_ms"]]),
            "pause_by_reason": {r: seconds([ms]) for r, ms in sorted(a.get("by_reason", {}).items())},
            "occupancy_pct": half_up(100 * Decimal(handle) / (a["logged_ms"] - a["paused_ms"]), "0.1")
            if a["logged_ms"] - a["paused_ms"] else None,
            **surveyed.get(key, NO_SURVEY),
            **hold_columns(held.get(key), a["answered"]),
        }
    return out


def sql_keyed(result: list[Row], name: str, figures: list[str]) -> dict[tuple[str, datetime], Row]:
    return {(r[name], r["bucket_start"].astimezone(MSK)): {k: r[k] for k in figures} for r in result}


@pytest.mark.parametrize(("bucket", "bucketing", "step"), [
    (None, per_day, timedelta(days=1)), ("1 hour", per_hour, timedelta(hours=1))])
@pytest.mark.parametrize("day", [-1, 0])
def test_queue_and_agent_functions_agree_with_a_recomputation_from_raw_events(
        centre: Centre, db: psycopg.Connection, bucket: str | None, bucketing: Bucketing, step: timedelta,
        day: int) -> None:
    since, until = DAY + timedelta(days=day), DAY + timedelta(days=day + 1)
    expected_queues = recompute_queues(db, since, until, bucketing)
    got_queues = sql_keyed(stats(db, "stats_queue", since, until, bucket), "queue",
                           list(next(iter(expected_queues.values()))))
    assert got_queues == expected_queues
    expected_agents = recompute_agents(db, since, until, bucketing, step)
    got_agents = sql_keyed(stats(db, "stats_agent", since, until, bucket), "agent",
                           list(next(iter(expected_agents.values()))))
    assert got_agents == expected_agents


def test_an_open_session_counts_until_now(centre: Centre, db: psycopg.Connection) -> None:
    db.execute("INSERT INTO agent_sessions (agent_id, logged_in_at)"
               " VALUES (%s, now() - interval '10 minutes')", (centre.ids["agents"]["ivanov"],))
    [ivanov] = [r for r in stats(db, "stats_agent", t("00:00:00", day=-30), t("00:00:00", day=3650))
                if r["agent"] == "ivanov"]
    assert 4 * 3600 + 600 <= ivanov["logged_in_s"] <= 4 * 3600 + 660


def test_callbacks_are_requested_visits_not_abandons_and_count_when_answered_or_given_up(
        centre: Centre, db: psycopg.Connection) -> None:
    # the next day: two callers in backoffice ask to be called back; one is called back 10 minutes
    # after asking, the other is given up; a third request is still waiting
    since, until = DAY + timedelta(days=1), DAY + timedelta(days=2)
    queue_id = centre.ids["queues"]["backoffice"]
    requests = (("answered", "10:20:00"), ("failed", "11:00:00"), ("pending", None))
    for n, (status, ended) in enumerate(requests):
        asked = t(f"10:0{n}:30", day=1)
        leg = centre.call(TOLLFREE, t(f"10:0{n}:00", day=1))
        centre.event(leg, "backoffice", "join", t(f"10:0{n}:00", day=1), position=1)
        centre.event(leg, "backoffice", "callback", asked, wait_ms=30_000, detail="callback")
        centre.end(leg, asked, "callback")
        db.execute("INSERT INTO callbacks (case_id, hop_id, queue_id, number, joined_at, requested_at,"
                   " due_at, status, attempts, ended_at)"
                   " VALUES (%s, %s, %s, '+79161234567', %s, %s, %s, %s, %s, %s)",
                   (leg.case_id, leg.hop_id, queue_id, t(f"10:0{n}:00", day=1), asked, asked, status,
                    0 if ended is None else 1, None if ended is None else t(ended, day=1)))
    [backoffice] = [r for r in stats(db, "stats_queue", since, until) if r["queue"] == "backoffice"]
    assert [backoffice[k] for k in ("offered", "abandoned", "failed", "waiting", "abandon_rate_pct")] \
        == [3, 0, 0, 0, pct("0.0")]
    assert [backoffice[k] for k in ("callbacks_requested", "callbacks_answered", "callbacks_failed",
                                    "time_to_callback_s")] == [3, 1, 1, 20 * 60 - 30]


def test_a_placed_callbacks_talk_counts_for_its_agent_and_in_talk_time_but_is_not_offered_again(
        centre: Centre, db: psycopg.Connection) -> None:
    # the next day in backoffice (no wrap-up): a caller answered after 10 s talks 20 s; another asks
    # for a callback at 10:00:30; its first try at 10:10 rings ivanov, who answers, but the
    # customer does not; the second at 10:20 rings petrova, who answers, and the customer talks 100 s
    since, until = DAY + timedelta(days=1), DAY + timedelta(days=2)
    plain = centre.call(TOLLFREE, t("09:00:00", day=1))
    centre.end(plain, answered_call(centre, plain, "backoffice", t("09:00:00", day=1), "petrova", 10, 20),
               "completed")
    asked = centre.call(TOLLFREE, t("10:00:00", day=1))
    centre.event(asked, "backoffice", "join", t("10:00:00", day=1), position=1)
    centre.event(asked, "backoffice", "callback", t("10:00:30", day=1), wait_ms=30_000, detail="callback")
    centre.end(asked, t("10:00:30", day=1), "callback")
    first = centre.call(TOLLFREE, t("10:10:00", day=1), case=asked.case_id, seq=2)
    centre.event(first, "backoffice", "ring", t("10:10:00", day=1), "ivanov")
    centre.event(first, "backoffice", "ring_noanswer", t("10:10:40", day=1), "ivanov", ring_ms=3000,
                 detail="caller gone")
    centre.end(first, t("10:10:40", day=1), "failed", cause=17)
    second = centre.call(TOLLFREE, t("10:20:00", day=1), case=asked.case_id, seq=3)
    centre.event(second, "backoffice", "ring", t("10:20:00", day=1), "petrova")
    centre.event(second, "backoffice", "answer", t("10:20:10", day=1), "petrova", ring_ms=2000)
    centre.event(second, "backoffice", "complete", t("10:21:50", day=1), "petrova", talk_ms=100_000,
                 detail="caller hung up")
    centre.end(second, t("10:21:50", day=1), "completed")
    db.execute("INSERT INTO callbacks (case_id, hop_id, queue_id, number, joined_at, requested_at,"
               " due_at, status, attempts, ended_at)"
               " VALUES (%s, %s, %s, '+79161234567', %s, %s, %s, 'answered', 2, %s)",
               (asked.case_id, asked.hop_id, centre.ids["queues"]["backoffice"], t("10:00:00", day=1),
                t("10:00:30", day=1), t("10:00:30", day=1), t("10:20:10", day=1)))

    [backoffice] = [r for r in stats(db, "stats_queue", since, until) if r["queue"] == "backoffice"]
    assert [backoffice[k] for k in ("offered", "answered", "abandoned", "failed", "waiting", "asa_s")] \
        == [2, 1, 0, 0, 0, 10]  # the request's visit and the plain call; the callback is no visit
    assert [backoffice[k] for k in ("callbacks_requested", "callbacks_answered", "callbacks_failed")] \
        == [1, 1, 0]
    assert [backoffice[k] for k in ("avg_talk_s", "aht_s")] == [60, 60]  # (20 + 100) / 2, no wrap-up
    agents = by("agent", stats(db, "stats_agent", since, until))
    assert [agents["petrova"][k] for k in ("rung", "answered", "missed", "completed", "talk_s")] \
        == [2, 2, 0, 2, 120]
    # ivanov answered for a customer who did not: rung, not missed, no talk
    assert [agents["ivanov"][k] for k in ("rung", "answered", "missed", "completed", "talk_s")] \
        == [1, 0, 0, 0, 0]
    # hourly: the callback's talk is in the bucket of its end, the plain call's in its join's
    hourly = {r["bucket_start"]: r for r in stats(db, "stats_queue", since, until, "1 hour")
              if r["queue"] == "backoffice"}
    nine, ten = t("09:00:00", day=1), t("10:00:00", day=1)
    assert hourly[nine]["avg_talk_s"] == 20 and hourly[ten]["avg_talk_s"] == 100
    assert hourly[ten]["offered"] == 1  # the request's visit
