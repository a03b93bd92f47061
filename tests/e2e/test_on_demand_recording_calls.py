"""On-demand recording through the real lab: a sipp caller answered by a sipp agent phone in a
queue with `record = "on_demand"` leaves no row and no file until `hotline recording start CASE`;
from then on the talk is recorded to its end, its WAV file as long as the talk since the start
asked (not since the answer); `hotline recording stop CASE` ends the file while the talk goes on.
A recording queue's record_announcement is played to the caller (Asterisk's log) before they join
(the join's time is the prompt's length after the call came in)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.recordings import answered_hop, file_of, finished_recordings, hang_up_and_wait, seconds_of
from support.transfer_checks import bridge_channels, if_two, phones, stop

pytestmark = pytest.mark.lab

ON_DEMAND, ANNOUNCED = "84950003388", "84950003399"
ANNOUNCEMENT, ANNOUNCEMENT_S = "conf-onlyperson", 3.16  # the lab's sound: 3.16 s of GSM
CALLER = "+79165557799"
QUEUES = pytest.mark.provision(BASE + """
[queues.rec_asked]
ring_timeout = 5
record = "on_demand"

[queues.rec_told]
ring_timeout = 5
record = "always"
record_announcement = "conf-onlyperson"

[hotlines.asked]
entry = "queue:rec_asked"

[hotlines.told]
entry = "queue:rec_told"

[numbers."+74950003388"]
hotline = "asked"

[numbers."+74950003399"]
hotline = "told"
""")


def talking(daemon_env: dict[str, str], db: psycopg.Connection) -> dict[str, object]:
    hop = answered_hop(db)
    wait_until(lambda: if_two(bridge_channels(daemon_env, hop["case_id"])), what="caller and agent bridged")
    return hop


@QUEUES
def test_an_on_demand_talk_is_recorded_from_the_start_asked_to_its_end(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: object) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "ro", {"rec_asked": 0})
    started = phones(lab, agent)
    before = set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"]))
    try:
        caller = sipp.start_call(ON_DEMAND, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = talking(daemon_env, db)
        case = str(hop["case_id"])
        time.sleep(3)
        assert rows(db, "SELECT * FROM recordings") == []
        made = {n for n in set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"])) - before
                if n.startswith(f"case{case}-")}
        assert made == set()
        said = hotline_cli(daemon_env, "recording", "start", case)
        assert said.returncode == 0, said.stderr + daemon.log()
        [live] = rows(db, "SELECT id, state FROM recordings")
        assert said.stdout.strip() == f"case {case}: recording #{live['id']} started"
        assert live["state"] == "recording"
        again = hotline_cli(daemon_env, "recording", "start", case)
        assert again.stdout.strip() == f"case {case}: recording #{live['id']} is recording already"
        time.sleep(4)
        hang_up_and_wait(lab, db, hop, caller)
    finally:
        stop(started)
    [rec] = finished_recordings(db, 1)
    assert (rec["case_id"], rec["hop_id"], rec["agent"], rec["queue"], rec["state"]) == (
        hop["case_id"], hop["id"], agent.name, "rec_asked", "done")
    [times] = rows(db, "SELECT extract(epoch FROM h.ended_at - h.answered_at)::float AS talk,"
                       " extract(epoch FROM h.ended_at - g.started_at)::float AS since_start"
                       " FROM hops h JOIN recordings g ON g.hop_id = h.id")
    seconds = seconds_of(file_of(daemon_env, rec))
    # the talk since the start asked (4 s and the CLI's own time), not the 3 s before it
    assert 3.5 <= seconds <= times["since_start"] + 0.5, (seconds, times)
    assert seconds <= times["talk"] - 2.5, (seconds, times)
    assert abs(seconds - rec["duration_ms"] / 1000) < 1.0, (seconds, rec["duration_ms"])
    shown = hotline_cli(daemon_env, "case", "show", case)
    assert f"#{rec['id']} hop 1 agent {agent.name} queue rec_asked done" in shown.stdout, shown.stdout


@QUEUES
def test_a_stop_asked_ends_the_file_while_the_talk_goes_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: object) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "rs", {"rec_asked": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_call(ON_DEMAND, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = talking(daemon_env, db)
        case = str(hop["case_id"])
        asked_start = time.monotonic()
        began = hotline_cli(daemon_env, "recording", "start", case)
        assert began.returncode == 0, began.stderr + daemon.log()
        time.sleep(3)
        ended = hotline_cli(daemon_env, "recording", "stop", case)
        asked_span = time.monotonic() - asked_start  # the start's command run to the stop's answer
        assert ended.returncode == 0, ended.stderr + daemon.log()
        [rec] = finished_recordings(db, 1)
        assert ended.stdout.strip() == f"case {case}: recording #{rec['id']} stopped"
        time.sleep(3)  # the talk goes on, unrecorded
        assert if_two(bridge_channels(daemon_env, hop["case_id"]))
        gone = hotline_cli(daemon_env, "recording", "stop", case)
        assert gone.returncode != 0 and "no recording under way" in gone.stderr, gone.stdout + gone.stderr
        hang_up_and_wait(lab, db, hop, caller)
    finally:
        stop(started)
    [rec] = finished_recordings(db, 1)
    seconds = seconds_of(file_of(daemon_env, rec))
    # from the start to the stop, which two CLI runs bound (each a Python start-up, slower on a
    # loaded machine), not the talk's 6 s and more
    assert 2.5 <= seconds <= asked_span + 0.3, (seconds, asked_span)
    assert abs(seconds - rec["duration_ms"] / 1000) < 1.0, (seconds, rec["duration_ms"])


@QUEUES
def test_a_recording_queues_announcement_is_played_before_the_caller_joins(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: object) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "ra", {"rec_told": 0})
    started = phones(lab, agent)
    asterisk_log = lab.log_paths()["asterisk"]
    start = asterisk_log.stat().st_size
    try:
        caller = sipp.start_call(ANNOUNCED, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = talking(daemon_env, db)
        time.sleep(1)
        hang_up_and_wait(lab, db, hop, caller)
    finally:
        stop(started)
    with asterisk_log.open("rb") as fh:
        fh.seek(start)
        played = [line.split("Playing '")[1].split("'")[0] for line in fh.read().decode(errors="replace")
                  .splitlines() if str(hop["channel_name"]) in line and "Playing '" in line]
    assert played and played[0].rsplit("/", 1)[-1].split(".")[0] == ANNOUNCEMENT, played
    [joined] = rows(db, "SELECT extract(epoch FROM e.at - h.entered_at)::float AS s FROM queue_events e"
                        " JOIN hops h ON h.id = e.hop_id WHERE e.event = 'join'")
    assert joined["s"] >= ANNOUNCEMENT_S - 0.3, joined  # the whole prompt, then the line
    [rec] = finished_recordings(db, 1)
    assert rec["queue"] == "rec_told" and rec["state"] == "done"
