"""Attended (consult) transfers from the CLI through the real lab: `hotline case transfer CASE
agent:NAME --attended` takes the customer (sipp) out of the case's bridge onto music on hold and
rings the second agent's phone (sipp), which joins the first agent in the bridge; `--complete`
leaves the customer with the second agent (the first agent's phone gets its BYE), `--cancel` takes
the customer back to the first, and so does a second agent who never answers. Checked: who is in
the case's bridge (ARI) at each step, what each phone saw (its sipp scenario), and the rows."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.transfer_checks import bridge_channels, channel_name, stop

pytestmark = pytest.mark.lab

NUMBER = "84950002258"
CALLER = "+79165554324"
ONE_QUEUE = pytest.mark.provision(BASE + """
[queues.tc_first]
ring_timeout = 4
wrapup = 0

[hotlines.tc]
entry = "queue:tc_first"

[numbers."+74950002258"]
hotline = "tc"
""")


def agents_in_bridge(env: dict[str, str], case_id: object) -> list[str]:
    """Who is in case `case_id`'s bridge: the agents by name (their PJSIP channel), the customer as
    "customer"."""
    names = []
    for channel in bridge_channels(env, case_id):
        name = channel_name(env, channel)
        names.append("customer" if "sipp-trunk" in name else name.removeprefix("PJSIP/").rsplit("-", 1)[0])
    return sorted(names)


def until_bridge_has(env: dict[str, str], case_id: object, *who: str) -> None:
    wait_until(lambda: agents_in_bridge(env, case_id) == sorted(who), what=f"the bridge holding {who}")


def start(lab: Lab, first: Agent, second: Agent, second_scenario: str = "agent_answers.xml",
          ) -> tuple[list[subprocess.Popen[str]], subprocess.Popen[str]]:
    phones = [sipp.agent_phone(first.name, first.password, ring_ms=200),
              sipp.agent_phone(second.name, second.password, ring_ms=200, scenario=second_scenario)]
    wait_until(lambda: registered(lab, first.name) and registered(lab, second.name),
               what="agent phones registered")
    return phones, sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=60)


def transfer(env: dict[str, str], case_id: object, *args: str) -> str:
    done = hotline_cli(env, "case", "transfer", str(case_id), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def answered_hop(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
                      what="the call answered by the first agent")


def outcomes(db: psycopg.Connection) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["target"], r["outcome"])
            for r in rows(db, "SELECT kind, target, outcome FROM transfers ORDER BY id")]


@ONE_QUEUE
def test_an_attended_transfer_completed_leaves_the_customer_with_the_consulted_agent(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "cc", {"tc_first": 0}, {})
    phones, caller = start(lab, first, second)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        until_bridge_has(daemon_env, case, "customer", first.name)
        said = transfer(daemon_env, case, f"agent:{second.name}", "--attended")
        assert said == (f"case {case}: consulting agent:{second.name}, the customer on hold; then "
                        f"`hotline case transfer {case} --complete` or `--cancel`")
        until_bridge_has(daemon_env, case, first.name, second.name)  # the customer out, on hold
        assert transfer(daemon_env, case, "--complete") == f"case {case}: transferred to agent:{second.name}"
        assert sipp.finish(phones[0]).ok  # the first agent's phone got its BYE
        until_bridge_has(daemon_env, case, "customer", second.name)
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(phones[1]).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop([*phones, caller])
    assert outcomes(db) == [("attended", f"agent:{second.name}", "consulting"),
                            ("attended", f"agent:{second.name}", "transferred")]
    events = [(e["event"], e["agent"]) for e in rows(
        db, "SELECT e.event, a.name AS agent FROM queue_events e LEFT JOIN agents a ON a.id = e.agent_id"
            " ORDER BY e.id")]
    assert events == [("join", None), ("ring", first.name), ("answer", first.name), ("complete", first.name),
                      ("transfer", first.name), ("join", None), ("ring", second.name),
                      ("answer", second.name), ("complete", second.name)]
    shown = hotline_cli(daemon_env, "case", "show", str(case)).stdout
    assert f"attended transfer asked by cli from queue tc_first agent {first.name} to " \
           f"agent:{second.name}: transferred" in shown


@ONE_QUEUE
def test_an_attended_transfer_cancelled_takes_the_customer_back_to_the_agent(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "cn", {"tc_first": 0}, {})
    phones, caller = start(lab, first, second)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        until_bridge_has(daemon_env, case, "customer", first.name)
        transfer(daemon_env, case, f"agent:{second.name}", "--attended")
        until_bridge_has(daemon_env, case, first.name, second.name)
        assert transfer(daemon_env, case, "--cancel") == (
            f"case {case}: attended transfer to agent:{second.name} cancelled, "
            f"the customer back with the agent")
        assert sipp.finish(phones[1]).ok  # the second agent's phone got its BYE
        until_bridge_has(daemon_env, case, "customer", first.name)
        again = hotline_cli(daemon_env, "case", "transfer", str(case), "--complete")
        assert again.returncode == 1
        assert again.stderr.strip() == (f"Error: case {case}: --complete refused: "
                                        f"no attended transfer is under way")
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(phones[0]).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop([*phones, caller])
    assert outcomes(db) == [("attended", f"agent:{second.name}", "consulting"),
                            ("attended", f"agent:{second.name}", "cancelled"),
                            ("attended", "(none)", "refused")]
    assert [e["event"] for e in rows(db, "SELECT event FROM queue_events ORDER BY id")] == [
        "join", "ring", "answer", "complete"]  # one talk, never passed on


@ONE_QUEUE
def test_a_consulted_agent_who_does_not_answer_leaves_the_customer_with_the_agent(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "cu", {"tc_first": 0}, {})
    phones, caller = start(lab, first, second, "agent_no_answer.xml")
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        until_bridge_has(daemon_env, case, "customer", first.name)
        transfer(daemon_env, case, f"agent:{second.name}", "--attended")
        until_bridge_has(daemon_env, case, first.name)  # the customer on hold while the second rings
        assert sipp.finish(phones[1]).ok  # rang, cancelled at the queue's ring timeout (487)
        until_bridge_has(daemon_env, case, "customer", first.name)
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(phones[0]).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop([*phones, caller])
    assert outcomes(db) == [("attended", f"agent:{second.name}", "consulting"),
                            ("attended", f"agent:{second.name}", "unanswered")]


@ONE_QUEUE
def test_a_daemon_killed_during_a_consult_gives_the_customer_back_to_the_agent_when_it_returns(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "ck", {"tc_first": 0}, {})
    phones, caller = start(lab, first, second)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        until_bridge_has(daemon_env, case, "customer", first.name)
        transfer(daemon_env, case, f"agent:{second.name}", "--attended")
        until_bridge_has(daemon_env, case, first.name, second.name)  # the customer on hold
        daemon.stop(signal.SIGKILL)
        daemon.start()
        assert sipp.finish(phones[1]).ok  # the consulted agent's leg hung up: its BYE
        until_bridge_has(daemon_env, case, "customer", first.name)
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(phones[0]).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop([*phones, caller])
    assert [e["event"] for e in rows(db, "SELECT event FROM queue_events ORDER BY id")] == [
        "join", "ring", "answer", "complete"]
    assert [h["end_reason"] for h in rows(db, "SELECT end_reason FROM hops")] == ["completed"]
