"""Queues through the real lab: sipp callers, sipp agent phones, the rows a supervisor reads."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, hotline, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

QUEUE_NUMBER = "84950002211"
QUEUED = BASE + """
[queues.line]
strategy = "rrmemory"
ring_timeout = 5
retry = 1
ringback = 2

[queues.music-first]
ring_timeout = 5
ringback = 0

[hotlines.music-first]
entry = "queue:music-first"

[numbers."+74950002215"]
hotline = "music-first"

[queues.pair]
strategy = "linear"
ring_timeout = 2
retry = 1
wrapup = 30

[hotlines.pair]
entry = "queue:pair"

[numbers."+74950002214"]
hotline = "pair"

[queues.short]
max_wait = 1
overflow = "hangup"

[hotlines.queued]
entry = "queue:line"

[hotlines.impatient]
entry = "queue:short"

[numbers."+74950002211"]
hotline = "queued"
lines = 3

[numbers."+74950002212"]
hotline = "impatient"
"""


@pytest.fixture
def agent(daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path, lab: Lab,
          rendered_files_removed_afterwards: Path) -> Agent:
    """An agent of queue `line`, rendered into Asterisk (hotline apply) and logged in."""
    return logged_in_agents(daemon_env, tmp_path, "q", {"line": 0})[0]


@pytest.fixture
def two_agents(daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path, lab: Lab,
               rendered_files_removed_afterwards: Path) -> tuple[Agent, Agent]:
    """Two agents of queue `pair` (linear: the first by name is rung first), logged in."""
    first, second = logged_in_agents(daemon_env, tmp_path, "a", {"pair": 0}, {"pair": 0})
    return first, second


@pytest.mark.provision(QUEUED)
def test_caller_in_a_queue_is_bridged_with_the_free_agent_and_every_step_is_recorded(
        agent: Agent, lab: Lab, db: psycopg.Connection) -> None:
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=300)
    wait_until(lambda: registered(lab, agent.name) or phone.poll() is not None, what="agent phone registered")
    assert phone.poll() is None, sipp.finish(phone).output
    caller = sipp.start_call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=3000)
    caller_run = sipp.finish(caller)
    assert caller_run.ok, caller_run.output[:2500]  # answered, talked, hung up
    phone_run = sipp.finish(phone)
    assert phone_run.ok, phone_run.output[-3000:]
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    agent_id = rows(db, "SELECT id FROM agents WHERE name = %s", agent.name)[0]["id"]
    assert hop["end_reason"] == "completed" and hop["agent_id"] == agent_id
    assert hop["queued_at"] is not None and hop["answered_at"] is not None
    all_events = "SELECT * FROM queue_events ORDER BY id"
    events = wait_until(lambda: e if len(e := rows(db, all_events)) == 4 else None, what="four queue events")
    assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"]
    assert events[0]["position"] == 1
    assert events[2]["agent_id"] == agent_id and events[2]["wait_ms"] >= 300
    assert events[3]["talk_ms"] > 1000 and events[3]["detail"] == "caller hung up"
    assert rows(db, "SELECT last_agent_id FROM cases") == [{"last_agent_id": agent_id}]


@pytest.mark.provision(QUEUED)
def test_caller_who_hangs_up_while_waiting_is_recorded_as_abandoned(daemon: DaemonProcess,
                                                                    db: psycopg.Connection) -> None:
    assert sipp.call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=1500).ok
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "abandoned" and hop["answered_at"] is None
    events = rows(db, "SELECT event, position, wait_ms FROM queue_events ORDER BY id")
    assert [e["event"] for e in events] == ["join", "abandon"]
    assert events[1]["position"] == 1 and events[1]["wait_ms"] >= 1000


@pytest.mark.provision(QUEUED)
def test_caller_past_the_queues_max_wait_overflows(daemon: DaemonProcess, db: psycopg.Connection) -> None:
    assert sipp.call("84950002212").ok  # waited 1 s with nobody to answer, then hung up by Asterisk
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "overflow"
    events = rows(db, "SELECT event, wait_ms, detail FROM queue_events ORDER BY id")
    assert [e["event"] for e in events] == ["join", "overflow"]
    assert events[1]["wait_ms"] >= 1000 and events[1]["detail"] == "max_wait: hangup"


REGIONAL = BASE + """
[queues.siberia]
max_wait = 1
overflow = "hangup"

[hotlines.federal]
entry = "queue:support"
regions = { "+7913" = "siberia" }

