"""Recording files after the talk, through the real lab: with `recording_move_to` set, a finished
recording's file is moved into that directory (under the day it began), the row's path says so,
the recording directory no longer holds it, and `hotline recording path|export` find it there."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from test_recording_hotline_calls import BY_HOTLINE, HOTLINES, a_talk, made_for, talk_seconds

from hotline.lab import Lab

from support.agents import logged_in_agents
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.recordings import finished_recordings, seconds_of
from support.transfer_checks import phones, stop

pytestmark = pytest.mark.lab


@pytest.fixture
def move_to(tmp_path: Path) -> Path:
    return tmp_path / "kept"


@pytest.fixture
def daemon_env(daemon_env: dict[str, str], move_to: Path) -> dict[str, str]:
    """The daemon of these tests moves finished recordings into `move_to`."""
    return {**daemon_env, "HOTLINE_RECORDING_MOVE_TO": str(move_to)}


@HOTLINES
def test_a_finished_recording_is_moved_to_recording_move_to_and_its_row_follows(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, move_to: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "hm", {"hl_plain": 0})
    started = phones(lab, agent)
    before = set(os.listdir(daemon_env["HOTLINE_RECORDING_DIR"]))
    try:
        hop = a_talk(lab, db, daemon_env, BY_HOTLINE, 4)
    finally:
        stop(started)
    finished_recordings(db, 1)
    [rec] = wait_until(lambda: rows(db, "SELECT * FROM recordings WHERE moved_at IS NOT NULL") or None,
                       what="the recording's row saying it was moved")
    day = rec["started_at"].strftime("%Y/%m/%d")
    moved = move_to / day / f"{rec['name']}.wav"
    assert rec["path"] == str(moved) and rec["state"] == "done"
    assert moved.is_file()
    assert made_for(daemon_env["HOTLINE_RECORDING_DIR"], hop["case_id"], before) == set()  # gone from there
    seconds = seconds_of(moved)
    assert 3.5 <= seconds <= talk_seconds(db) + 0.5, seconds
    assert abs(seconds - int(rec["duration_ms"]) / 1000) < 1.0, (seconds, rec["duration_ms"])
    said = hotline_cli(daemon_env, "recording", "path", str(rec["id"]))
    assert (said.returncode, said.stdout.strip()) == (0, str(moved)), said.stderr
    copied = hotline_cli(daemon_env, "recording", "export", str(rec["id"]), str(tmp_path))
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / moved.name).read_bytes() == moved.read_bytes()
