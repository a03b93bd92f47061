"""`hotline lab call|phones`: what they refuse before touching the lab, and the sipp scenario
`lab call` writes (checked by sipp itself when it is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.errors import LabError
from hotline.lab import phones
from hotline.lab.sipp import caller_scenario, place_call

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"


def hotline(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotline", *args], env={**os.environ, "PATH": path},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("args", [("lab", "call", "88005553535"),
                                  ("lab", "phones", str(EXAMPLE))])
def test_without_sipp_the_lab_commands_say_so_in_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    done = hotline(*args, path=str(tmp_path))  # an empty directory: no sipp on the PATH
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: sipp is not installed (Debian's package sip-tester: apt-get install sip-tester)"]


def test_a_key_that_is_no_key_is_refused() -> None:
    with pytest.raises(LabError, match="a key is one of 0-9"):
        place_call("88005553535", caller="+79161234567", keys=("1", "x"))


def test_the_example_has_a_lab_phone_for_petrova_and_says_why_not_for_ivanov() -> None:
    found, skipped = phones.phones_in(EXAMPLE, "RU")
    assert [(p.agent, p.endpoint) for p in found] == [("petrova", "petrova")]
    assert skipped == ["ivanov: a WebRTC agent, who answers in the browser (/agent)"]


def test_an_agent_without_a_password_in_the_file_gets_no_phone(tmp_path: Path) -> None:
    file = tmp_path / "agents.toml"
    file.write_text('[agents.sidorov]\nqueues = { support = 0 }\n')
    found, skipped = phones.phones_in(file, "RU")
    assert found == [] and skipped[0].startswith("sidorov: no password in ")


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp checks the scenario; not installed here")
@pytest.mark.parametrize("keys", [(), ("1",), ("1", "2", "#")])
def test_sipp_loads_the_caller_scenario_and_starts_the_call(keys: tuple[str, ...], tmp_path: Path) -> None:
    scenario = tmp_path / "caller.xml"
    scenario.write_text(caller_scenario(keys, 1000, 1500, 15000))
    inf = tmp_path / "inf.csv"
    inf.write_text("SEQUENTIAL\n+79161234567;Test;\n")
    # Nobody listens on port 9: the call times out; a scenario sipp cannot load never gets there.
    done = subprocess.run(["sipp", "127.0.0.1:9", "-sf", str(scenario), "-inf", str(inf), "-m", "1",
                           "-timeout", "2s", "-timeout_error", "-nostdin", "-i", "127.0.0.1", "-p", "0"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert "Resolving remote host" in done.stderr, done.stderr[-2000:]
    assert "not defined" not in done.stderr and "Unknown" not in done.stderr, done.stderr[-2000:]


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is checked first; not installed here")
@pytest.mark.parametrize("args", [("lab", "call", "88005553535"), ("lab", "phones", str(EXAMPLE))])
def test_without_a_running_lab_the_lab_commands_say_so_in_one_line(args: tuple[str, ...],
                                                                   tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "hotline", *args], capture_output=True, text=True,
                          env={**os.environ, "HOTLINE_LAB_HOME": str(tmp_path)}, timeout=30)  # never built
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: the lab is not running: `hotline lab up` (or `make run`) first"]
