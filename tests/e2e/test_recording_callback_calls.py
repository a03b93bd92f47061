"""Recording placed callbacks on the lab: a sipp caller asks for a callback with DTMF while
waiting, a sipp agent phone is rung first, and the customer is a sipp behind the carrier. A
callback of a queue with `record = "always"` leaves one row of recordings on the outbound leg's
hop, with its agent and queue, and a WAV file as long as the talk (its header, read with `wave`);
a queue that records never leaves neither; an `on_demand` queue's callback is recorded from
`hotline recording start CASE` (the user event reaches the callback's talk) to its end; a daemon
stopped or killed during a recorded callback's talk leaves the recording to the next, which
adopts it with the talk: one row, ended with the talk, the file holding all of it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents
from support.callbacks import (
    CUSTOMER,
    case_hops,
    customer_leg_in,
    far_end,
    phone,
    sipps_stopped_afterwards,  # noqa: F401 (autouse: the sipps stopped after each test)
)
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE
from support.recordings import file_of, finished_recordings, seconds_of

pytestmark = pytest.mark.lab

ALWAYS, NEVER, ON_DEMAND = "+74950003341", "+74950003342", "+74950003343"
QUEUES = pytest.mark.provision(BASE + "".join(f"""
[queues.cb_{mode}]
ring_timeout = 8
retry = 1
ringback = 0
callback_key = "5"
callback_retries = 0
record = "{mode}"

[hotlines.cb_{mode}]
entry = "queue:cb_{mode}"

