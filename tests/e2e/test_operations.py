"""Operating the daemon against the real lab: its health endpoint and its JSON log lines."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psycopg
import pytest

from support import sipp
from support.checks import rows, wait_until
from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab


def test_a_running_daemon_reports_itself_ok_with_every_part_connected(daemon: DaemonProcess) -> None:
    health = daemon.health()
    assert health is not None, daemon.log()
    assert health["status"] == "ok", health
    assert health["ari_connected"] and health["ami_connected"] and health["database_reachable"]
    assert health["ari_connections"] == 1
    assert health["write_behind_backlog"] == 0
    assert 0 <= health["loop_lag_ms"]["p99"] <= health["loop_lag_ms"]["max"]


def test_a_stopped_daemon_answers_nothing(daemon: DaemonProcess) -> None:
    assert daemon.stop(signal.SIGTERM) == 0
    assert daemon.health() is None


@pytest.fixture
def daemon_env(daemon_env: dict[str, str]) -> dict[str, str]:
    return {**daemon_env, "HOTLINE_LOG_FORMAT": "json"}


def test_json_logs_are_one_object_per_line_and_name_the_call_s_case_and_hop(
        daemon: DaemonProcess, db: psycopg.Connection, tmp_path: Path) -> None:
    assert sipp.call("+74951234567", "caller_hangs_up.xml").ok
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    daemon.stop(signal.SIGTERM)
    lines = [line for line in daemon.log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, from the start to the stop
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    about_the_call = [r for r in records if r.get("hop_id") == hop["id"]]
    assert about_the_call and all(r["case_id"] == hop["case_id"] for r in about_the_call)
    assert any(hop["channel_id"] in r["message"] for r in about_the_call)
