"""Supervisor statistics from real calls: a fixed set of calls through the lab (answered inside
and outside the service-level threshold, a short and a long abandon, an overflow, a busy
refusal), then every figure of `stats_queue` and `stats_agent` against the values worked out by
hand, and the timing figures against a recomputation from the raw queue events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import hotline, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

CENTRE = BASE + """
[queues.stats]
service_level = 2
max_wait = 8
ring_timeout = 10
overflow = "hangup"

[hotlines.stats]
entry = "queue:stats"

[numbers."+74950002220"]
hotline = "stats"
lines = 5

[numbers."+74950002221"]
hotline = "stats"
lines = 1
"""
MAIN, ONE_LINE = "84950002220", "84950002221"


def answered_by_the_agent(lab: Lab, agent_name: str, password: str, ring_ms: int) -> None:
    phone = sipp.agent_phone(agent_name, password, ring_ms=ring_ms)
    wait_until(lambda: registered(lab, agent_name), what="agent phone registered")
    # The caller is answered when it joins: it stays past the ringing, then talks ~1.5 s.
    run = sipp.call(MAIN, "caller_hangs_up.xml", hold_ms=ring_ms + 1500)
    assert run.ok, run.output[:2000]
    assert sipp.finish(phone).ok


def queue_figures(db: psycopg.Connection) -> dict[str, Any]:
    return rows(db, "SELECT * FROM stats_queue(now() - interval '1 hour', now() + interval '1 hour')"
                    " WHERE queue = 'stats'")[0]


@pytest.mark.provision(CENTRE)
def test_queue_and_agent_figures_of_a_known_set_of_real_calls(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    (agent,) = logged_in_agents(daemon_env, tmp_path, "st", {"stats": 0})
    answered_by_the_agent(lab, agent.name, agent.password, ring_ms=300)   # waits ~0.3 s: inside 2 s
    answered_by_the_agent(lab, agent.name, agent.password, ring_ms=3000)  # waits ~3 s: outside
    hotline(daemon_env, "agent", "pause", agent.name, "coaching")
    short = sipp.start_call(MAIN, "caller_hangs_up.xml", hold_ms=1000)    # abandons after ~1 s
    long = sipp.start_call(MAIN, "caller_hangs_up.xml", hold_ms=6000)     # abandons after ~6 s
    overflowing = sipp.start_call(ONE_LINE)                               # overflows at 8 s
    wait_until(lambda: len(rows(db, "SELECT id FROM queue_events WHERE event = 'join'")) == 5,
               what="three callers waiting")
    assert sipp.call(ONE_LINE, "caller_expects_busy.xml").ok              # its one line is held: 486
    for caller in (short, long, overflowing):
        assert sipp.finish(caller).ok
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 6, what="all ended")

    q = queue_figures(db)
    counts = {k: q[k] for k in ("offered", "answered", "answered_in_sl", "abandoned", "short_abandons",
                                "abandoned_in_sl", "overflowed", "refused", "busy", "waiting", "failed")}
    assert counts == {"offered": 5, "answered": 2, "answered_in_sl": 1, "abandoned": 2, "short_abandons": 1,
                      "abandoned_in_sl": 1, "overflowed": 1, "refused": 0, "busy": 1, "waiting": 0,
                      "failed": 0}
    # 1 / (2 + 2 - 1); 1 / 2; (1 + 1) / (2 + 2); 2 / 5
    assert (float(q["service_level_pct"]), float(q["sl_answered_pct"]), float(q["sl_offered_pct"]),
            float(q["abandon_rate_pct"])) == (33.3, 50.0, 50.0, 40.0)
    assert q["sl_threshold_s"] == 2 and q["max_wait_s"] == 8

    # The timing figures are what the raw events say, rounded to whole seconds.
    raw = rows(db, "SELECT event, wait_ms, talk_ms FROM queue_events")
    answers = [e["wait_ms"] for e in raw if e["event"] == "answer"]
    outcomes = [e["wait_ms"] for e in raw if e["event"] in ("answer", "abandon", "overflow")]
    talks = [e["talk_ms"] for e in raw if e["event"] == "complete"]
    assert q["asa_s"] == round(sum(answers) / len(answers) / 1000)
    assert q["avg_wait_s"] == round(sum(outcomes) / len(outcomes) / 1000)
    assert q["avg_talk_s"] == round(sum(talks) / len(talks) / 1000) and 1 <= q["avg_talk_s"] <= 3

    a = rows(db, "SELECT * FROM stats_agent(now() - interval '1 hour', now() + interval '1 hour')"
                 " WHERE agent = %s", agent.name)[0]
    assert (a["rung"], a["answered"], a["missed"], a["completed"]) == (2, 2, 0, 2)
    assert a["talk_s"] == round(sum(talks) / 1000)
    assert a["paused_s"] >= 8 and set(a["pause_by_reason"]) == {"coaching"}