[numbers."{number}"]
hotline = "cb_{mode}"
lines = 2
""" for mode, number in (("always", ALWAYS), ("never", NEVER), ("on_demand", ON_DEMAND))) + """
[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+74951234567"
allow = ["+7916"]
""")


def callback_talking(number: str, mode: str, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
                     tmp_path: Path) -> tuple[dict[str, object], Agent, str]:
    """A callback asked on `number` (the caller presses 5, then 1 to confirm their number), then
    placed: the agent of queue cb_MODE answers, then the customer; both in the case's bridge. The
    request, the agent, and the customer leg's channel name."""
    caller = sipp.start_pressing_keys(number, "5", "1", first_ms=1500, gap_ms=2500, timeout_s=30,
                                      caller=CUSTOMER)
    asked = sipp.finish(caller)
    assert asked.ok, asked.output[-2500:]
    request = wait_until(lambda: rows(db, "SELECT * FROM callbacks"), what="callback request stored")[0]
    far_end(tmp_path)
    [agent] = logged_in_agents(daemon_env, tmp_path, "cr", {f"cb_{mode}": 0})
    phone(lab, agent, tmp_path)
    leg = wait_until(lambda: customer_leg_in(daemon_env, request["case_id"]), timeout_s=40,
                     what="the customer in the case's bridge")
    status, body = ari_get(daemon_env, f"channels/{leg}")
    assert status == 200, body
    return request, agent, str(json.loads(body)["name"])


def customer_hangs_up(lab: Lab, db: psycopg.Connection, request: dict[str, object],
                      name: str) -> dict[str, object]:
    """The customer hangs up; the outbound leg's hop, once closed."""
    lab.asterisk_cli(f"channel request hangup {name}")
    hops = wait_until(lambda: case_hops(db, request["case_id"]), what="the callback's hop closed")
    assert hops[1]["end_reason"] == "completed", hops[1]
    return hops[1]


def talk_seconds(db: psycopg.Connection, hop: dict[str, object]) -> float:
    [talk] = rows(db, "SELECT extract(epoch FROM ended_at - answered_at)::float AS s FROM hops WHERE id = %s",
                  hop["id"])
    return float(talk["s"])


@QUEUES
def test_a_callback_of_a_queue_that_records_always_leaves_one_file_as_long_as_its_talk(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    request, agent, name = callback_talking(ALWAYS, "always", daemon_env, lab, db, tmp_path)
    wait_until(lambda: rows(db, "SELECT id FROM recordings"), what="the recording started")
    time.sleep(4)
    hop = customer_hangs_up(lab, db, request, name)
    [rec] = finished_recordings(db, 1)
    assert (rec["case_id"], rec["hop_id"], rec["agent"], rec["queue"]) == (request["case_id"], hop["id"],
                                                                        agent.name, "cb_always")
    assert (rec["state"], rec["format"], rec["detail"]) == ("done", "wav", None)
    path = file_of(daemon_env, rec)
    assert rec["path"] == str(path)
    seconds, talk = seconds_of(path), talk_seconds(db, hop)
    assert talk >= 4 and abs(seconds - talk) < 1.0, (seconds, talk)
    shown = hotline_cli(daemon_env, "case", "show", str(request["case_id"]))
    assert f"#{rec['id']} hop 2 agent {agent.name} queue cb_always done" in shown.stdout, shown.stdout


@QUEUES
def test_a_callback_of_a_queue_that_records_never_leaves_no_row_and_no_file(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    before = set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"]))
    request, _, name = callback_talking(NEVER, "never", daemon_env, lab, db, tmp_path)
    time.sleep(3)
    said = hotline_cli(daemon_env, "recording", "start", str(request["case_id"]))
    assert said.returncode != 0 and "records never" in said.stderr, (said.stdout, said.stderr)
    customer_hangs_up(lab, db, request, name)
    assert rows(db, "SELECT * FROM recordings") == []
    made = {n for n in set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"])) - before
            if n.startswith(f"case{request['case_id']}-")}
    assert made == set()


@QUEUES
def test_an_on_demand_callback_is_recorded_from_the_start_asked_to_the_end_of_its_talk(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    request, agent, name = callback_talking(ON_DEMAND, "on_demand", daemon_env, lab, db, tmp_path)
    case = str(request["case_id"])
    time.sleep(2)
    assert rows(db, "SELECT * FROM recordings") == []
    said = hotline_cli(daemon_env, "recording", "start", case)
    assert said.returncode == 0 and "started" in said.stdout, said.stderr + daemon.log()
    time.sleep(3)
    hop = customer_hangs_up(lab, db, request, name)
    [rec] = finished_recordings(db, 1)
    assert (rec["hop_id"], rec["agent"], rec["queue"]) == (hop["id"], agent.name, "cb_on_demand")
    assert rec["state"] == "done"
    [since] = rows(db, "SELECT extract(epoch FROM h.ended_at - g.started_at)::float AS s FROM recordings g"
                       " JOIN hops h ON h.id = g.hop_id")
    seconds = seconds_of(file_of(daemon_env, rec))
    assert abs(seconds - since["s"]) < 1.0 and seconds < talk_seconds(db, hop) - 1, (seconds, since)


@QUEUES
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_recorded_callback_adopted_after_a_restart_keeps_its_recording_to_the_talks_end(
        sig: int, daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
        tmp_path: Path, rendered_files_removed_afterwards: Path) -> None:
    request, _, name = callback_talking(ALWAYS, "always", daemon_env, lab, db, tmp_path)
    wait_until(lambda: rows(db, "SELECT id FROM recordings"), what="the recording's row")
    time.sleep(2)
    daemon.stop(sig)
    time.sleep(2)  # the talk, and Asterisk's recording of it, go on with no daemon
    daemon.start()
    wait_until(lambda: "callback talk adopted" in daemon.log() or None, what="the talk adopted")
    time.sleep(2)
    hop = customer_hangs_up(lab, db, request, name)
    [rec] = finished_recordings(db, 1)
    assert (rec["state"], rec["detail"], rec["hop_id"]) == ("done", None, hop["id"])
    seconds, talk = seconds_of(file_of(daemon_env, rec)), talk_seconds(db, hop)
    assert abs(seconds - talk) < 1.0, (seconds, talk)  # the whole talk, restart included
    assert f"recording {rec['name']} adopted" in daemon.log()
