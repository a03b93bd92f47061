"""Holds through the real lab: a sipp caller is answered by a sipp agent phone that, after a
second of talk, puts the caller on hold as a SIP phone's hold button does (a re-INVITE with
a=sendonly), takes them back two seconds later (a=sendrecv), talks on and hangs up. Asterisk sends
the app ChannelHold and ChannelUnhold on the agent's leg; the hold's row (its queue, agent, who
held, how long), the contact events, `hotline case show` and `hotline stats` are checked."""

from __future__ import annotations

import json
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

NUMBER = "84950003401"
CENTRE = BASE + """
[queues.held]
wrapup = 0

[hotlines.held]
entry = "queue:held"

[numbers."+74950003401"]
hotline = "held"
"""
HOLD_MS = 2000


@pytest.mark.provision(CENTRE)
def test_an_agent_phones_hold_and_unhold_is_recorded_with_its_events_case_and_stats(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "hd", {"held": 0})
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=300, scenario="agent_holds.xml",
                             more_fields=("1000", str(HOLD_MS), "1000"))
    wait_until(lambda: registered(lab, agent.name) or phone.poll() is not None, what="the agent registered")
    assert phone.poll() is None, sipp.finish(phone).output
    caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller="+79160000041", timeout_s=30)
    for run in (caller, phone):
        finished = sipp.finish(run)
        assert finished.ok, finished.output[-2000:]
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the call ended")
    wait_until(lambda: rows(db, "SELECT id FROM holds WHERE ended_at IS NOT NULL"), what="the hold closed")

    [hop] = rows(db, "SELECT * FROM hops WHERE caller_num = '+79160000041'")
    [hold] = rows(db, "SELECT h.*, q.name AS queue, a.name AS agent FROM holds h"
                      " JOIN queues q ON q.id = h.queue_id JOIN agents a ON a.id = h.agent_id")
    assert (hold["case_id"], hold["hop_id"], hold["queue"], hold["agent"], hold["held_by"]) == (
        hop["case_id"], hop["id"], "held", agent.name, "agent")
    held_ms = (hold["ended_at"] - hold["started_at"]).total_seconds() * 1000
    assert HOLD_MS - 300 <= held_ms <= HOLD_MS + 1000, held_ms
    assert hop["answered_at"] < hold["started_at"] and hold["ended_at"] < hop["ended_at"]

    events = rows(db, "SELECT kind, agent, queue, data FROM contact_events WHERE kind LIKE 'hold_%%'"
                      " ORDER BY id")
    assert [(e["kind"], e["agent"], e["queue"], e["data"]["hold_id"], e["data"]["held_by"])
            for e in events] == [("hold_started", agent.name, "held", hold["id"], "agent"),
                                 ("hold_ended", agent.name, "held", hold["id"], "agent")]
    assert abs(events[1]["data"]["hold_ms"] - held_ms) <= 1

    shown = hotline(daemon_env, "case", "show", str(hop["case_id"])).stdout
    assert f"put on hold by the agent {agent.name}" in shown
    assert f"hold by the agent {agent.name} ended after 2 s" in shown

    held = {r["queue"]: r for r in stats(daemon_env, "queues")}["held"]
    assert (held["answered"], held["hold_count"], held["hold_time_s"], held["avg_hold_s"]) == (1, 1, 2, 2)
    mine = {r["agent"]: r for r in stats(daemon_env, "agents")}[agent.name]
    assert (mine["hold_count"], mine["hold_time_s"], mine["avg_hold_s"]) == (1, 2, 2)
    assert "HOLDS" in hotline(daemon_env, "stats", "queues").stdout


def stats(env: dict[str, str], report: str) -> list[dict[str, Any]]:
    rows_: list[dict[str, Any]] = json.loads(hotline(env, "stats", report, "--format", "json").stdout)
    return rows_
