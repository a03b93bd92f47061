"""Each queue strategy rings the agent app_queue would, through the real lab: two sipp agent
phones, two callers one after the other, and the ring and answer events a supervisor reads.
(random has no deterministic outcome to check here: tests/unit/test_strategies.py seeds it.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

NUMBER = "84950002217"


def queue_with(strategy: str) -> str:
    return BASE + f"""
[queues.strat]
strategy = "{strategy}"
ring_timeout = 3
retry = 1

[hotlines.strat]
entry = "queue:strat"

[numbers."+74950002217"]
hotline = "strat"
"""


def provisioned(strategy: str) -> pytest.MarkDecorator:
    return pytest.mark.provision(queue_with(strategy))


def agents_of(daemon_env: dict[str, str], tmp_path: Path, *penalties: int) -> tuple[Agent, ...]:
    return logged_in_agents(daemon_env, tmp_path, "s", *({"strat": p} for p in penalties))


def phones(lab: Lab, agents: tuple[Agent, ...], **kwargs: object) -> list[subprocess.Popen[str]]:
    started = [sipp.agent_phone(a.name, a.password, **kwargs) for a in agents]  # type: ignore[arg-type]
    wait_until(lambda: all(registered(lab, a.name) for a in agents), what="agent phones registered")
    return started


def hang_up_phones(started: list[subprocess.Popen[str]]) -> None:
    for phone in started:
        if phone.poll() is None:
            phone.kill()
        phone.communicate()


def answered_by(db: psycopg.Connection, calls: int) -> list[str]:
    """Who answered each call, in call order (waits for every call's hop to be closed)."""
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == calls,
               what=f"{calls} calls ended")
    return [r["name"] for r in rows(db, "SELECT a.name FROM queue_events e JOIN agents a ON a.id = e.agent_id"
                                        " WHERE e.event = 'answer' ORDER BY e.id")]


def two_calls() -> None:
    """Two customers, one after the other (one customer calling twice would continue their case
    and be offered to their last agent first, whatever the strategy)."""
    for caller in ("+79161110001", "+79161110002"):
        run = sipp.call(NUMBER, "caller_hangs_up.xml", caller=caller, hold_ms=800)
        assert run.ok, run.output[:2000]


@pytest.mark.parametrize("strategy, penalties, answered", [
    pytest.param("linear", (0, 0), (0, 0), marks=provisioned("linear"), id="linear: always the first member"),
    pytest.param("rrmemory", (0, 0), (0, 1), marks=provisioned("rrmemory"),
                 id="rrmemory: the one after the last rung"),
    pytest.param("leastrecent", (0, 0), (0, 1), marks=provisioned("leastrecent"),
                 id="leastrecent: the one idle the longest"),
    pytest.param("fewestcalls", (0, 0), (0, 1), marks=provisioned("fewestcalls"),
                 id="fewestcalls: the one with fewer calls"),
    pytest.param("linear", (5, 0), (1, 1), marks=provisioned("linear"),
                 id="penalty: the lower penalty first, whatever the member order"),
])
def test_the_strategy_picks_the_agent_app_queue_would(
        strategy: str, penalties: tuple[int, int], answered: tuple[int, int], daemon: DaemonProcess,
        daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path) -> None:
    agents = agents_of(daemon_env, tmp_path, *penalties)
    started = phones(lab, agents, ring_ms=200, calls=2)
    try:
        two_calls()
        assert answered_by(db, 2) == [agents[i].name for i in answered]
    finally:
        hang_up_phones(started)


@provisioned("ringall")
def test_ringall_rings_every_free_agent_at_once_and_the_first_to_answer_takes_the_call(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    silent, answering = agents_of(daemon_env, tmp_path, 0, 0)
    started = [*phones(lab, (silent,), scenario="agent_no_answer.xml"),
               *phones(lab, (answering,), ring_ms=500)]
    try:
        run = sipp.call(NUMBER, "caller_hangs_up.xml", hold_ms=800)
        assert run.ok, run.output[:2000]
        assert answered_by(db, 1) == [answering.name]
        ids = {r["name"]: r["id"] for r in rows(db, "SELECT name, id FROM agents")}
        events = [(e["event"], e["agent_id"], e["detail"]) for e in rows(
            db, "SELECT event, agent_id, detail FROM queue_events WHERE event <> 'join' ORDER BY id")]
        # Both rung before anyone answered; the other phone's ringing is then cancelled.
        assert events[:2] == [("ring", ids[silent.name], ""), ("ring", ids[answering.name], "")]
        assert sorted(events[2:4]) == [("answer", ids[answering.name], ""),
                                       ("ring_noanswer", ids[silent.name], f"answered by {answering.name}")]
        assert sipp.finish(started[0]).ok  # the silent phone saw a CANCEL, not a timeout
    finally:
        hang_up_phones(started)
