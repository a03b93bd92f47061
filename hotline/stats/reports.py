"""The reports of `hotline stats`: which columns each table shows, its title, and the live view
(queues now, with today's figures alongside). JSON and CSV carry every column of the SQL function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from hotline.stats.output import Column, Row, columns, json_text, render, table, title
from hotline.stats.period import Period

# The table's columns per report.
TABLES: dict[str, list[Column]] = {
    "queues": columns(
        ("queue", "QUEUE"), ("offered", "OFFERED"), ("answered", "ANSWERED"), ("abandoned", "ABANDONED"),
        ("short_abandons", "SHORT"), ("overflowed", "OVERFLOW"), ("refused", "REFUSED"), ("busy", "BUSY"),
        ("closed", "CLOSED"),
        ("failed", "FAILED"), ("service_level_pct", "SL%"), ("sl_answered_pct", "SL/ANS%"),
        ("sl_offered_pct", "SL+AB%"), ("abandon_rate_pct", "ABAND%"), ("asa_s", "ASA"), ("aht_s", "AHT"),
        ("avg_wait_s", "AVG WAIT"), ("max_wait_s", "MAX WAIT"), ("transferred_out", "XFER OUT"),
        ("transferred_in", "XFER IN"), ("callbacks_requested", "CB ASKED"), ("callbacks_answered", "CB ANS"),
        ("callbacks_failed", "CB FAILED"), ("time_to_callback_s", "TO CB"), ("survey_responses", "SURVEYS"),
        ("survey_response_pct", "SURV%"), ("survey_avg_score", "SCORE"), ("hold_count", "HOLDS"),
        ("hold_time_s", "HOLD"), ("avg_hold_s", "AVG HOLD")),
    "agents": columns(
        ("agent", "AGENT"), ("rung", "RUNG"), ("answered", "ANSWERED"), ("missed", "MISSED"),
        ("talk_s", "TALK"), ("wrapup_s", "WRAPUP"), ("aht_s", "AHT"), ("transferred_out", "XFER OUT"),
        ("transferred_in", "XFER IN"), ("logged_in_s", "LOGGED IN"),
        ("paused_s", "PAUSED"), ("occupancy_pct", "OCC%"), ("survey_responses", "SURVEYS"),
        ("survey_response_pct", "SURV%"), ("survey_avg_score", "SCORE"), ("hold_count", "HOLDS"),
        ("hold_time_s", "HOLD"), ("avg_hold_s", "AVG HOLD"), ("pause_by_reason", "PAUSES")),
    "hotlines": columns(
        ("hotline", "HOTLINE"), ("calls", "CALLS"), ("answered", "ANSWERED"), ("abandoned", "ABANDONED"),
        ("busy", "BUSY"), ("closed", "CLOSED"), ("overflowed", "OVERFLOW"), ("failed", "FAILED"),
        ("switched", "SWITCHED"), ("in_progress", "NOW"), ("answered_pct", "ANS%"),
        ("avg_answer_s", "AVG ANSWER"), ("max_answer_s", "MAX ANSWER")),
    "numbers": columns(
        ("number", "NUMBER"), ("kind", "KIND"), ("hotline", "HOTLINE"), ("line_limit", "LINES"),
        ("calls", "CALLS"), ("answered", "ANSWERED"), ("abandoned", "ABANDONED"), ("busy", "BUSY"),
        ("busy_pct", "BUSY%"), ("closed", "CLOSED"), ("failed", "FAILED"), ("peak_lines", "PEAK LINES")),
    "channels": columns(
        ("channel_kind", "CHANNEL"), ("media", "MEDIA"), ("calls", "CALLS"), ("cases", "CASES"),
        ("answered", "ANSWERED"), ("abandoned", "ABANDONED"), ("busy", "BUSY"), ("switched", "SWITCHED"),
        ("avg_answer_s", "AVG ANSWER")),
    "cases": columns(
        ("cases", "CASES"), ("hops", "HOPS"), ("hops_per_case", "HOPS/CASE"),
        ("multi_hop_cases", "MULTI-HOP"), ("switched_cases", "SWITCHED"), ("answered_cases", "ANSWERED"),
        ("avg_first_answer_s", "AVG 1ST ANSWER"), ("max_first_answer_s", "MAX 1ST ANSWER")),
}
# How many leading columns of each table name the row's subject (the bucket column follows them).
SUBJECT_COLUMNS = {"queues": 1, "agents": 1, "hotlines": 1, "numbers": 1, "channels": 2, "cases": 0}
LIVE_QUEUES = columns(
    ("queue", "QUEUE"), ("waiting", "WAITING"), ("longest_wait_s", "LONGEST"), ("callbacks", "CALLBACKS"),
    ("agents_free", "FREE"),
    ("agents_ringing", "RINGING"), ("agents_busy", "BUSY"), ("agents_wrapup", "WRAPUP"),
    ("agents_paused", "PAUSED"), ("agents_logged_out", "OUT"), ("offered", "TODAY"),
    ("answered", "ANSWERED"), ("abandoned", "ABANDONED"), ("service_level_pct", "SL%"),
    ("age_s", "AGE"))
LIVE_AGENTS = columns(("agent", "AGENT"), ("state", "STATE"), ("in_state_s", "FOR"))
LIVE_WAITING = columns(
    ("queue", "QUEUE"), ("position", "POS"), ("priority", "PRIO"), ("wait_s", "WAITING"),
    ("ringing", "RINGING"), ("case_id", "CASE"), ("caller", "CALLER"))


def report_text(name: str, rows: Sequence[Row], fmt: str, p: Period) -> str:
    """One report as printed: a titled table, or bare JSON or CSV."""
    text = render(rows, fmt, TABLES[name], p.zone, p.bucket, SUBJECT_COLUMNS[name])
    return f"{title(name, p.since, p.until, p.zone, p.bucket)}\n{text}" if fmt == "table" else text


def live_queue_rows(live: Sequence[Row], today: Sequence[Row], zone: ZoneInfo,
                    callbacks: Mapping[int, int] | None = None) -> list[Row]:
    """The live rows with the callbacks waiting to be placed and today's offered/answered/
    abandoned/SL% of each queue alongside."""
    figures_of = {r["queue_id"]: r for r in today}
    rows = []
    for q in live:
        figures = figures_of.get(q["queue_id"], {})
        row = {**q, **{k: figures.get(k, 0) for k in ("offered", "answered", "abandoned")},
               "service_level_pct": figures.get("service_level_pct"),
               "callbacks": (callbacks or {}).get(q["queue_id"], 0)}
        row["age_s"] = max(0, int((datetime.now(zone) - q["updated_at"]).total_seconds()))
        rows.append(row)
    return rows


def live_text(queues: Sequence[Row], agents: Sequence[Row], fmt: str, zone: ZoneInfo,
              waiting: Sequence[Row] = ()) -> str:
    if fmt == "json":
        return json_text({"queues": queues, "agents": agents, "waiting": waiting}, zone)
    if fmt == "csv":
        return render(queues, fmt, [], zone, None)
    now = datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S")
    line = table(waiting, LIVE_WAITING, zone) if waiting else "(nobody waiting)"
    return (f"live, {now} ({zone.key}); waits and times in seconds, TODAY since midnight\n"
            f"{table(queues, LIVE_QUEUES, zone)}\n\n{table(agents, LIVE_AGENTS, zone)}\n\n"
            f"waiting, in the order they are served (higher priority first):\n{line}")
