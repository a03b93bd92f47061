"""A database that is not there, or that goes away in the middle of a command: one line on stderr
and exit 1 from every command group, never a traceback (`hotline` run as an operator runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hotline.store.provisioning import PROVISIONING_LOCK

from support.cli import hotline_cli
from support.daemon import free_tcp_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"
VICTIM = "hotline_cli_under_test"  # the application_name of the command's sessions

# One command of each group that needs the database.
COMMANDS = [
    ["provision", str(EXAMPLE)], ["export"], ["number", "list"], ["queue", "remove", "nosuch"],
    ["hotline", "list"], ["member", "add", "support", "anna"], ["ivr", "list"],
    ["agent", "login", "anna"], ["agent", "status"], ["case", "show", "1"], ["case", "switch", "1"],
    ["stats", "queues"], ["stats", "live"], ["db", "migrate"], ["apply", "--no-reload"],
]


def assert_one_line(result: subprocess.CompletedProcess[str], start: str) -> None:
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "WARNING psycopg.pool" not in line
              and not line.startswith("\t")]  # the pool's own retries, logged as it goes
    assert len(errors) == 1 and errors[0].startswith(start), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_database_on_a_closed_port_is_one_line_naming_it(args: list[str], tmp_path: Path) -> None:
    port = free_tcp_port()
    env = {"HOTLINE_DSN": f"postgresql://hotline:x@127.0.0.1:{port}/hotline",
           "HOTLINE_ASTERISK_CONF_DIR": str(tmp_path), "HOTLINE_CONFIG": ""}
    result = hotline_cli(env, *args)
    assert_one_line(result, f"Error: database 127.0.0.1:{port}/hotline unreachable:")
    assert result.stdout == ""


@pytest.fixture
def victim_dsn(db_dsn: str) -> str:
    return f"{db_dsn} application_name={VICTIM}"


def terminate_when(db: psycopg.Connection, condition: str, timeout: float = 20) -> None:
    """End the command's sessions once one of them matches `condition` (pg_stat_activity)."""
    deadline = time.monotonic() + timeout
    query = f"SELECT pid FROM pg_stat_activity WHERE application_name = %s AND {condition}"
    while not db.execute(query, (VICTIM,)).fetchall():
        assert time.monotonic() < deadline, f"the command never got to: {condition}"
        time.sleep(0.05)
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
               (VICTIM,))


@pytest.fixture
def start() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def spawn(started: list[subprocess.Popen[str]], dsn: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "hotline", *args], env={**os.environ, "HOTLINE_DSN": dsn},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(proc)
    return proc


def finished(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.lab
def test_the_database_going_away_during_provision_is_one_line(
        victim_dsn: str, db_dsn: str, db: psycopg.Connection, start: list[subprocess.Popen[str]]) -> None:
    with psycopg.connect(db_dsn) as holder:  # provision waits for the lock: its session ends there
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (PROVISIONING_LOCK,))
        proc = spawn(start, victim_dsn, "provision", str(EXAMPLE))
        terminate_when(db, "wait_event_type = 'Lock'")
    result = finished(proc)
    assert_one_line(result, "Error: database 127.0.0.1:55432/")
    assert "terminating connection due to administrator command" in result.stderr
    assert db.execute("SELECT count(*) FROM queues").fetchone() == (0,)


@pytest.mark.lab
def test_the_database_going_away_under_stats_live_watch_is_one_line(
        victim_dsn: str, db: psycopg.Connection, start: list[subprocess.Popen[str]]) -> None:
    proc = spawn(start, victim_dsn, "stats", "live", "--watch")
    terminate_when(db, "starts_with(query, 'LISTEN')")
    assert_one_line(finished(proc), "Error: database 127.0.0.1:55432/")
