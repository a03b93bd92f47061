"""`hotline doctor` against the lab, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotline", "doctor", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_doctor_passes_on_the_lab_with_the_daemon_running(daemon_env: dict[str, str],
                                                          daemon: DaemonProcess) -> None:
    result = doctor(daemon_env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok", "ok", "ok", "ok"]
    assert "migrated" in lines[0] and "Asterisk 22." in lines[1] and "registered" in lines[2]
    assert lines[3] == ("ok   ari exposure: Asterisk's HTTP server (ARI) listens on loopback only: "
                        "127.0.0.1:8088")


def test_doctor_fails_clearly_with_a_wrong_ami_secret(daemon_env: dict[str, str]) -> None:
    url = urlsplit(daemon_env["HOTLINE_AMI_URL"])
    wrong = f"ami://{url.username}:not-the-secret@{url.hostname}:{url.port}"
    result = doctor({**daemon_env, "HOTLINE_AMI_URL": wrong})
    assert result.returncode != 0
    ami_line = next(line for line in result.stdout.splitlines() if " ami:" in line)
    assert ami_line.startswith("FAIL") and "secret" in ami_line
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_fails_when_the_database_is_not_migrated(daemon_env: dict[str, str],
                                                       empty_db_dsn: str) -> None:
    result = doctor({**daemon_env, "HOTLINE_DSN": empty_db_dsn})
    assert result.returncode != 0
    assert "hotline db migrate" in result.stdout.splitlines()[0]


def test_doctor_says_when_no_daemon_serves_the_stasis_app(daemon_env: dict[str, str]) -> None:
    result = doctor(daemon_env)
    assert result.returncode != 0
    assert "not registered" in result.stdout.splitlines()[2]


def test_doctor_starting_passes_before_the_daemon_runs(daemon_env: dict[str, str]) -> None:
    result = doctor(daemon_env, "--starting")  # systemd's ExecStartPre: no daemon yet
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ok", "ok", "ok", "ok"]
