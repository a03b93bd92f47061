"""The post-call survey through the real lab: three sipp callers reach three sipp agents of a
queue with a two-question survey. Two agents hang up (BYE) while their callers stay on the line
and answer by keys (SIP INFO, as the IVR tests send them): one presses 4 then 2, the other a key
that is no score (9, the question is asked again), then 3 and 5. The third caller hangs up
before its agent: no survey. What each sipp saw, the rows (surveys, survey_answers with their
queue and agent, the talk's complete and time), the contact events, `hotline case show` and
`hotline stats` are checked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, hotline, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

NUMBER = "84950003301"
CENTRE = BASE + """
[queues.rated]
strategy = "linear"
wrapup = 60
ring_timeout = 10
survey = ["beep", "beep"]
survey_thanks = "auth-thankyou"

[hotlines.rated]
entry = "queue:rated"

[numbers."+74950003301"]
hotline = "rated"
lines = 3
"""
TALK_MS = 2000  # the agents who hang up do so this long after answering


def phone(lab: Lab, agent: Agent, scenario: str, *more: str) -> subprocess.Popen[str]:
    run = sipp.agent_phone(agent.name, agent.password, ring_ms=300, scenario=scenario, more_fields=more)
    wait_until(lambda: registered(lab, agent.name) or run.poll() is not None, what=f"{agent.name} registered")
    assert run.poll() is None, sipp.finish(run).output
    return run


def answered_hop(db: psycopg.Connection, caller: str) -> dict[str, Any]:
    found = rows(db, "SELECT h.*, a.name AS agent FROM hops h JOIN agents a ON a.id = h.agent_id"
                     " WHERE h.caller_num = %s AND h.answered_at IS NOT NULL", caller)
    return found[0] if found else {}


def stats(env: dict[str, str], report: str) -> dict[str, dict[str, Any]]:
    shown = hotline(env, "stats", report, "--format", "json")
    key = report[:-1]  # queues -> queue, agents -> agent
    return {r[key]: r for r in json.loads(shown.stdout)}


@pytest.mark.provision(CENTRE)
def test_callers_whose_agent_hung_up_answer_the_survey_and_one_who_hung_up_first_gets_none(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second, third = logged_in_agents(daemon_env, tmp_path, "sv", {"rated": 0}, {"rated": 0},
                                            {"rated": 0})
    phones = [phone(lab, first, "agent_talks_then_hangs_up.xml", str(TALK_MS)),
              phone(lab, second, "agent_talks_then_hangs_up.xml", str(TALK_MS)),
              phone(lab, third, "agent_answers.xml")]
    # Linear: each caller rings the first agent not busy, so the three go to the three agents in
    # order; each starts once the one before it is answered. Keys come 4 s after the answer (the
    # survey began at 2 s), then 2 s apart.
    good = sipp.start_pressing_keys(NUMBER, "4", "2", first_ms=4000, gap_ms=2000, caller="+79160000001",
                                    timeout_s=40)
    wait_until(lambda: answered_hop(db, "+79160000001"), what="the first caller answered")
    fumbling = sipp.start_pressing_keys(NUMBER, "9", "3", "5", first_ms=4000, gap_ms=2000,
                                        caller="+79160000002", timeout_s=40)
    wait_until(lambda: answered_hop(db, "+79160000002"), what="the second caller answered")
    leaving = sipp.start_call(NUMBER, "caller_hangs_up.xml", caller="+79160000003", hold_ms=1000)
    for run in (good, fumbling, leaving, *phones):
        finished = sipp.finish(run)
        assert finished.ok, finished.output[-2000:]  # each caller got its BYE: none was left hanging
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 3, what="all ended")

    hops = {n: answered_hop(db, f"+7916000000{n}") for n in "123"}
    assert [hops[n]["agent"] for n in "123"] == [first.name, second.name, third.name]
    assert [hops[n]["end_reason"] for n in "123"] == ["completed"] * 3
    answers = {n: [(a["question"], a["score"], a["queue"], a["agent"]) for a in rows(
        db, "SELECT s.question, s.score, q.name AS queue, a.name AS agent FROM survey_answers s"
            " JOIN queues q ON q.id = s.queue_id JOIN agents a ON a.id = s.agent_id"
            " WHERE s.hop_id = %s ORDER BY s.question", hops[n]["id"])] for n in "123"}
    assert answers == {"1": [(1, 4, "rated", first.name), (2, 2, "rated", first.name)],
                       "2": [(1, 3, "rated", second.name), (2, 5, "rated", second.name)],
                       "3": []}
    surveys = rows(db, "SELECT hop_id, questions FROM surveys ORDER BY hop_id")
    assert surveys == [{"hop_id": hops[n]["id"], "questions": 2} for n in "12"]

    completes = {r["hop_id"]: r for r in rows(db, "SELECT * FROM queue_events WHERE event = 'complete'")}
    for n, who in (("1", "agent"), ("2", "agent"), ("3", "caller")):
        assert completes[hops[n]["id"]]["detail"] == f"{who} hung up"
    for n in "12":  # the talk's time is the talk's: the survey after it (several seconds) is not in it
        hop, talk_ms = hops[n], completes[hops[n]["id"]]["talk_ms"]
        on_line_ms = (hop["ended_at"] - hop["answered_at"]).total_seconds() * 1000
        assert TALK_MS - 500 <= talk_ms <= TALK_MS + 1500, talk_ms
        assert on_line_ms - talk_ms >= 2500, (talk_ms, on_line_ms)

    events = rows(db, "SELECT hop_id, queue, agent, data FROM contact_events WHERE kind = 'survey_answered'"
                      " ORDER BY id")
    seen = [(e["hop_id"], e["queue"], e["agent"], e["data"]["question"], e["data"]["score"]) for e in events]
    assert seen == [
        (hops["1"]["id"], "rated", first.name, 1, 4), (hops["1"]["id"], "rated", first.name, 2, 2),
        (hops["2"]["id"], "rated", second.name, 1, 3), (hops["2"]["id"], "rated", second.name, 2, 5)]

    shown = hotline(daemon_env, "case", "show", str(hops["2"]["case_id"])).stdout
    assert f"survey question 1 answered 3 (the talk with {second.name})" in shown
    assert f"survey question 2 answered 5 (the talk with {second.name})" in shown

    rated = stats(daemon_env, "queues")["rated"]
    assert {k: rated[k] for k in ("survey_offered", "survey_responses", "survey_response_pct",
                                  "survey_avg_score")} == {
        "survey_offered": 2, "survey_responses": 2, "survey_response_pct": 100.0,
        "survey_avg_score": 3.5}  # (4 + 2 + 3 + 5) / 4; the third caller hung up first: not offered
    agents = stats(daemon_env, "agents")
    assert [(agents[a.name]["survey_offered"], agents[a.name]["survey_avg_score"])
            for a in (first, second, third)] == [(1, 3.0), (1, 4.0), (0, None)]
    table = hotline(daemon_env, "stats", "queues").stdout
    assert "SURVEYS" in table and "SCORE" in table
