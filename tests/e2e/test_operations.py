"""Operating the daemon against the real lab: its health endpoint and its JSON log lines."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab
from hotline.store.db import APPLICATION_NAME

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



def test_with_the_database_away_the_daemon_is_degraded_still_200_and_counts_its_backlog(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    caller = sipp.start_call("+74951234567", "caller_hangs_up.xml", hold_ms=1500)
    wait_until(lambda: rows(db, "SELECT id FROM hops"), what="hop opened")
    with lab.database_cut_off(db.info.dbname, APPLICATION_NAME):
        assert sipp.finish(caller).ok  # the call ends during the outage: its end is a record to keep
        # The database check is cached for 2 s: an answer from before the outage may come first.
        health = wait_until(lambda: h if (h := daemon.health()) and h["write_behind_backlog"] > 0
                            and h["status"] != "ok" else None, what="the call's records waiting")
        assert health["status"] == "degraded" and not health["database_reachable"], health
        assert health["ari_connected"] and health["database_error"]
        assert daemon.health_status() == 200
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), timeout_s=30,
               what="records written once the database is back")
    back = wait_until(lambda: h if (h := daemon.health()) and h["status"] == "ok" else None, what="ok again")
    assert back["write_behind_backlog"] == 0 and back["database_reachable"]


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
