"""Recording settings through the real lab: a hotline whose `record` is "always" records the talk
of its queue that sets no record of its own (a row and a file as long as the talk), and not that of
a queue that records "never"; a recorded talk whose daemon is killed (or stopped) and started
again keeps its recording: the new daemon adopts it with the talk, and the row ends with the talk,
`done`, the file holding the whole talk; a recorded talk that ends while no daemon runs has its
row closed by the next daemon, `failed` with why (tests/e2e/test_recording_move_calls.py:
the files moved)."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from hotline.engine.recording import ENDED_UNWATCHED
from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.recordings import answered_hop, finished_recordings, hang_up_and_wait, seconds_of
from support.transfer_checks import bridge_channels, if_two, phones, stop

pytestmark = pytest.mark.lab

BY_HOTLINE, QUEUE_NEVER = "84950004411", "84950004422"
CALLER = "+79165557799"
HOTLINES = pytest.mark.provision(BASE + """
[queues.hl_plain]
ring_timeout = 5

[queues.hl_never]
ring_timeout = 5
record = "never"

[hotlines.hlrec]
entry = "queue:hl_plain"
record = "always"

[hotlines.hlrec_never]
entry = "queue:hl_never"
record = "always"

[numbers."+74950004411"]
hotline = "hlrec"

[numbers."+74950004422"]
hotline = "hlrec_never"
""")


def a_talk(lab: Lab, db: psycopg.Connection, daemon_env: dict[str, str], number: str,
           seconds: float) -> dict[str, object]:
    """A caller dialling `number` talks with the logged-in agent for `seconds`, then hangs up:
    the hop."""
    caller = sipp.start_call(number, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
    hop = answered_hop(db)
    wait_until(lambda: if_two(bridge_channels(daemon_env, hop["case_id"])), what="caller and agent bridged")
    time.sleep(seconds)
    hang_up_and_wait(lab, db, hop, caller)
    return hop


def talk_seconds(db: psycopg.Connection) -> float:
    [talk] = rows(db, "SELECT extract(epoch FROM ended_at - answered_at)::float AS s FROM hops")
    return float(talk["s"])


def made_for(directory: str, case_id: object, before: set[str]) -> set[str]:
    return {n for n in set(os.listdir(directory)) - before if n.startswith(f"case{case_id}-")}


@HOTLINES
def test_a_hotline_that_records_always_records_its_queue_without_a_record_of_its_own(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "hr", {"hl_plain": 0})
    started = phones(lab, agent)
    try:
        hop = a_talk(lab, db, daemon_env, BY_HOTLINE, 4)
    finally:
        stop(started)
    [rec] = finished_recordings(db, 1)
    assert (rec["case_id"], rec["agent"], rec["queue"], rec["state"]) == (hop["case_id"], agent.name,
                                                                        "hl_plain", "done")
    path = Path(daemon_env["HOTLINE_RECORDING_DIR"]) / f"{rec['name']}.wav"
    assert rec["path"] == str(path) and rec["moved_at"] is None
    seconds = seconds_of(path)
    assert 3.5 <= seconds <= talk_seconds(db) + 0.5, seconds


@HOTLINES
def test_a_queue_that_records_never_under_a_hotline_that_records_always_records_nothing(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "hn", {"hl_never": 0})
    started = phones(lab, agent)
    before = set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"]))
    try:
        hop = a_talk(lab, db, daemon_env, QUEUE_NEVER, 2)
    finally:
        stop(started)
    time.sleep(1)  # a recording's row would have been written with the talk's end
    assert rows(db, "SELECT * FROM recordings") == []
    assert made_for(daemon_env["HOTLINE_RECORDING_DIR"], hop["case_id"], before) == set()


@HOTLINES
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_recorded_talk_adopted_after_a_restart_keeps_its_recording_to_the_talks_end(
        sig: int, daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "hk", {"hl_plain": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_call(BY_HOTLINE, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        wait_until(lambda: if_two(bridge_channels(daemon_env, hop["case_id"])),
                   what="caller and agent bridged")
        wait_until(lambda: rows(db, "SELECT id FROM recordings") or None, what="the recording's row")
        time.sleep(2)
        daemon.stop(sig)
        time.sleep(2)  # the talk, and Asterisk's recording of it, go on with no daemon
        daemon.start()
        time.sleep(2)
        hang_up_and_wait(lab, db, hop, caller)
    finally:
        stop(started)
    [rec] = finished_recordings(db, 1)
    assert (rec["state"], rec["detail"], rec["hop_id"]) == ("done", None, hop["id"])
    seconds = seconds_of(Path(daemon_env["HOTLINE_RECORDING_DIR"]) / f"{rec['name']}.wav")
    talk = talk_seconds(db)
    assert talk - 1.0 <= seconds <= talk + 0.5, (seconds, talk)  # the whole talk, restart included
    assert abs(seconds - int(rec["duration_ms"]) / 1000) < 1.0, (seconds, rec["duration_ms"])
    assert "recording" in daemon.log() and f"recording {rec['name']} adopted" in daemon.log()


@HOTLINES
def test_a_recorded_talk_that_ends_while_no_daemon_runs_has_its_recording_closed_by_the_next(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "hd", {"hl_plain": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_call(BY_HOTLINE, "caller_until_bye.xml", caller=CALLER, timeout_s=60)
        hop = answered_hop(db)
        wait_until(lambda: if_two(bridge_channels(daemon_env, hop["case_id"])),
                   what="caller and agent bridged")
        wait_until(lambda: rows(db, "SELECT id FROM recordings") or None, what="the recording's row")
        time.sleep(2)
        daemon.stop(signal.SIGKILL)
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")  # the talk ends, nobody watching
        assert sipp.finish(caller).ok
        restarted = datetime.now(UTC)
        daemon.start()
        [rec] = finished_recordings(db, 1)
    finally:
        stop(started)
    # Asterisk ended its recording with the talk (the agent's leg, left alone, hung up at the
    # restart): closed with the time the daemon learnt it, and why
    assert (rec["state"], rec["detail"]) == ("failed", ENDED_UNWATCHED)
    assert rec["ended_at"] >= restarted - timedelta(seconds=1), (rec["ended_at"], restarted)  # clocks
    seconds = seconds_of(Path(daemon_env["HOTLINE_RECORDING_DIR"]) / f"{rec['name']}.wav")
    assert 1.5 <= seconds <= (rec["ended_at"] - rec["started_at"]).total_seconds(), seconds  # the talk
    assert f"recording {rec['name']} closed: its talk ended while no daemon ran" in daemon.log()