[numbers."+78005550000"]
hotline = "federal"
"""


@pytest.mark.provision(REGIONAL)
def test_8_800_caller_from_a_routed_prefix_lands_in_the_regions_queue(daemon: DaemonProcess,
                                                                      db: psycopg.Connection) -> None:
    assert sipp.call("88005550000", caller="+79131234567").ok
    assert sipp.call("88005550000", caller="+74951234567").ok
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2, what="two calls")
    queues = rows(db, "SELECT h.caller_num, q.name FROM hops h JOIN queues q ON q.id = h.queue_id"
                      " ORDER BY h.id")
    assert queues == [{"caller_num": "+79131234567", "name": "siberia"},
                      {"caller_num": "+74951234567", "name": "support"}]


SLOW_OVERFLOW = BASE + """
[queues.patient]
max_wait = 5
overflow = "hangup"

[hotlines.patient]
entry = "queue:patient"

[numbers."+74950002213"]
hotline = "patient"
"""


@pytest.mark.provision(SLOW_OVERFLOW)
def test_caller_waiting_when_the_daemon_is_killed_keeps_its_place_and_its_join_time(
        daemon: DaemonProcess, db: psycopg.Connection) -> None:
    caller = sipp.start_call("84950002213")
    wait_until(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'join'"), what="caller queued")
    daemon.stop(signal.SIGKILL)
    daemon.start()
    assert sipp.finish(caller).ok  # never cut: overflowed by the new daemon, then hung up
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")
    events = rows(db, "SELECT event, wait_ms FROM queue_events ORDER BY id")
    assert [e["event"] for e in events] == ["join", "overflow"]  # recorded once each
    assert 5000 <= events[1]["wait_ms"] < 7000  # counted from the first join, not the restart
    assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": "overflow"}]


@pytest.mark.provision(QUEUED)
def test_bridged_call_keeps_talking_through_a_daemon_kill_and_is_recorded_once(
        agent: Agent, daemon: DaemonProcess, lab: Lab, db: psycopg.Connection) -> None:
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=200)
    wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
    caller = sipp.start_call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=5000)
    wait_until(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'answer'"), what="bridged")
    daemon.stop(signal.SIGKILL)
    daemon.start()
    assert sipp.finish(caller).ok and sipp.finish(phone).ok  # the talk went on; BYE reached the agent
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "completed"
    events = rows(db, "SELECT event, talk_ms FROM queue_events ORDER BY id")
    assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"]
    assert events[3]["talk_ms"] > 3000


def agent_ids(db: psycopg.Connection) -> dict[str, int]:
    return {r["name"]: r["id"] for r in rows(db, "SELECT name, id FROM agents")}


@pytest.mark.provision(QUEUED)
def test_ring_timeout_moves_on_to_the_next_agent(two_agents: tuple[Agent, Agent], lab: Lab,
                                                 db: psycopg.Connection) -> None:
    first, second = two_agents
    silent = sipp.agent_phone(first.name, first.password, scenario="agent_no_answer.xml")
    answering = sipp.agent_phone(second.name, second.password, ring_ms=200)
    wait_until(lambda: registered(lab, first.name) and registered(lab, second.name), what="phones registered")
    assert sipp.call("84950002214", "caller_hangs_up.xml", hold_ms=5000).ok
    assert sipp.finish(silent).ok
    answered = sipp.finish(answering)
    assert answered.ok, answered.output[:1200]
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")
    ids = agent_ids(db)
    recorded = wait_until(lambda: r if len(r := rows(db, "SELECT * FROM queue_events ORDER BY id")) == 6
                          else None, what="six events")
    events = [(e["event"], e["agent_id"]) for e in recorded]
    assert events == [("join", None), ("ring", ids[first.name]), ("ring_noanswer", ids[first.name]),
                      ("ring", ids[second.name]), ("answer", ids[second.name]),
                      ("complete", ids[second.name])]
    noanswer = rows(db, "SELECT ring_ms FROM queue_events WHERE event = 'ring_noanswer'")[0]
    assert 1500 <= noanswer["ring_ms"] < 4000  # the queue's 2 s ring timeout


@pytest.mark.provision(QUEUED)
def test_an_agent_in_wrapup_or_paused_is_not_rung(two_agents: tuple[Agent, Agent], lab: Lab,
                                                  daemon_env: dict[str, str], db: psycopg.Connection) -> None:
    first, second = two_agents
    hotline(daemon_env, "agent", "pause", first.name, "lunch")
    phone = sipp.agent_phone(second.name, second.password, ring_ms=200)
    wait_until(lambda: registered(lab, second.name), what="phone registered")
    assert sipp.call("84950002214", "caller_hangs_up.xml", hold_ms=2500).ok  # answered by the second
    assert sipp.finish(phone).ok
    # The second agent is now in a 30 s wrap-up and the first is paused: nobody may be rung.
    assert sipp.call("84950002214", "caller_hangs_up.xml", hold_ms=3000).ok
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2, what="two calls")
    rung = [r["agent_id"] for r in rows(db, "SELECT agent_id FROM queue_events WHERE event = 'ring'")]
    assert rung == [agent_ids(db)[second.name]]  # rung once, for the first call only
    assert [h["end_reason"] for h in rows(db, "SELECT end_reason FROM hops ORDER BY id")] == [
        "completed", "abandoned"]


ANNOUNCED = BASE + """
[queues.announced]
max_wait = 11
announce_period = 5
overflow = "hangup"

