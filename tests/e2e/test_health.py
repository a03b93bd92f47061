"""The daemon's health endpoint against the real lab."""

from __future__ import annotations

import signal

import pytest

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
