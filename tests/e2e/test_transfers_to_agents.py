"""Blind transfers to one agent through the real lab: the first agent's phone (sipp) sends a REFER
naming the second agent's endpoint, or `hotline case transfer CASE agent:NAME`; the second agent's
phone rings and is bridged with the same caller on the same hop, in a visit of the first queue. An
agent who does not answer sends the caller back to the transferring agent where the queue says so
(`transfer_no_answer = "agent"`). An agent logged out, paused or busy is refused in one line, the
talk untouched. The rows say it: the queue events of both visits and one row of transfers each."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import hotline, logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.transfer_checks import bridge_channels, channel_name, phones, refer_accepted, sipfrags, stop

pytestmark = pytest.mark.lab

NUMBER = "84950002256"
CALLER = "+79165554322"
ONE_QUEUE = """
[queues.ta_first]
ring_timeout = 4
wrapup = {wrapup}
transfer_no_answer = "{no_answer}"

[hotlines.ta]
entry = "queue:ta_first"

[numbers."+74950002256"]
hotline = "ta"
"""
BACK_TO_QUEUE = pytest.mark.provision(BASE + ONE_QUEUE.format(wrapup=0, no_answer="queue"))
BACK_TO_AGENT = pytest.mark.provision(BASE + ONE_QUEUE.format(wrapup=30, no_answer="agent"))


def answered_hop(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
                      what="the call answered by the first agent")


def bridged_with(env: dict[str, str], hop: dict[str, object], agent: str) -> list[str]:
    def now() -> list[str] | None:
        legs = bridge_channels(env, hop["case_id"])
        others = [c for c in legs if c != hop["channel_id"]]
        return legs if len(legs) == 2 and others and f"PJSIP/{agent}-" in channel_name(env, others[0]) \
            else None
    return wait_until(now, what=f"the caller bridged with {agent}")


def events(db: psycopg.Connection) -> list[tuple[str, str | None]]:
    return [(e["event"], e["agent"]) for e in rows(
        db, "SELECT e.event, a.name AS agent FROM queue_events e LEFT JOIN agents a ON a.id = e.agent_id"
            " ORDER BY e.id")]


def hang_up_caller(lab: Lab, db: psycopg.Connection, hop: dict[str, object],
                   caller: subprocess.Popen[str]) -> None:
    lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
    assert sipp.finish(caller).ok
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")


@BACK_TO_QUEUE
def test_a_refer_naming_another_agents_endpoint_rings_that_agent_and_bridges_them(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    # the second agent is in no queue at all: only the transfer rings them
    first, second = logged_in_agents(daemon_env, tmp_path, "ar", {"ta_first": 0}, {})
    seen = tmp_path / "first-phone.msg"
    started = [sipp.agent_phone(first.name, first.password, ring_ms=200, scenario="agent_refers.xml",
                                more_fields=("1500", second.name), messages=seen),
               sipp.agent_phone(second.name, second.password, ring_ms=200)]
    try:
        wait_until(lambda: registered(lab, first.name) and registered(lab, second.name),
                   what="agent phones registered")
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        referring = sipp.finish(started[0])
        assert referring.ok, referring.output + daemon.log()  # REFER 202, NOTIFYs answered, BYE
        assert refer_accepted(seen) and sipfrags(seen)[-1] == "SIP/2.0 200 OK", seen.read_text()
        bridged_with(daemon_env, hop, second.name)
        hang_up_caller(lab, db, hop, caller)
        assert sipp.finish(started[1]).ok  # the second agent's phone got its BYE
    finally:
        stop(started)
    assert [h["end_reason"] for h in rows(db, "SELECT end_reason FROM hops")] == ["completed"]  # one hop
    assert events(db) == [
        ("join", None), ("ring", first.name), ("answer", first.name), ("complete", first.name),
        ("transfer", first.name), ("join", None), ("ring", second.name), ("answer", second.name),
        ("complete", second.name)]
    [row] = rows(db, "SELECT kind, asked_by, target, outcome FROM transfers")
    assert row == {"kind": "blind", "asked_by": "phone", "target": f"agent:{second.name}",
                   "outcome": "transferred"}
    [stats] = rows(db, "SELECT transferred_out, transferred_in, answered FROM stats_queue_today"
                       " WHERE queue = 'ta_first'")
    assert stats == {"transferred_out": 1, "transferred_in": 1, "answered": 2}


@BACK_TO_AGENT
def test_an_agent_who_does_not_answer_sends_the_caller_back_to_the_transferring_agent(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "an", {"ta_first": 0}, {})
    started = [sipp.agent_phone(first.name, first.password, ring_ms=200, calls=2),
               sipp.agent_phone(second.name, second.password, scenario="agent_no_answer.xml")]
    try:
        wait_until(lambda: registered(lab, first.name) and registered(lab, second.name),
                   what="agent phones registered")
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        bridged_with(daemon_env, hop, first.name)
        done = hotline_cli(daemon_env, "case", "transfer", str(hop["case_id"]), f"agent:{second.name}")
        assert done.returncode == 0, done.stderr + daemon.log()
        assert done.stdout.strip() == f"case {hop['case_id']}: transferred to agent:{second.name}"
        assert sipp.finish(started[1]).ok  # rang, was cancelled at the ring timeout (487)
        bridged_with(daemon_env, hop, first.name)  # rung back in wrap-up, answered again
        hang_up_caller(lab, db, hop, caller)
        assert sipp.finish(started[0]).ok  # two calls answered, two BYEs
    finally:
        stop(started)
    assert events(db) == [
        ("join", None), ("ring", first.name), ("answer", first.name), ("complete", first.name),
        ("transfer", first.name), ("join", None), ("ring", second.name), ("ring_noanswer", second.name),
        ("ring", first.name), ("answer", first.name), ("complete", first.name)]
    [row] = rows(db, "SELECT asked_by, target, outcome FROM transfers")
    assert row == {"asked_by": "cli", "target": f"agent:{second.name}", "outcome": "transferred"}


@BACK_TO_QUEUE
def test_a_transfer_to_an_agent_logged_out_paused_or_busy_is_refused_in_one_line_and_the_talk_goes_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, gone, lunch = logged_in_agents(daemon_env, tmp_path, "ad", {"ta_first": 0}, {}, {})
    hotline(daemon_env, "agent", "logout", gone.name)
    hotline(daemon_env, "agent", "pause", lunch.name, "lunch")
    started = phones(lab, first)
    try:
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        bridged_with(daemon_env, hop, first.name)
        for target, says in ((gone.name, "is logged out"), (lunch.name, "is paused"),
                             (first.name, "is the one talking with the customer")):
            refused = hotline_cli(daemon_env, "case", "transfer", str(hop["case_id"]), f"agent:{target}")
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert refused.stderr.strip() == (f"Error: case {hop['case_id']}: transfer to agent:{target} "
                                              f"refused: agent {target} {says}")
        bridged_with(daemon_env, hop, first.name)  # still talking
        hang_up_caller(lab, db, hop, caller)
        assert sipp.finish(started[0]).ok
    finally:
        stop(started)
    refusals = rows(db, "SELECT target, outcome FROM transfers ORDER BY id")
    assert [(r["target"], r["outcome"]) for r in refusals] == [
        (f"agent:{gone.name}", "refused"), (f"agent:{lunch.name}", "refused"),
        (f"agent:{first.name}", "refused")]
    assert events(db)[-1] == ("complete", first.name)


def waiting_callers(env: dict[str, str]) -> list[str]:
    """The callers waiting, in the order their queue serves them, as `hotline stats live` says."""
    shown = hotline_cli(env, "stats", "live", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    return [str(w["caller"]) for w in json.loads(shown.stdout)["waiting"]]


@pytest.mark.provision(BASE + ONE_QUEUE.format(wrapup=0, no_answer="queue") + "lines = 2\n")
def test_a_caller_a_transfer_nobody_answered_put_first_in_line_is_still_first_after_a_daemon_sigkill(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "ah", {"ta_first": 0}, {})
    started = [sipp.agent_phone(first.name, first.password, ring_ms=200, calls=2, timeout_s=90),
               sipp.agent_phone(second.name, second.password, scenario="agent_no_answer.xml", timeout_s=90)]
    later = "+79165554323"
    try:
        wait_until(lambda: registered(lab, first.name) and registered(lab, second.name),
                   what="agent phones registered")
        started.append(sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=90))
        hop = answered_hop(db)
        bridged_with(daemon_env, hop, first.name)
        started.append(sipp.start_call(NUMBER, "caller_until_bye.xml", caller=later, timeout_s=90))
        wait_until(lambda: waiting_callers(daemon_env) == [later], what="the second caller waiting")
        hotline(daemon_env, "agent", "pause", first.name, "test")  # nobody serves the line meanwhile
        done = hotline_cli(daemon_env, "case", "transfer", str(hop["case_id"]), f"agent:{second.name}")
        assert done.returncode == 0, done.stderr + daemon.log()
        assert sipp.finish(started[1]).ok  # rang, cancelled at the ring timeout
        wait_until(lambda: waiting_callers(daemon_env) == [CALLER, later], what="back first in line")

        daemon.stop(signal.SIGKILL)
        daemon.start()
        back = f"call {hop['channel_id']} back in queue ta_first at position 1 after a restart"
        wait_until(lambda: back in daemon.log() or None, what="first in line after the restart")
        wait_until(lambda: waiting_callers(daemon_env) == [CALLER, later], what="the line as stats show it")
        hotline(daemon_env, "agent", "unpause", first.name)
        bridged_with(daemon_env, hop, first.name)  # the first in line is served first
        [second_hop] = rows(db, "SELECT * FROM hops WHERE id <> %s", hop["id"])
        assert second_hop["answered_at"] is None
        for channel in (hop["channel_id"], second_hop["channel_id"]):
            lab.asterisk_cli(f"channel request hangup {channel}")
    finally:
        stop(started)
    joins = rows(db, "SELECT count(*) AS n FROM queue_events WHERE event = 'join' AND hop_id = %s", hop["id"])
    assert joins == [{"n": 2}]  # put back in line, not joined again
