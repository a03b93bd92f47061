"""Queued callbacks on the lab: a sipp caller asks with DTMF while waiting, a sipp agent phone is
rung first when the request's turn comes, and the customer's phone is a sipp behind the carrier
(sipp-carrier, 127.0.0.4). Each test checks the SIP the parties saw, the bridge, and the rows."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab
from hotline.lab.asterisk_conf import CARRIER_ADDRESS

from support import sipp
from support.agents import Agent, registered
from support.callbacks import (
    CUSTOMER,
    STARTED,
    agent_of_queue,
    bridge_channels,
    case_hops,
    customer_leg_in,
    far_end,
    from_of,
    invites,
    phone,
    received,
    sipps_stopped_afterwards,  # noqa: F401 (autouse: the sipps stopped after each test)
)
from support.checks import rows, wait_until
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE

pytestmark = pytest.mark.lab

NUMBER = "+74950003311"
CALLBACKS = BASE + """
[queues.callbacks]
ring_timeout = 8
retry = 1
ringback = 0
callback_key = "5"
callback_retries = 1
callback_retry_interval = 10

[hotlines.callbacks]
entry = "queue:callbacks"

[numbers."+74950003311"]
hotline = "callbacks"
lines = 2

[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+74951234567"
allow = ["+7916"]
"""


LEASE_S = 9  # callback_lease: what a killed daemon's request waits (30 by default)


@pytest.fixture
def daemon_env(daemon_env: dict[str, str]) -> dict[str, str]:
    return {**daemon_env, "HOTLINE_CALLBACK_LEASE": str(LEASE_S)}


def ask_for_a_callback() -> sipp.SippRun:
    """A caller waiting in the queue presses 5, then 1 while their number is read back; Asterisk
    hangs up after the thanks."""
    caller = sipp.start_pressing_keys(NUMBER, "5", "1", first_ms=1500, gap_ms=2500, timeout_s=30,
                                      caller=CUSTOMER)
    return sipp.finish(caller)


def missed_before(events: list[dict[str, object]]) -> int:
    """The agent's misses among rings before their phone answered: a ring Asterisk could not place
    (the phone not registered yet: 'dial failed') is none, as in any queue; one that rang is."""
    details = [str(e["detail"]) for e in events if e["event"] == "ring_noanswer"]
    assert all(d == "dial failed" or d.startswith("cause ") or d == "ring timeout" for d in details), details
    return sum(d != "dial failed" for d in details)


def the_request(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: rows(db, "SELECT * FROM callbacks"), what="callback request stored")[0]


@pytest.mark.provision(CALLBACKS)
def test_a_callback_asked_in_the_queue_rings_the_agent_first_then_bridges_the_customer(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    run = ask_for_a_callback()
    assert run.ok, run.output[-2500:]  # answered, keys sent, hung up by Asterisk after the thanks
    request = the_request(db)
    assert request["number"] == CUSTOMER
    assert request["status"] in ("pending", "placing")  # a daemon may hold it in the line already
    asked = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed")[0]
    assert asked["end_reason"] == "callback" and asked["case_id"] == request["case_id"]
    assert request["joined_at"] == asked["queued_at"]  # the caller's place in line
    events = [e["event"] for e in rows(db, "SELECT event FROM queue_events ORDER BY id")]
    assert events == ["join", "callback"]  # not an abandon

    customer, customer_sip = far_end(tmp_path)
    agent = agent_of_queue(daemon_env, tmp_path)
    agent_phone, agent_sip = phone(lab, agent, tmp_path)
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'answered'"), timeout_s=40,
               what="callback answered")
    # 'answered' is written before the customer joins the bridge (durable first): wait for the join
    bridged = wait_until(lambda: (lambda got: len(got) == 2 and got)(bridge_channels(daemon_env, request)),
                         what="the customer in the case's bridge")
    assert any("-agent-" in c for c in bridged) and any("-customer-" in c for c in bridged)
    customer_leg = next(c for c in bridged if "-customer-" in c)
    name = json.loads(ari_get(daemon_env, f"channels/{customer_leg}")[1])["name"]
    assert name.startswith("PJSIP/sipp-carrier-")
    time.sleep(2)  # a talk of a couple of seconds, for the statistics below
    lab.asterisk_cli(f"channel request hangup {name}")  # the customer hangs up: the talk ends
    assert sipp.finish(customer).ok  # INVITE answered, then the BYE
    assert sipp.finish(agent_phone).ok  # rung, answered, and hung up when the customer left

    [(agent_at, agent_invite)] = invites(agent_sip)
    [(customer_at, customer_invite)] = invites(customer_sip)
    assert agent_at < customer_at  # the agent first
    assert '"callback callbacks"' in from_of(agent_invite)  # the phone shows a callback, its queue
    assert "79165551234" in from_of(agent_invite)  # and whom it calls back
    assert f"INVITE sip:{CUSTOMER}@{CARRIER_ADDRESS}" in customer_invite
    assert "<sip:+74951234567@" in from_of(customer_invite)  # the hotline's number as caller id
    hops = wait_until(lambda: case_hops(db, request["case_id"]), what="callback hop closed")
    agent_id = rows(db, "SELECT id FROM agents WHERE name = %s", agent.name)[0]["id"]
    assert hops[1]["dialled_e164"] == CUSTOMER and hops[1]["agent_id"] == agent_id
    assert hops[1]["answered_at"] is not None and hops[1]["end_reason"] == "completed"
    done = rows(db, "SELECT status, attempts FROM callbacks")[0]
    assert done == {"status": "answered", "attempts": 1}
    assert rows(db, "SELECT status FROM cases WHERE id = %s", request["case_id"]) == [{"status": "closed"}]
    # the callback's talk is the agent's like any talk: rung, answered, completed with its talk time
    events = rows(db, "SELECT event, agent_id, talk_ms, detail FROM queue_events WHERE hop_id = %s"
                      " ORDER BY id", hops[1]["id"])  # written with the hop's end, before it
    # (a ring before the phone registered is not answered: the same agent is rung again)
    tries = len(events) // 2 - 1
    assert [e["event"] for e in events] == ["ring", "ring_noanswer"] * tries + ["ring", "answer", "complete"]
    assert all(e["agent_id"] == agent_id for e in events)
    talk_ms = int(events[-1]["talk_ms"])
    assert 1500 <= talk_ms < 15_000 and events[-1]["detail"] == "caller hung up"
    [mine] = rows(db, "SELECT rung, answered, missed, completed, talk_s FROM stats_agent_today"
                      " WHERE agent = %s", agent.name)
    assert abs(mine.pop("talk_s") - talk_ms / 1000) <= 0.5
    assert mine == {"rung": tries + 1, "answered": 1, "missed": missed_before(events[:-3]), "completed": 1}
    [queue] = rows(db, "SELECT offered, answered, abandoned, callbacks_requested, callbacks_answered,"
                       " avg_talk_s FROM stats_queue_today WHERE queue = 'callbacks'")
    assert abs(queue.pop("avg_talk_s") - talk_ms / 1000) <= 0.5
    assert queue == {"offered": 1, "answered": 0, "abandoned": 0, "callbacks_requested": 1,
                     "callbacks_answered": 1}


@pytest.mark.provision(CALLBACKS)
def test_a_customer_who_does_not_answer_is_tried_again_after_the_interval_then_given_up(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    assert ask_for_a_callback().ok
    request = the_request(db)
    customer, customer_sip = far_end(tmp_path, calls=2, busy=True)
    agent = agent_of_queue(daemon_env, tmp_path)
    # A sipp phone takes its calls within 30 s of registering: one phone for each try.
    first_phone, first_sip = phone(lab, agent, tmp_path)
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'pending' AND attempts = 1"),
               timeout_s=40, what="first try not answered")
    retry = rows(db, "SELECT due_at - now() AS wait, detail FROM callbacks")[0]
    assert 5 < retry["wait"].total_seconds() <= 10 and "busy" in str(retry["detail"]).lower()
    assert sipp.finish(first_phone).ok  # rung, answered, hung up after the customer's 486
    second_phone, second_sip = phone(lab, agent, tmp_path, name="second")
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'failed'"), timeout_s=50,
               what="given up after the retry")
    assert sipp.finish(customer).ok  # two INVITEs, both 486
    assert sipp.finish(second_phone).ok
    tries = invites(customer_sip)
    assert len(tries) == 2 and (tries[1][0] - tries[0][0]).total_seconds() >= 10
    agent_calls = invites(first_sip) + invites(second_sip)[-1:]
    assert all(a[0] < c[0] for a, c in zip(agent_calls, tries, strict=True))  # the agent first, each time
    ended = rows(db, "SELECT attempts, detail FROM callbacks")[0]
    assert ended["attempts"] == 2 and str(ended["detail"]).startswith("not answered in 2 attempts")
    legs = wait_until(lambda: case_hops(db, request["case_id"], 3), what="both tries' hops closed")[1:]
    assert [leg["end_reason"] for leg in legs] == ["failed", "failed"]
    assert all(leg["answered_at"] is None for leg in legs)
    # the agent answered each time, the customer did not: rung twice, not a miss, no talk
    # (rings before a phone registered are not answered, and are misses as in any queue)
    missed = rung = 0
    for leg in legs:
        tried = rows(db, "SELECT event, detail FROM queue_events WHERE hop_id = %s ORDER BY id", leg["id"])
        assert [e["event"] for e in tried] == ["ring", "ring_noanswer"] * (len(tried) // 2)
        assert tried[-1]["detail"] == "caller gone"
        missed, rung = missed + missed_before(tried[:-2]), rung + len(tried) // 2
    [mine] = rows(db, "SELECT rung, answered, missed, completed, talk_s FROM stats_agent_today"
                      " WHERE agent = %s", agent.name)
    assert mine == {"rung": rung, "answered": 0, "missed": missed, "completed": 0, "talk_s": 0}


@pytest.mark.provision(CALLBACKS)
def test_a_callback_being_placed_survives_a_daemon_sigkill_and_is_placed_once(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    assert ask_for_a_callback().ok
    request = the_request(db)
    agent = agent_of_queue(daemon_env, tmp_path)
    # The first daemon claims the request and rings the agent, whose phone never picks up.
    ringing = sipp.agent_phone(agent.name, agent.password, scenario="agent_no_answer.xml", timeout_s=60)
    STARTED.append(ringing)
    wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'placing'"), what="claimed")
    wait_until(lambda: "callback 1: ringing" in daemon.log() or None, what="agent rung")
    daemon.stop(signal.SIGKILL)
    assert rows(db, "SELECT status FROM callbacks") == [{"status": "placing"}]  # held by the dead daemon
    sipp.finish(ringing, timeout_s=60)
    customer, customer_sip = far_end(tmp_path)
    agent_phone, _ = phone(lab, agent, tmp_path)
    daemon.start()
    # Its lease runs out (callback_lease: at most LEASE_S after the kill, not the default 30 s),
    # and the new daemon places it.
    wait_until(lambda: "their daemon's lease ran out" in daemon.log() or None, timeout_s=LEASE_S + 5,
               what="the dead daemon's lease ran out")
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'answered'"), timeout_s=60,
               what="placed by the new daemon")
    # 'answered' is written before the customer's leg joins the bridge (durable first)
    customer_leg = wait_until(lambda: customer_leg_in(daemon_env, request["case_id"]),
                              what="the customer in the case's bridge")
    name = json.loads(ari_get(daemon_env, f"channels/{customer_leg}")[1])["name"]
    lab.asterisk_cli(f"channel request hangup {name}")
    assert sipp.finish(customer).ok and sipp.finish(agent_phone).ok
    assert len(invites(customer_sip)) == 1  # placed once
    assert rows(db, "SELECT status, attempts FROM callbacks") == [{"status": "answered", "attempts": 1}]
    assert "callbacks [1]: their daemon's lease ran out" in daemon.log()


def byes(messages: Path) -> list[datetime]:
    return [at for at, _ in received(messages, "BYE")]


def agent_state(db: psycopg.Connection, agent: Agent) -> str:
    return str(rows(db, "SELECT state FROM agent_live_now WHERE agent = %s", agent.name)[0]["state"])


@pytest.mark.provision(CALLBACKS.replace("callback_retries = 1", "callback_retries = 1\nwrapup = 30"))
def test_an_answered_callbacks_talk_survives_a_daemon_sigkill_and_ends_as_without_it(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    assert ask_for_a_callback().ok
    request = the_request(db)
    customer, customer_sip = far_end(tmp_path)
    agent = agent_of_queue(daemon_env, tmp_path)
    agent_phone, agent_sip = phone(lab, agent, tmp_path)
    wait_until(lambda: rows(db, "SELECT 1 FROM callbacks WHERE status = 'answered'"), timeout_s=40,
               what="callback answered")
    talking = wait_until(lambda: (lambda got: len(got) == 2 and got)(bridge_channels(daemon_env, request)),
                         what="the customer in the case's bridge")
    wait_until(lambda: rows(db, "SELECT 1 FROM hops WHERE answered_at IS NOT NULL AND channel_id LIKE"
                                " 'callback-%%-customer-%%'"), what="the answer written")
    daemon.stop(signal.SIGKILL)
    daemon.start()
    wait_until(lambda: "callback talk adopted" in daemon.log() or None, what="the talk adopted")
    time.sleep(3)  # long enough for a cut to show: the legs go on, in the same bridge
    assert sorted(bridge_channels(daemon_env, request)) == sorted(talking)
    assert customer.poll() is None and agent_phone.poll() is None
    assert agent_state(db, agent) == "busy"  # rung for nobody else meanwhile
    customer_leg = next(c for c in talking if "-customer-" in c)
    name = json.loads(ari_get(daemon_env, f"channels/{customer_leg}")[1])["name"]
    hung_up_at = datetime.now()
    lab.asterisk_cli(f"channel request hangup {name}")  # the customer hangs up
    assert sipp.finish(customer).ok and sipp.finish(agent_phone).ok
    # each heard one BYE, after the hang-up (sipp's clock and ours are the machine's)
    assert [at >= hung_up_at for at in byes(customer_sip) + byes(agent_sip)] == [True, True]
    assert len(invites(customer_sip)) == 1 and len(invites(agent_sip)) == 1

    hops = wait_until(lambda: case_hops(db, request["case_id"]), what="callback hop closed")
    assert hops[1]["end_reason"] == "completed" and hops[1]["hangup_cause"] == 16
    events = rows(db, "SELECT event, talk_ms, detail FROM queue_events WHERE hop_id = %s ORDER BY id",
                  hops[1]["id"])
    assert [e["event"] for e in events][-3:] == ["ring", "answer", "complete"]
    assert [e["event"] for e in events].count("complete") == 1
    talk_s = (hops[1]["ended_at"] - hops[1]["answered_at"]).total_seconds()
    assert events[-1]["detail"] == "caller hung up" and talk_s > 3  # from the answer, across the restart
    assert abs(int(events[-1]["talk_ms"]) / 1000 - talk_s) < 1.0
    assert rows(db, "SELECT status, attempts FROM callbacks") == [{"status": "answered", "attempts": 1}]
    wait_until(lambda: agent_state(db, agent) == "wrapup" or None, what="the agent in wrap-up")
