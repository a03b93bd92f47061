"""Attended (consult) transfers from the CLI through the real lab: `hotline case transfer CASE
agent:NAME --attended` takes the customer (sipp) out of the case's bridge onto music on hold and
rings the second agent's phone (sipp), which joins the first agent in the bridge; `--complete`
leaves the customer with the second agent (the first agent's phone gets its BYE), `--cancel` takes
the customer back to the first, and so does a second agent who never answers. The first agent's
phone hanging up (its BYE) during the consult hands the customer over, as Asterisk's own attended
transfer does (atxferdropcall=no): to the second agent, answered or still ringing, and back to the
queue's head when the second never answers. Checked: who is in the case's bridge (ARI) at each
step, what each phone saw (its sipp scenario), and the rows."""

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
# The consulted agent rings long enough for the first agent to hang up meanwhile; the first, in
# wrap-up after that, is not the next agent rung.
LONG_RING = pytest.mark.provision(BASE + """
[queues.tc_first]
ring_timeout = 12
wrapup = 60

[hotlines.tc]
entry = "queue:tc_first"

[numbers."+74950002258"]
hotline = "tc"
""")
TALK_MS = 5000  # how long the first agent talks before its phone hangs up: the consult begins well within


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


def start(lab: Lab, first: Agent, second: Agent, second_scenario: str = "agent_answers.xml", *,
          first_hangs_up_ms: int | None = None, second_ring_ms: int = 200, third: Agent | None = None,
          ) -> tuple[list[subprocess.Popen[str]], subprocess.Popen[str]]:
    """The agents' phones (`first_hangs_up_ms`: the first hangs up, BYE, that long after answering;
    `third`: answers after 200 ms), then the caller."""
    first_phone = (sipp.agent_phone(first.name, first.password, ring_ms=200) if first_hangs_up_ms is None
                   else sipp.agent_phone(first.name, first.password, ring_ms=200,
                                         scenario="agent_talks_then_hangs_up.xml",
                                         more_fields=(str(first_hangs_up_ms),)))
    phones = [first_phone, sipp.agent_phone(second.name, second.password, ring_ms=second_ring_ms,
                                            scenario=second_scenario)]
    if third is not None:
        phones.append(sipp.agent_phone(third.name, third.password, ring_ms=200))
    wait_until(lambda: all(registered(lab, a.name) for a in (first, second, third) if a is not None),
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
    assert outcomes(db) == [("attended", f"agent:{second.name}", "consulting"),  # ended by the restart
                            ("attended", f"agent:{second.name}", "cancelled")]
    [ended] = rows(db, "SELECT detail FROM transfers WHERE outcome = 'cancelled'")
    assert ended["detail"] == "the daemon restarted during the consult"
    assert [h["end_reason"] for h in rows(db, "SELECT end_reason FROM hops")] == ["completed"]


# -- the first agent hangs up during the consult: the customer is handed over ----------------------


def queue_events(db: psycopg.Connection) -> list[tuple[str, str | None]]:
    return [(e["event"], e["agent"]) for e in rows(
        db, "SELECT e.event, a.name AS agent FROM queue_events e LEFT JOIN agents a ON a.id = e.agent_id"
            " ORDER BY e.id")]


def attended_rows(db: psycopg.Connection) -> list[tuple[str, str, str]]:
    return [(r["target"], r["outcome"], r["detail"])
            for r in rows(db, "SELECT target, outcome, detail FROM transfers"
                                  " WHERE kind = 'attended' ORDER BY id")]


def transfers_counted(db: psycopg.Connection, *agents: Agent) -> list[tuple[int, int]]:
    """(transferred_out, transferred_in) of each agent today, from stats_agent."""
    counted = {r["agent"]: (r["transferred_out"], r["transferred_in"]) for r in rows(
        db, "SELECT agent, transferred_out, transferred_in FROM stats_agent_today")}
    return [counted.get(a.name, (0, 0)) for a in agents]


def customer_hangs_up(lab: Lab, db: psycopg.Connection, hop: dict[str, object],
                      caller: subprocess.Popen[str]) -> None:
    lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
    assert sipp.finish(caller).ok  # the customer was never hung up before: its BYE comes now
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")


@ONE_QUEUE
def test_the_agent_hanging_up_after_the_consulted_agent_answered_completes_the_transfer(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "ch", {"tc_first": 0}, {})
    phones, caller = start(lab, first, second, first_hangs_up_ms=TALK_MS)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        transfer(daemon_env, case, f"agent:{second.name}", "--attended")
        until_bridge_has(daemon_env, case, first.name, second.name)  # the customer on hold
        assert sipp.finish(phones[0]).ok  # the first agent's phone sent its BYE (200 OK)
        until_bridge_has(daemon_env, case, "customer", second.name)
        customer_hangs_up(lab, db, hop, caller)
        assert sipp.finish(phones[1]).ok  # the second talked until the customer's end: its BYE
    finally:
        stop([*phones, caller])
    assert attended_rows(db) == [
        (f"agent:{second.name}", "consulting", ""),
        (f"agent:{second.name}", "transferred", f"{first.name} hung up during the consult")]
    assert queue_events(db) == [
        ("join", None), ("ring", first.name), ("answer", first.name), ("complete", first.name),
        ("transfer", first.name), ("join", None), ("ring", second.name), ("answer", second.name),
        ("complete", second.name)]
    assert transfers_counted(db, first, second) == [(1, 0), (0, 1)]
    assert [h["end_reason"] for h in rows(db, "SELECT end_reason FROM hops")] == ["completed"]


@LONG_RING
def test_the_agent_hanging_up_while_the_consulted_agent_rings_leaves_the_customer_to_its_answer(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "cr", {"tc_first": 0}, {})
    # The second answers 9 s after it starts ringing: after the first's BYE, within the ring timeout.
    phones, caller = start(lab, first, second, first_hangs_up_ms=TALK_MS, second_ring_ms=9000)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        transfer(daemon_env, case, f"agent:{second.name}", "--attended")
        assert sipp.finish(phones[0]).ok  # the first's BYE, answered 200: the customer not hung up
        assert agents_in_bridge(daemon_env, case) == []  # the customer on hold, the second ringing
        until_bridge_has(daemon_env, case, "customer", second.name)
        customer_hangs_up(lab, db, hop, caller)
        assert sipp.finish(phones[1]).ok
    finally:
        stop([*phones, caller])
    assert attended_rows(db) == [
        (f"agent:{second.name}", "consulting", ""),
        (f"agent:{second.name}", "transferred", f"{first.name} hung up while agent:{second.name} rang")]
    assert queue_events(db) == [
        ("join", None), ("ring", first.name), ("answer", first.name), ("complete", first.name),
        ("transfer", first.name), ("join", None), ("ring", second.name), ("answer", second.name),
        ("complete", second.name)]
    [rung] = rows(db, "SELECT ring_ms FROM queue_events WHERE event = 'answer' ORDER BY id DESC LIMIT 1")
    assert rung["ring_ms"] >= 8500  # one ring, from the consult's start: not dialled again
    assert transfers_counted(db, first, second) == [(1, 0), (0, 1)]


@LONG_RING
def test_a_consulted_agent_who_never_answers_after_the_agent_left_sends_the_customer_to_the_queues_head(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    # The third is a member behind the first (penalty 1): rung only once the first is in wrap-up.
    first, second, third = logged_in_agents(daemon_env, tmp_path, "cv", {"tc_first": 0}, {},
                                            {"tc_first": 1})
    phones, caller = start(lab, first, second, "agent_no_answer.xml", first_hangs_up_ms=TALK_MS,
                           third=third)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        transfer(daemon_env, case, f"agent:{second.name}", "--attended")
        assert sipp.finish(phones[0]).ok  # the first's BYE
        assert sipp.finish(phones[1]).ok  # rang on, cancelled at the ring timeout (487)
        until_bridge_has(daemon_env, case, "customer", third.name)
        customer_hangs_up(lab, db, hop, caller)
        assert sipp.finish(phones[2]).ok
    finally:
        stop([*phones, caller])
    assert attended_rows(db) == [
        (f"agent:{second.name}", "consulting", ""),
        (f"agent:{second.name}", "transferred", f"{first.name} hung up while agent:{second.name} rang")]
    assert queue_events(db) == [
        ("join", None), ("ring", first.name), ("answer", first.name), ("complete", first.name),
        ("transfer", first.name), ("join", None), ("ring", second.name), ("ring_noanswer", second.name),
        ("ring", third.name), ("answer", third.name), ("complete", third.name)]
    [joined] = rows(db, "SELECT position FROM queue_events WHERE event = 'join' ORDER BY id DESC LIMIT 1")
    assert joined["position"] == 1
    assert transfers_counted(db, first, second, third) == [(1, 0), (0, 0), (0, 1)]
    shown = hotline_cli(daemon_env, "case", "show", str(case)).stdout
    assert (f"to agent:{second.name}: transferred ({first.name} hung up while agent:{second.name} rang)"
            in shown)
