"""Caller priority through the real lab: sipp callers wait in one queue while its only agent is
paused; when the agent is unpaused, the caller with the higher priority is rung first even though
it came later, and callers of equal priority are rung first come, first served. What the agent's
phone saw (the caller id of each INVITE, in order), what a supervisor reads (`hotline stats live`,
`hotline case show`) and the rows are checked."""

from __future__ import annotations

import base64
import json
import re
import signal
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, hotline, logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

PLAIN, VIP, GOLD = "84950002241", "84950002242", "84950002243"
PRIORITIES = BASE + """
[queues.prio]
strategy = "linear"
ring_timeout = 10
retry = 1
max_wait = 120

[menus.vip]
prompt = "beep"
timeout = 3
retries = 1
options = { "1" = { action = "queue:prio", priority = 7 } }

[hotlines.prio-plain]
entry = "queue:prio"

[hotlines.prio-vip]
entry = "menu:vip"

[numbers."+74950002241"]
hotline = "prio-plain"
lines = 3

[numbers."+74950002242"]
hotline = "prio-vip"
lines = 3
priority = 2

[numbers."+74950002243"]
hotline = "prio-plain"
lines = 3
priority = 4
"""


@pytest.fixture
def paused_agent(daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path, lab: Lab,
                 rendered_files_removed_afterwards: Path) -> Agent:
    """The one agent of queue `prio`, logged in and paused: callers wait until it is unpaused."""
    agent = logged_in_agents(daemon_env, tmp_path, "pr", {"prio": 0})[0]
    hotline(daemon_env, "agent", "pause", agent.name, "briefing")
    return agent


def invited_callers(messages: Path) -> list[str]:
    """The caller id (From user) of every INVITE the agent's phone received, in order."""
    out = []
    for message in messages.read_text(errors="replace").replace("\r\n", "\n").split("-" * 35):
        if "message received" in message and re.search(r"^\s*INVITE sip:", message, re.MULTILINE):
            sender = re.search(r"^\s*From:[^<\n]*<sip:([^@>;]+)", message, re.MULTILINE)
            out.append(sender.group(1) if sender else "(no From)")
    return out