[hotlines.announced]
entry = "queue:announced"

[numbers."+74950002215"]
hotline = "announced"
"""


@pytest.mark.provision(ANNOUNCED)
def test_a_waiting_caller_hears_its_position_every_announce_period(daemon: DaemonProcess, lab: Lab,
                                                                   db: psycopg.Connection) -> None:
    asterisk_log = lab.log_paths()["asterisk"]
    start = asterisk_log.stat().st_size
    assert sipp.call("84950002215").ok  # waited 11 s, then overflowed
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")
    with asterisk_log.open("rb") as fh:
        fh.seek(start)
        log = fh.read().decode(errors="replace")
    channel = rows(db, "SELECT channel_name FROM hops")[0]["channel_name"]
    played = [line for line in log.splitlines() if channel in line and "queue-youarenext" in line]
    assert len(played) == 2  # at 5 s and 10 s of the 11 s wait
    assert "announced in queue announced: 0 ahead" in daemon.log()


BREAKOUT = BASE + """
[queues.breakable]
max_wait = 10
overflow = "hangup"
breakout_menu = "leave"

[menus.leave]
prompt = "beep"

[menus.leave.options]
"5" = "menu:goodbye"

[menus.goodbye]
prompt = "beep"
timeout = 1
retries = 0

[menus.goodbye.options]
"1" = "hangup"

[hotlines.breakable]
entry = "queue:breakable"

[numbers."+74950002216"]
hotline = "breakable"
"""


@pytest.mark.provision(BREAKOUT)
def test_a_waiting_caller_leaves_the_queue_with_a_key_of_its_breakout_menu(
        daemon: DaemonProcess, db: psycopg.Connection) -> None:
    # "3" is no key of the breakout menu: ignored. "5" leads to the goodbye menu, which times out.
    run = sipp.press_keys("84950002216", "3", "5", first_ms=1000, gap_ms=1500)
    assert run.ok, run.output
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["ivr_path"] == "5"
    assert hop["end_reason"] == "completed"  # left by choice: not an overflow, not an abandon
    assert hop["ended_at"] - hop["queued_at"] < timedelta(seconds=8)  # well before the 10 s max wait
    events = rows(db, "SELECT event, wait_ms, detail FROM queue_events ORDER BY id")
    assert [(e["event"], e["detail"]) for e in events] == [("join", ""), ("exit_key", "5")]
    assert 2000 <= events[1]["wait_ms"] < 5000
    assert "left queue breakable with key 5 for menu:goodbye" in daemon.log()


@pytest.mark.provision(QUEUED)
def test_the_estimated_hold_time_is_announced_from_the_waits_of_answered_callers(
        agent: Agent, lab: Lab, daemon: DaemonProcess, daemon_env: dict[str, str],
        db: psycopg.Connection) -> None:
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=300)
    wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
    assert sipp.call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=800).ok  # answered after ~0.3 s
    assert sipp.finish(phone).ok
    hotline(daemon_env, "queue", "set", "line", "--announce-period", "5", "--announce-holdtime",
            "--max-wait", "7", "--overflow", "hangup")
    hotline(daemon_env, "agent", "pause", agent.name, "test")
    wait_until(lambda: f"agent {agent.name}: " in daemon.log() and "-> paused" in daemon.log(),
               what="pause followed")
    asterisk_log = lab.log_paths()["asterisk"]
    start = asterisk_log.stat().st_size
    assert sipp.call(QUEUE_NUMBER).ok  # nobody to answer: announced at 5 s, overflowed at 7 s
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2, what="two calls")
    channel = rows(db, "SELECT channel_name FROM hops ORDER BY id DESC LIMIT 1")[0]["channel_name"]
    with asterisk_log.open("rb") as fh:
        fh.seek(start)
        played = [line for line in fh.read().decode(errors="replace").splitlines()
                  if channel in line and "Playing '" in line]
    # "You are next", "the estimated hold time is currently less than one minute".
    sounds = [line.split("Playing '")[1].split("'")[0] for line in played]
    assert [s.rsplit("/", 1)[-1].split(".")[0] for s in sounds][:4] == [
        "queue-youarenext", "queue-holdtime", "queue-less-than", "1"]


FULL = BASE + """
[queues.small]
max_len = 1
max_wait = 6
overflow = "hangup"

