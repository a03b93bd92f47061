"""How fast the statistics functions answer over a long history: a million hops (and their cases and
queue events, agent sessions and pauses) generated straight into a scratch database with
generate_series, then a day's per-queue figures (and the other reports) timed.

Run it with `make bench-stats` (the lab's PostgreSQL only, Asterisk is not touched), or
`.venv/bin/python bench/stats_bench.py [--hops 1000000] [--days 30] [--runs 7] [--keep]`; with
`--admin-dsn` it runs on any PostgreSQL where that role may CREATE DATABASE. The figures are
printed and written into bench/results.md between the stats-bench markers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from hotline.store.migrations import migrate  # noqa: E402

RESULTS = PROJECT_DIR / "bench" / "results.md"
BEGIN, END = "<!-- stats-bench: begin -->", "<!-- stats-bench: end -->"
QUEUES, AGENTS = 10, 100
START = "2026-10-01 00:00:00+03"  # the history runs from here, Moscow time, for --days days
TZ = "Europe/Moscow"

PROVISIONING = f"""
INSERT INTO queues (name, service_level_s, wrapup_s)
    SELECT 'q' || q, 20, 5 FROM generate_series(1, {QUEUES}) q;
INSERT INTO hotlines (name, entry_queue_id, time_zone)
    SELECT 'h' || q, q, '{TZ}' FROM generate_series(1, {QUEUES}) q;
INSERT INTO numbers (number, kind, hotline_id, line_limit)
    SELECT '+7495000' || lpad(q::text, 4, '0'), 'city', q, 30 FROM generate_series(1, {QUEUES}) q;
INSERT INTO agents (name, endpoint) SELECT 'a' || a, 'a' || a FROM generate_series(1, {AGENTS}) a;
"""

# One case and one hop per i; the outcome from i: 70 % answered, 15 % abandoned, 5 % overflowed,
# 5 % busy, 3 % closed, 2 % failed. Ids are given (a fresh database) so events can refer to them.
HISTORY = """
CREATE TEMP TABLE g AS
SELECT i, (i % %(queues)s) + 1 AS q, ((i * 13) % %(agents)s) + 1 AS agent,
       %(start)s::timestamptz + (i - 1) * (%(days)s * interval '1 day') / %(hops)s AS at,
       CASE WHEN (i * 7919) % 100 < 70 THEN 'answered' WHEN (i * 7919) % 100 < 85 THEN 'abandoned'
            WHEN (i * 7919) % 100 < 90 THEN 'overflow' WHEN (i * 7919) % 100 < 95 THEN 'busy'
            WHEN (i * 7919) % 100 < 98 THEN 'closed' ELSE 'failed' END AS outcome,
       (i * 31) % 120 AS wait_s, 30 + (i * 17) % 300 AS talk_s
  FROM generate_series(1::bigint, %(hops)s) i;

INSERT INTO cases (id, customer_key, opened_at, status, closed_at) OVERRIDING SYSTEM VALUE
SELECT i, '+7916' || lpad(i::text, 7, '0'), at, 'closed', at + interval '1 hour' FROM g;

INSERT INTO hops (id, case_id, seq, node, channel_id, channel_kind, dialled, dialled_e164, number_id, line,
                  hotline_id, queue_id, agent_id, entered_at, queued_at, answered_at, ended_at, end_reason)
OVERRIDING SYSTEM VALUE
SELECT i, i, 1, 'bench', 'c' || i, 'pstn', 'n', 'n', q,
       CASE WHEN outcome = 'busy' THEN NULL ELSE 1 + i % 30 END, q,
       CASE WHEN outcome IN ('busy', 'closed') THEN NULL ELSE q END,
       CASE WHEN outcome = 'answered' THEN agent END,
       at, CASE WHEN outcome NOT IN ('busy', 'closed') THEN at + interval '2 s' END,
       CASE WHEN outcome = 'answered' THEN at + (2 + wait_s) * interval '1 s' END,
       at + CASE outcome WHEN 'answered' THEN (2 + wait_s + talk_s) * interval '1 s'
                         WHEN 'busy' THEN interval '0' WHEN 'closed' THEN interval '5 s'
                         ELSE (2 + wait_s) * interval '1 s' END,
       CASE outcome WHEN 'answered' THEN 'completed' WHEN 'abandoned' THEN 'abandoned'
                    WHEN 'overflow' THEN 'overflow' ELSE outcome END
  FROM g;

