"""The IVR through the real lab: sipp callers press keys (SIP INFO DTMF), the daemon runs the menus,
the hop's IVR path records what they pressed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from support import sipp
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

IVR_NUMBER = "84950002233"
BARGE_IN_NUMBER = "84950002244"
# Short prompts and timeouts keep each call to a few seconds. `beep` is ~0.4 s, `demo-congrats`
# ~30 s (a prompt a caller interrupts). Leaving the IVR goes to a queue nobody staffs.
IVR = BASE + """
[queues.front]
join_empty = false

[menus.main]
prompt = "beep"
timeout = 2
retries = 1
invalid_prompt = "beep"

[menus.main.options]
"1" = "queue:front"
"2" = "menu:billing"
"0" = "queue:front"

[menus.billing]
prompt = "beep"
timeout = 2
retries = 1

[menus.billing.options]
"0" = "menu:main"
"1" = "queue:front"

[menus.long]
prompt = "demo-congrats"
timeout = 1
retries = 0

[menus.long.options]
"1" = "queue:front"

[hotlines.ivr]
entry = "menu:main"

[hotlines.barge]
entry = "menu:long"

[numbers."+74950002233"]
hotline = "ivr"
lines = 5

[numbers."+74950002244"]
hotline = "barge"
"""



@pytest.fixture
def daemon(daemon: DaemonProcess) -> DaemonProcess:
    """The daemon, once it has logged that it serves calls (after its ARI connection, which
    `wait_registered` waits for, it reads Asterisk's version over AMI)."""
    wait_until(lambda: "hotline running on node" in daemon.log(), what="daemon connected")
    return daemon


def closed_hop(db: psycopg.Connection) -> dict[str, Any]:
    return wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]


def left_the_menu(daemon: DaemonProcess, menu: str, key: str) -> bool:
    return f"menu {menu} key {key}: leave to queue:front" in daemon.log()


@pytest.mark.provision(IVR)
def test_a_valid_key_is_recorded_and_takes_the_caller_past_the_menu(daemon: DaemonProcess,
                                                                    db: psycopg.Connection) -> None:
    run = sipp.press_keys(IVR_NUMBER, "1")
    assert run.ok, run.output  # answered, key accepted (200 to the INFO), then BYE from Asterisk
    hop = closed_hop(db)
    assert hop["ivr_path"] == "1"
    assert hop["hangup_cause"] == 16
    assert left_the_menu(daemon, "main", "1"), daemon.log()


@pytest.mark.provision(IVR)
def test_an_invalid_key_then_a_valid_one_records_both(daemon: DaemonProcess, db: psycopg.Connection) -> None:
    run = sipp.press_keys(IVR_NUMBER, "9", "1")
    assert run.ok, run.output
    assert closed_hop(db)["ivr_path"] == "91"
    assert left_the_menu(daemon, "main", "1"), daemon.log()


@pytest.mark.provision(IVR)
def test_a_silent_caller_is_hung_up_after_the_retries(daemon: DaemonProcess, db: psycopg.Connection) -> None:
    run = sipp.press_keys(IVR_NUMBER)
    assert run.ok, run.output  # the BYE came from Asterisk
    hop = closed_hop(db)
    assert hop["ivr_path"] == ""
    assert hop["hangup_cause"] == 16
    # Two attempts (retries = 1), each waiting the 2 s timeout after its prompt.
    assert hop["ended_at"] - hop["entered_at"] >= timedelta(seconds=4)
    assert "menu main: retries used up: goodbye" in daemon.log()


@pytest.mark.provision(IVR)
def test_a_nested_menu_and_0_back_to_main_then_1(daemon: DaemonProcess, db: psycopg.Connection) -> None:
    run = sipp.press_keys(IVR_NUMBER, "2", "0", "1")
    assert run.ok, run.output
    assert closed_hop(db)["ivr_path"] == "201"
    log = daemon.log()
    assert "menu main key 2: menu:billing" in log and "menu billing key 0: menu:main" in log
    assert left_the_menu(daemon, "main", "1"), log


@pytest.mark.provision(IVR)
def test_a_key_pressed_during_the_prompt_cuts_it_short(daemon: DaemonProcess, db: psycopg.Connection) -> None:
    run = sipp.press_keys(BARGE_IN_NUMBER, "1", first_ms=500)  # the prompt lasts ~30 s
    assert run.ok, run.output
    hop = closed_hop(db)
    assert hop["ivr_path"] == "1"
    assert hop["ended_at"] - hop["entered_at"] < timedelta(seconds=10)
    assert left_the_menu(daemon, "long", "1"), daemon.log()


@pytest.mark.provision(IVR)
def test_case_show_lists_the_menu_keys_of_a_lab_call_in_the_order_pressed(
        daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection) -> None:
    call = hotline_cli(daemon_env, "lab", "call", IVR_NUMBER, "--keys", "21", "--seconds", "8")
    assert call.returncode == 3, call.stdout + call.stderr  # the front queue has nobody: no agent
    assert "menu keys pressed: 2 1" in call.stdout and "not answered by an agent" in call.stdout
    hop = closed_hop(db)
    assert hop["ivr_path"] == "21"
    assert f"case {hop['case_id']}, hop {hop['id']}" in call.stdout
    shown = hotline_cli(daemon_env, "case", "show", str(hop["case_id"]))
    assert shown.returncode == 0, shown.stderr
    steps = [line[line.index("menu key"):] for line in shown.stdout.splitlines() if "menu key" in line]
    assert steps == ["menu key 2 pressed (key 1 of 2)", "menu key 1 pressed (key 2 of 2)"], shown.stdout
    assert "keys 21" in shown.stdout.splitlines()[1]