[hotlines.small]
entry = "queue:small"

[numbers."+74950002218"]
hotline = "small"
lines = 5
"""


@pytest.mark.provision(FULL)
def test_a_caller_arriving_at_a_full_queue_overflows_without_joining(daemon: DaemonProcess,
                                                                     db: psycopg.Connection) -> None:
    first = sipp.start_call("84950002218")
    wait_until(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'join'"), what="first queued")
    assert sipp.call("84950002218").ok  # the queue holds one: the second overflows (hung up) at once
    second = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="hop")[0]
    assert second["end_reason"] == "overflow" and second["queued_at"] is None
    assert second["ended_at"] - second["entered_at"] < timedelta(seconds=3)
    assert sipp.finish(first).ok  # the first still waited its full 6 s, then overflowed too
    # A hop closes after its call's queue events are written (the write-behind keeps their order).
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2,
               what="both hops closed")
    events = rows(db, "SELECT hop_id, event, wait_ms, detail FROM queue_events ORDER BY id")
    assert [(e["hop_id"] == second["id"], e["event"], e["detail"]) for e in events] == [
        (False, "join", ""), (True, "overflow", "max_len: hangup"), (False, "overflow", "max_wait: hangup")]
    assert events[1]["wait_ms"] == 0


@pytest.mark.provision(QUEUED)
def test_a_caller_talking_to_an_agent_no_longer_counts_in_the_line(agent: Agent, lab: Lab,
                                                                   db: psycopg.Connection) -> None:
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=200)
    wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
    talking = sipp.start_call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=5000)
    wait_until(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'answer'"), what="first answered")
    assert sipp.call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=1000).ok  # waits: the agent is busy
    assert sipp.finish(talking).ok and sipp.finish(phone).ok
    joins = rows(db, "SELECT position FROM queue_events WHERE event = 'join' ORDER BY id")
    abandon = wait_until(lambda: rows(db, "SELECT position FROM queue_events WHERE event = 'abandon'"),
                         what="second caller abandoned")
    assert [j["position"] for j in joins] == [1, 1] and abandon == [{"position": 1}]


def caller_channel_state(lab: Lab) -> tuple[str | None, bool]:
    """(the state of the caller's channel, e.g. Ring or Up, or None: no call; whether an agent
    leg is up or ringing), from `core show channels concise` as an engineer would look."""
    caller, agent_leg = None, False
    for line in lab.asterisk_cli("core show channels concise").splitlines():
        fields = line.split("!")
        if len(fields) < 14:
            continue
        if "-agent-" in fields[13]:  # the unique id the daemon gives the legs it places
            agent_leg = True
        elif fields[1] == "hotline-inbound":
            caller = fields[4]
    return caller, agent_leg


@pytest.mark.provision(QUEUED)
def test_a_caller_with_a_free_agent_hears_ringing_and_is_answered_when_the_agent_answers(
        agent: Agent, lab: Lab, db: psycopg.Connection) -> None:
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=2000)
    wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
    caller = sipp.start_call(QUEUE_NUMBER, "caller_hears_ringing.xml", hold_ms=1000)
    # While the agent's phone rings, the caller is not answered: no music, no charge for the
    # caller yet, as app_queue's `r` option; it hears ringing (the scenario requires the 180).
    wait_until(lambda: caller_channel_state(lab) == ("Ring", True), what="caller ringing with its agent")
    caller_run = sipp.finish(caller)
    assert caller_run.ok, caller_run.output[:2500]
    assert sipp.finish(phone).ok
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")
    events = wait_until(lambda: e if len(e := rows(db, "SELECT * FROM queue_events ORDER BY id")) == 4
                        else None, what="four events")
    assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"]
    assert events[2]["wait_ms"] >= 2000  # answered when the agent answered, after its 2 s of ringing
    assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": "completed"}]


@pytest.mark.provision(QUEUED)
def test_a_caller_whose_agent_rings_on_is_answered_with_music_after_a_few_seconds(
        agent: Agent, lab: Lab, db: psycopg.Connection) -> None:
    phone = sipp.agent_phone(agent.name, agent.password, scenario="agent_no_answer.xml")
    wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
    started = time.monotonic()
    caller = sipp.start_call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=1000)
    wait_until(lambda: caller_channel_state(lab)[0] == "Up", what="caller answered")
    answered_after = time.monotonic() - started
    assert caller_channel_state(lab) == ("Up", True)  # answered while its agent still rings
    assert 1.5 <= answered_after < 3.5  # the queue's 2 s of ringback, well before its 5 s ring timeout
    assert sipp.finish(caller).ok
    sipp.finish(phone)
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "abandoned" and hop["answered_at"] is None
    events = wait_until(lambda: e if len(e := rows(db, "SELECT event, detail FROM queue_events ORDER BY id"))
                        == 4 else None, what="four events")
    assert [e["event"] for e in events] == ["join", "ring", "ring_noanswer", "abandon"]
    assert events[2]["detail"] == "caller gone"


@pytest.mark.provision(QUEUED)
def test_an_agent_gone_before_the_bridge_puts_the_caller_back_in_line_for_the_next_agent(
        two_agents: tuple[Agent, Agent], lab: Lab, db: psycopg.Connection) -> None:
    first, second = two_agents  # linear: the first is rung first
    dropping = sipp.agent_phone(first.name, first.password, ring_ms=200,
                                scenario="agent_answers_and_hangs_up.xml")
    answering = sipp.agent_phone(second.name, second.password, ring_ms=200)
    wait_until(lambda: registered(lab, first.name) and registered(lab, second.name), what="phones registered")
    caller = sipp.call("84950002214", "caller_hangs_up.xml", hold_ms=2000)
    assert caller.ok, caller.output[:2500]  # answered, bridged with the second agent, hung up
    assert sipp.finish(dropping).ok
    assert sipp.finish(answering).ok
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    ids = agent_ids(db)
    assert hop["end_reason"] == "completed" and hop["agent_id"] == ids[second.name]
    recorded = wait_until(lambda: r if len(r := rows(db, "SELECT * FROM queue_events ORDER BY id")) == 6
                          else None, what="six events")
    assert [(e["event"], e["agent_id"], e["detail"]) for e in recorded] == [
        ("join", None, ""), ("ring", ids[first.name], ""),
        ("ring_noanswer", ids[first.name], "agent gone before the bridge"),
        ("ring", ids[second.name], ""), ("answer", ids[second.name], ""),
        ("complete", ids[second.name], "caller hung up")]
    # the dropped answer is no call for the first agent: no wrap-up (the second has its 30 s)
    live = "SELECT agent, state FROM agent_live_now"
    states = wait_until(lambda: s if (s := {r["agent"]: r["state"] for r in rows(db, live)}).get(second.name)
                        == "wrapup" else None, what="second agent in wrap-up on the wallboard")
    assert states[first.name] == "free"


@pytest.mark.provision(QUEUED)
def test_a_queue_with_no_ringback_answers_its_callers_with_music_at_once(
        daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path, lab: Lab, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "m", {"music-first": 0})
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=3000)
    wait_until(lambda: registered(lab, agent.name), what="agent phone registered")
    started = time.monotonic()
    caller = sipp.start_call("84950002215", "caller_hangs_up.xml", hold_ms=5000)  # past the agent's answer
    wait_until(lambda: caller_channel_state(lab) == ("Up", True), what="caller answered, its agent ringing")
    assert time.monotonic() - started < 2  # not after the agent's 3 s of ringing
    assert sipp.finish(caller).ok
    assert sipp.finish(phone).ok
    events = wait_until(lambda: e if len(e := rows(db, "SELECT event, wait_ms FROM queue_events ORDER BY id"))
                        == 4 else None, what="four events")
    assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"]
    assert events[2]["wait_ms"] >= 3000
