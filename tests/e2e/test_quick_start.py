"""The README's Quick start, as written: `make run`'s set-up commands (read from the Makefile),
a daemon, then the README's call from "a second shell". Parsed, so neither file can rot."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support.checks import rows
from support.cli import hotline_cli
from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab

PROJECT_DIR = Path(__file__).resolve().parents[2]


def make_run_commands() -> list[list[str]]:
    """The `$(HOTLINE) ...` commands of the Makefile's `run` recipe before the daemon itself
    (`lab env` is the environment the test gives them; `run` is the daemon it starts)."""
    recipe = re.search(r"^run:.*?\n((?:\t.*\n)+)", (PROJECT_DIR / "Makefile").read_text(), re.M)
    assert recipe, "no run: recipe in the Makefile"
    commands = [shlex.split(c.strip(" \\\t&")) for c in re.findall(r"\$\(HOTLINE\)([^&\")\n]*)", recipe[1])]
    steps = [c for c in commands if c and c[:2] != ["lab", "env"] and c != ["run"]]
    assert ["apply"] in steps and ["lab", "phones", "examples/contact-centre.toml"] in steps, steps
    return steps


def second_shell_commands() -> list[str]:
    """The README's first shell block after "From a second shell"."""
    readme = (PROJECT_DIR / "README.md").read_text()
    after = readme[readme.index("From a second shell"):]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    assert block, "no ```sh block after 'From a second shell' in README.md"
    lines = [line for line in block[1].splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all(line.startswith(".venv/bin/hotline ") for line in lines), lines
    return lines


def test_the_quick_start_call_is_answered_by_an_agent(
        lab: Lab, daemon_env: dict[str, str], db: psycopg.Connection, tmp_path: Path,
        rendered_files_removed_afterwards: Path) -> None:
    env = {**daemon_env, "HOTLINE_LAB_PHONES_PIDFILE": str(tmp_path / "phones.pid")}
    lab.asterisk_cli("channel request hangup all")
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    try:
        for args in make_run_commands():
            done = hotline_cli(env, *args)
            assert done.returncode == 0, f"hotline {' '.join(args)}:\n{done.stdout}{done.stderr}"
        daemon.start()
        for line in second_shell_commands():
            done = subprocess.run(line, shell=True, cwd=PROJECT_DIR, env={**daemon.env, **env},
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{line}:\n{done.stdout}{done.stderr}\n{daemon.log()}"
            assert "answered by agent petrova" in done.stdout, done.stdout
    finally:
        daemon.stop()
        hotline_cli(env, "lab", "phones", "--stop")
    hop = rows(db, "SELECT h.*, a.name AS agent FROM hops h JOIN agents a ON a.id = h.agent_id")[0]
    assert (hop["agent"], hop["end_reason"]) == ("petrova", "completed")
    assert hop["answered_at"] is not None
    assert f"case {hop['case_id']}, hop {hop['id']}" in done.stdout


def test_lab_call_with_no_daemon_running_says_so_in_one_line(daemon_env: dict[str, str]) -> None:
    done = hotline_cli(daemon_env, "lab", "call", "88005553535")
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    health = f"http://{daemon_env['HOTLINE_HEALTH_LISTEN']}/health"
    assert line.startswith(f"Error: no daemon answers at {health}: start `hotline run`"), line


def test_lab_call_to_a_number_nobody_provisioned_says_so_and_places_no_call(
        daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection) -> None:
    done = hotline_cli(daemon_env, "lab", "call", "+7 495 999-00-00")
    assert done.returncode == 1
    assert done.stderr.strip() == ("Error: number '+74959990000' is not provisioned (`hotline number list` "
                                   "shows the numbers; `hotline provision FILE` adds them)")
    assert rows(db, "SELECT id FROM hops") == []