def live_waiting(env: dict[str, str]) -> list[dict[str, Any]]:
    shown = hotline_cli(env, "stats", "live", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    waiting: list[dict[str, Any]] = json.loads(shown.stdout)["waiting"]
    return waiting


def wallboard_line(env: dict[str, str], agent: Agent) -> list[dict[str, Any]]:
    """The line of queue prio as `/api/queues` answers an agent's login (a wallboard's view)."""
    token = base64.b64encode(f"{agent.name}:{agent.password}".encode()).decode()
    request = urllib.request.Request(f"http://{env['HOTLINE_WEB_LISTEN']}/api/queues",
                                     headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        queues = json.loads(response.read())
    line: list[dict[str, Any]] = next(q for q in queues if q["queue"] == "prio")["line"]
    return line


def joins(db: psycopg.Connection) -> int:
    return len(rows(db, "SELECT id FROM queue_events WHERE event = 'join'"))


def agent_phone(agent: Agent, lab: Lab, messages: Path) -> Any:
    """The agent's phone: takes two calls, each rung 200 ms, talked 1.5 s and hung up by the agent."""
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=200, calls=2,
                             scenario="agent_talks_then_hangs_up.xml", more_fields=("1500",),
                             messages=messages)
    wait_until(lambda: registered(lab, agent.name) or phone.poll() is not None, what="agent phone registered")
    assert phone.poll() is None, sipp.finish(phone).output
    return phone


@pytest.mark.provision(PRIORITIES)
def test_a_later_caller_with_a_higher_priority_is_rung_first_when_the_agent_frees(
        paused_agent: Agent, daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection) -> None:
    seen = tmp_path / "agent.msg"
    phone = agent_phone(paused_agent, lab, seen)
    plain = sipp.start_call(PLAIN, "caller_until_bye.xml", caller="+74951110001", timeout_s=60)
    wait_until(lambda: joins(db) == 1, what="the first caller in line")
    # Dials a number of priority 2 and presses the menu key of priority 7: the key's wins.
    vip = sipp.start_pressing_keys(VIP, "1", first_ms=800, caller="+79162220002", timeout_s=60)
    wait_until(lambda: joins(db) == 2, what="the second caller in line")

    def vip_ahead() -> list[dict[str, Any]] | None:
        line = live_waiting(daemon_env)
        return line if [(w["caller"], w["position"], w["priority"]) for w in line] == [
            ("+79162220002", 1, 7), ("+74951110001", 2, 0)] else None
    wait_until(vip_ahead, what="stats live: the later, higher-priority caller first in line")
    line = wallboard_line(daemon_env, paused_agent)
    assert [(w["position"], w["priority"]) for w in line] == [(1, 7), (2, 0)], line
    assert line[0]["waiting_since"] > line[1]["waiting_since"]  # first in line, though it came later
    vip_hop = rows(db, "SELECT case_id FROM hops WHERE caller_num = '+79162220002'")[0]
    shown = hotline_cli(daemon_env, "case", "show", str(vip_hop["case_id"]))
    assert shown.returncode == 0, shown.stderr
    assert "queue prio: join (priority 7, position 1)" in shown.stdout, shown.stdout
    assert " priority 7" in shown.stdout.splitlines()[1]  # the legs' line

    hotline(daemon_env, "agent", "unpause", paused_agent.name)
    for run in (sipp.finish(vip, 60), sipp.finish(plain, 60), sipp.finish(phone, 60)):
        assert run.ok, run.output[-2500:] + daemon.log()[-3000:]
    assert invited_callers(seen) == ["+79162220002", "+74951110001"], seen.read_text()[-3000:]

    hops = wait_until(lambda: h if len(h := rows(
        db, "SELECT caller_num, priority, end_reason, answered_at FROM hops WHERE ended_at IS NOT NULL"
            " ORDER BY answered_at")) == 2 else None, what="both hops closed")
    assert [(h["caller_num"], h["priority"], h["end_reason"]) for h in hops] == [
        ("+79162220002", 7, "completed"), ("+74951110001", 0, "completed")]
    joined = rows(db, "SELECT h.caller_num, e.priority, e.position FROM queue_events e"
                      " JOIN hops h ON h.id = e.hop_id WHERE e.event = 'join' ORDER BY e.id")
    # The VIP joined second in time and first in line: position 1.
    assert [(j["caller_num"], j["priority"], j["position"]) for j in joined] == [
        ("+74951110001", 0, 1), ("+79162220002", 7, 1)]
    wait_until(lambda: live_waiting(daemon_env) == [], what="stats live: nobody waiting")


@pytest.mark.provision(PRIORITIES)
def test_callers_of_equal_priority_are_rung_first_come_first_served(
        paused_agent: Agent, daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection) -> None:
    seen = tmp_path / "agent.msg"
    phone = agent_phone(paused_agent, lab, seen)
    first = sipp.start_call(GOLD, "caller_until_bye.xml", caller="+74951110011", timeout_s=60)
    wait_until(lambda: joins(db) == 1, what="the first caller in line")
    second = sipp.start_call(GOLD, "caller_until_bye.xml", caller="+74951110022", timeout_s=60)
    wait_until(lambda: joins(db) == 2, what="the second caller in line")
    wait_until(lambda: [(w["caller"], w["priority"]) for w in live_waiting(daemon_env)] == [
        ("+74951110011", 4), ("+74951110022", 4)], what="stats live: both callers, first come first")

    hotline(daemon_env, "agent", "unpause", paused_agent.name)
    for run in (sipp.finish(first, 60), sipp.finish(second, 60), sipp.finish(phone, 60)):
        assert run.ok, run.output[-2500:] + daemon.log()[-3000:]
    assert invited_callers(seen) == ["+74951110011", "+74951110022"], seen.read_text()[-3000:]
    hops = wait_until(lambda: h if len(h := rows(
        db, "SELECT caller_num, priority, end_reason FROM hops WHERE ended_at IS NOT NULL"
            " ORDER BY answered_at")) == 2 else None, what="both hops closed")
    assert [(h["caller_num"], h["priority"], h["end_reason"]) for h in hops] == [
        ("+74951110011", 4, "completed"), ("+74951110022", 4, "completed")]


@pytest.mark.provision(PRIORITIES)
def test_callers_waiting_through_a_daemon_kill_keep_their_priorities_and_order(
        paused_agent: Agent, daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection) -> None:
    seen = tmp_path / "agent.msg"
    phone = agent_phone(paused_agent, lab, seen)
    plain = sipp.start_call(PLAIN, "caller_until_bye.xml", caller="+74951110031", timeout_s=60)
    wait_until(lambda: joins(db) == 1, what="the first caller in line")
    gold = sipp.start_call(GOLD, "caller_until_bye.xml", caller="+74951110032", timeout_s=60)
    wait_until(lambda: joins(db) == 2, what="the second caller in line")
    daemon.stop(signal.SIGKILL)
    daemon.start()  # the new daemon puts both back in line from their hops: join time and priority
    wait_until(lambda: [(w["caller"], w["priority"]) for w in live_waiting(daemon_env)] == [
        ("+74951110032", 4), ("+74951110031", 0)], what="stats live after the restart: priority first")

    hotline(daemon_env, "agent", "unpause", paused_agent.name)
    for run in (sipp.finish(gold, 60), sipp.finish(plain, 60), sipp.finish(phone, 60)):
        assert run.ok, run.output[-2500:] + daemon.log()[-3000:]
    assert invited_callers(seen) == ["+74951110032", "+74951110031"], seen.read_text()[-3000:]
    assert joins(db) == 2  # put back in line, not joined again