INSERT INTO queue_events (at, queue_id, case_id, hop_id, agent_id, event, position, wait_ms, ring_ms, talk_ms,
                          detail)
SELECT e.at, g.q, g.i, g.i, e.agent, e.event, e.position, e.wait_ms, e.ring_ms, e.talk_ms, e.detail
  FROM g CROSS JOIN LATERAL (VALUES
       (1, g.at + interval '2 s', NULL::bigint, 'join', 1, NULL::int, NULL::int, NULL::int, ''),
       (2, g.at + (2 + g.wait_s) * interval '1 s' - interval '20 s', ((g.agent + 1) % %(agents)s) + 1,
        'ring', NULL, NULL, NULL, NULL, ''),
       (3, g.at + (2 + g.wait_s) * interval '1 s' - interval '5 s', ((g.agent + 1) % %(agents)s) + 1,
        'ring_noanswer', NULL, NULL, 15000, NULL, 'ring timeout'),
       (4, g.at + (2 + g.wait_s) * interval '1 s' - interval '4 s', g.agent, 'ring', NULL, NULL, NULL, NULL,
        ''),
       (5, g.at + (2 + g.wait_s) * interval '1 s', g.agent, 'answer', NULL, g.wait_s * 1000, 4000, NULL, ''),
       (6, g.at + (2 + g.wait_s + g.talk_s) * interval '1 s', g.agent, 'complete', NULL, NULL, NULL,
        g.talk_s * 1000, 'caller hung up'),
       (7, g.at + (2 + g.wait_s) * interval '1 s', NULL, 'abandon', 1, g.wait_s * 1000, NULL, NULL, ''),
       (8, g.at + (2 + g.wait_s) * interval '1 s', NULL, 'overflow', NULL, g.wait_s * 1000, NULL, NULL,
        'hangup')
  ) AS e (n, at, agent, event, position, wait_ms, ring_ms, talk_ms, detail)
 WHERE (g.outcome NOT IN ('busy', 'closed') AND e.n = 1)
    OR (g.outcome = 'answered' AND (e.n IN (4, 5, 6) OR (e.n IN (2, 3) AND g.i % 10 = 0)))
    OR (g.outcome = 'abandoned' AND e.n = 7)
    OR (g.outcome = 'overflow' AND e.n = 8)
 ORDER BY g.i, e.n;

INSERT INTO agent_sessions (agent_id, logged_in_at, logged_out_at)
SELECT a, d + interval '9 h', d + interval '18 h'
  FROM generate_series(1, %(agents)s) a,
       generate_series(%(start)s::timestamptz, %(start)s::timestamptz + (%(days)s - 1) * interval '1 day',
                       interval '1 day') d;
INSERT INTO agent_pauses (agent_id, reason, started_at, ended_at)
SELECT agent_id, CASE WHEN agent_id % 2 = 0 THEN 'lunch' ELSE 'training' END,
       logged_in_at + interval '4 h', logged_in_at + interval '4 h 45 min' FROM agent_sessions;

