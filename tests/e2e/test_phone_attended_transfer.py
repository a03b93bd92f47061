"""Attended transfers from the agent's own desk phone through the real lab: the phone (sipp)
answers the customer, dials a colleague from the same endpoint (the agents' context hands that
call to the daemon: the consult), talks with them while the customer holds with the queue's music,
then sends REFER on the customer's call with Replaces naming the consult call. Checked: who is in
the case's bridge and in the consult bridge (ARI) at each step, what each phone saw (its sipp
scenario, and the NOTIFY sipfrags of the REFER), the transfers rows, the queue events and the
statistics. A REFER whose Replaces names a call that does not exist is refused and the talk is
untouched; the phone hanging up the consult call then takes the customer back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE
from support.transfer_checks import bridge_channels, channel_name, refer_accepted, sipfrags, stop

pytestmark = pytest.mark.lab

NUMBER = "84950002261"
CALLER = "+79165554325"
TALK_MS, CONSULT_MS = "1500", "4000"
ONE_QUEUE = pytest.mark.provision(BASE + """
[queues.tq_first]
ring_timeout = 6
wrapup = 0

[hotlines.tq]
entry = "queue:tq_first"

[numbers."+74950002261"]
hotline = "tq"
""")


def who(env: dict[str, str], channels: list[str]) -> list[str]:
    """The agents by name (their PJSIP channels), the customer as "customer"."""
    names = []
    for channel in channels:
        name = channel_name(env, channel)
        names.append("customer" if "sipp-trunk" in name else name.removeprefix("PJSIP/").rsplit("-", 1)[0])
    return sorted(names)


def in_case_bridge(env: dict[str, str], case: object, *names: str) -> None:
    wait_until(lambda: who(env, bridge_channels(env, case)) == sorted(names),
               what=f"the case's bridge holding {names}")


def consult_bridge(env: dict[str, str]) -> list[str]:
    status, body = ari_get(env, "bridges")
    assert status == 200, body
    return sorted(c for b in json.loads(body) if b["id"].startswith("consult-") for c in b["channels"])


def start(lab: Lab, first: Agent, second: Agent, scenario: str, messages: Path,
          ) -> tuple[list[subprocess.Popen[str]], subprocess.Popen[str]]:
    phones = [sipp.agent_phone(first.name, first.password, ring_ms=200, scenario=scenario, timeout_s=90,
                               more_fields=(TALK_MS, second.name, CONSULT_MS), messages=messages,
                               places_calls=True),
              sipp.agent_phone(second.name, second.password, ring_ms=300)]
    wait_until(lambda: registered(lab, first.name) and registered(lab, second.name),
               what="agent phones registered")
    return phones, sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER, timeout_s=90)


def answered_hop(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
                      what="the call answered by the first agent")


def transfers(db: psycopg.Connection) -> list[tuple[str, str, str, str]]:
    return [(r["kind"], r["asked_by"], r["target"], r["outcome"])
            for r in rows(db, "SELECT kind, asked_by, target, outcome FROM transfers ORDER BY id")]


def events(db: psycopg.Connection) -> list[tuple[str, str | None]]:
    return [(e["event"], e["agent"]) for e in rows(
        db, "SELECT e.event, a.name AS agent FROM queue_events e LEFT JOIN agents a ON a.id = e.agent_id"
            " ORDER BY e.id")]


def consulting(env: dict[str, str], case: object, first: Agent, second: Agent) -> None:
    """The phone's consult call and the colleague in the consult bridge, the customer on hold out
    of the case's bridge (where the first agent's held leg stays)."""
    wait_until(lambda: who(env, consult_bridge(env)) == sorted([first.name, second.name]),
               what="the consult bridge holding both agents")
    assert who(env, bridge_channels(env, case)) == [first.name]


@ONE_QUEUE
def test_a_refer_with_replaces_from_the_agents_phone_leaves_the_customer_with_the_colleague(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "px", {"tq_first": 0}, {})
    messages = tmp_path / "first-phone.log"
    phones, caller = start(lab, first, second, "agent_consults_and_refers.xml", messages)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        consulting(daemon_env, case, first, second)
        done = sipp.finish(phones[0], 60)  # NOTIFY 200, then both of its calls hung up (two BYEs)
        assert done.ok, done.output
        assert refer_accepted(messages) and sipfrags(messages)[-1] == "SIP/2.0 200 OK"
        in_case_bridge(daemon_env, case, "customer", second.name)  # the customer with the colleague
        assert consult_bridge(daemon_env) == []
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(phones[1]).ok
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop([*phones, caller])
    assert transfers(db) == [("attended", "phone", f"agent:{second.name}", "consulting"),
                             ("attended", "phone", f"agent:{second.name}", "transferred")]
    assert events(db) == [("join", None), ("ring", first.name), ("answer", first.name),
                          ("complete", first.name), ("transfer", first.name), ("join", None),
                          ("ring", second.name), ("answer", second.name), ("complete", second.name)]
    [stats] = rows(db, "SELECT transferred_out, transferred_in, answered FROM stats_queue_today"
                       " WHERE queue = 'tq_first'")
    assert stats == {"transferred_out": 1, "transferred_in": 1, "answered": 2}


@ONE_QUEUE
def test_a_refer_naming_another_call_is_refused_and_hanging_up_the_consult_gives_the_customer_back(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "pb", {"tq_first": 0}, {})
    messages = tmp_path / "first-phone.log"
    phones, caller = start(lab, first, second, "agent_refers_bogus_replaces.xml", messages)
    try:
        hop = answered_hop(db)
        case = hop["case_id"]
        consulting(daemon_env, case, first, second)
        wait_until(lambda: messages.exists() and any(" 200 " not in f and " 100 " not in f
                                                     for f in sipfrags(messages)),
                   what="a NOTIFY refusing the REFER")
        refused = [f for f in sipfrags(messages) if " 100 " not in f]
        assert [f.split()[1] for f in refused] == ["603"], refused  # channel_declined
        consulting(daemon_env, case, first, second)  # untouched: the consult goes on
        assert sipp.finish(phones[1]).ok  # the consult call hung up by the phone: the colleague's BYE
        in_case_bridge(daemon_env, case, "customer", first.name)  # back with the first agent
        assert consult_bridge(daemon_env) == []
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        done = sipp.finish(phones[0])
        assert done.ok, done.output
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
    finally:
        stop([*phones, caller])
    assert transfers(db) == [("attended", "phone", f"agent:{second.name}", "consulting"),
                             ("attended", "phone", f"agent:{second.name}", "refused"),
                             ("attended", "phone", f"agent:{second.name}", "cancelled")]
    assert [e for e, _ in events(db)] == ["join", "ring", "answer", "complete"]  # one talk, never passed on


@ONE_QUEUE
def test_an_agent_dialling_with_no_live_talk_or_dialling_anything_else_is_refused_forbidden(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "pf", {"tq_first": 0}, {})
    for dialled in (second.name, "89161234567", "tq_first"):  # a colleague, a number, a queue
        run = sipp.agent_dials(first.name, first.password, dialled)
        assert run.ok, run.output[-2000:]  # 403
    assert transfers(db) == []
    status, body = ari_get(daemon_env, "channels")
    assert status == 200 and json.loads(body) == []  # nothing dialled, nothing left