SELECT setval(pg_get_serial_sequence('cases', 'id'), %(hops)s);
SELECT setval(pg_get_serial_sequence('hops', 'id'), %(hops)s);
"""

QUERIES = {
    "stats_queue, one day": "SELECT * FROM stats_queue(%(since)s, %(until)s, NULL, 5, %(tz)s)",
    "stats_queue, one day per 15 min": "SELECT * FROM stats_queue(%(since)s, %(until)s, '15 min', 5, %(tz)s)",
    "stats_agent, one day": "SELECT * FROM stats_agent(%(since)s, %(until)s, NULL, %(tz)s)",
    "stats_hotline, one day per hour": "SELECT * FROM stats_hotline(%(since)s, %(until)s, '1 hour', %(tz)s)",
    "stats_number, one day per hour": "SELECT * FROM stats_number(%(since)s, %(until)s, '1 hour', %(tz)s)",
    "stats_case, one day": "SELECT * FROM stats_case(%(since)s, %(until)s, NULL, %(tz)s)",
}


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def scratch_dsn(admin_dsn: str, name: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**params)


def admin_dsn_of_lab() -> str:
    from hotline.lab import Lab  # reads the lab's generated password; starts nothing

    return Lab(PROJECT_DIR).admin_dsn()


def generate(dsn: str, hops: int, days: int) -> dict[str, int]:
    async def mig() -> None:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        async with conn:
            await migrate(conn)
    asyncio.run(mig())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(PROVISIONING)
        started = time.monotonic()
        params = {"hops": hops, "days": days, "start": START, "queues": QUEUES, "agents": AGENTS}
        for statement in HISTORY.replace(" % ", " %% ").split(";\n"):  # one statement per execute
            if statement.strip():
                conn.execute(statement, params)
        conn.execute("VACUUM ANALYZE")
        log(f"history generated in {time.monotonic() - started:.0f} s")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("cases", "hops", "queue_events", "agent_sessions", "agent_pauses")}
        size = conn.execute("SELECT pg_database_size(current_database()) / 1048576").fetchone()
        counts["database MB"] = size[0] if size else 0
        return counts


def measure(dsn: str, days: int, runs: int) -> list[tuple[str, int, float, float, float]]:
    """(query, rows, first ms, median ms, max ms) for a day in the middle of the history."""
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        day = conn.execute("SELECT (%s::timestamptz AT TIME ZONE %s)::date + %s",
                           (START, TZ, days // 2)).fetchone()[0]  # type: ignore[index]
        since, until = conn.execute("SELECT (%s::date)::timestamp AT TIME ZONE %s,"
                                    " ((%s::date) + 1)::timestamp AT TIME ZONE %s",
                                    (day, TZ, day, TZ)).fetchone()  # type: ignore[misc]
        params = {"since": since, "until": until, "tz": TZ}
        for name, query in QUERIES.items():
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                n = len(conn.execute(query, params).fetchall())
                times.append((time.perf_counter() - started) * 1000)
            out.append((name, n, times[0], statistics.median(times[1:] or times), max(times[1:] or times)))
            log(f"{name}: {n} rows, first {times[0]:.0f} ms, median {statistics.median(times):.0f} ms")
    return out


def report(counts: dict[str, int], timings: list[tuple[str, int, float, float, float]], days: int) -> str:
    intro = (f"`make bench-stats` (`bench/stats_bench.py`): a history of {counts['hops']:,} hops over"
             f" {days} days ({counts['queue_events']:,} queue events, {counts['agent_sessions']:,} agent"
             f" sessions, {QUEUES} queues, {AGENTS} agents, {counts['database MB']} MB), generated with"
             f" generate_series; one day in the middle (about {counts['hops'] // days:,} hops), each query"
             " run repeatedly on one connection.")
    lines = [BEGIN, f"## Statistics queries ({datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs)", "",
             intro, "", "| query | rows | first run ms | median ms | max ms |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {n} | {first:.0f} | {median:.0f} | {worst:.0f} |"
              for name, n, first, median, worst in timings]
    return "\n".join(lines + [END])


def write_results(section: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hops", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=7, help="runs of each query")
    parser.add_argument("--admin-dsn", help="a role that may CREATE DATABASE (default: the lab's)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its name is printed)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results.md alone")
    args = parser.parse_args()
    admin = args.admin_dsn or admin_dsn_of_lab()
    name = f"hotline_stats_bench_{os.getpid()}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
        print(f"cannot create the scratch database (is the lab's PostgreSQL up?): {reason[0].strip()}",
              file=sys.stderr)
        return 1
    try:
        log(f"generating {args.hops:,} hops over {args.days} days into {name}")
        counts = generate(scratch_dsn(admin, name), args.hops, args.days)
        section = report(counts, measure(scratch_dsn(admin, name), args.days, args.runs), args.days)
    finally:
        if args.keep:
            log(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(section)
    if not args.no_write:
        write_results(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
