"""The case commands and the caller's own switch request, through the real lab: a caller presses
the switch key while talking and the SMS gateway's command gets the link; `hotline case invite`
rings a second agent into the talk; the commands refuse what they cannot do, in one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE

pytestmark = pytest.mark.lab

NUMBER = "84950002244"
CALLER = "+79165551234"
TALK = pytest.mark.provision(BASE + """
[queues.tq]
ring_timeout = 5

[hotlines.tq]
entry = "queue:tq"

[numbers."+74950002244"]
hotline = "tq"
""")


@pytest.fixture
def sms_file(tmp_path: Path) -> Path:
    return tmp_path / "sms.txt"


@pytest.fixture
def daemon_env(daemon_env: dict[str, str], sms_file: Path, tmp_path: Path) -> dict[str, str]:
    """The lab's daemon with an SMS gateway: a command that appends what it was given to a file,
    one line per SMS."""
    gateway = tmp_path / "sms_gateway.py"
    gateway.write_text(f"import os\nopen({str(sms_file)!r}, 'a').write("
                       "os.environ['HOTLINE_CALLER'] + ' ' + os.environ['HOTLINE_SWITCH_LINK'] + '\\n')\n")
    return {**daemon_env, "HOTLINE_SWITCH_LINK_COMMAND": f"{sys.executable} {gateway}",
            "HOTLINE_SWITCH_KEY": "*"}


def phones(lab: Lab, *agents: Agent) -> list[subprocess.Popen[str]]:
    started = [sipp.agent_phone(a.name, a.password, ring_ms=200) for a in agents]
    wait_until(lambda: all(registered(lab, a.name) for a in agents), what="agent phones registered")
    return started


def stop(started: list[subprocess.Popen[str]]) -> None:
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def answered_hop(db: psycopg.Connection, daemon: DaemonProcess) -> dict[str, object]:
    try:
        return wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")),
                                       None), what="the call answered by an agent")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; hops: {rows(db, 'SELECT * FROM hops')}\n{daemon.log()}") from None


@TALK
def test_a_caller_pressing_the_switch_key_while_talking_is_sent_the_link(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, sms_file: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "k", {"tq": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_pressing_keys(NUMBER, "*", first_ms=1500, timeout_s=30, caller=CALLER)
        hop = answered_hop(db, daemon)
        text = wait_until(lambda: sms_file.exists() and sms_file.read_text(), what="the SMS gateway called")
        number, link = str(text).strip().split(" ")
        assert number == CALLER
        assert link.startswith(f"http://{daemon_env['HOTLINE_WEB_LISTEN']}/switch/")
        [issued] = rows(db, "SELECT from_hop_id, requested_by, used_at FROM switches")
        assert (issued["from_hop_id"], issued["requested_by"], issued["used_at"]) == (
            hop["id"], "caller", None)
        assert rows(db, "SELECT ended_at FROM hops") == [{"ended_at": None}]  # the talk goes on meanwhile
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
    finally:
        stop(started)


@TALK
def test_a_caller_pressing_the_switch_key_again_and_again_is_sent_one_link(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, sms_file: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "h", {"tq": 0})
    started = phones(lab, agent)
    try:
        caller = sipp.start_pressing_keys(NUMBER, "*", "*", "*", first_ms=1500, gap_ms=400, timeout_s=30,
                                          caller=CALLER)
        hop = answered_hop(db, daemon)
        wait_until(lambda: sms_file.exists(), what="the SMS gateway called")
        time.sleep(1.5)  # the other presses come 0.4 and 0.8 s after the first; a BYE before them fails sipp
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok  # every press was answered 200 before the BYE
        wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")
        assert len(sms_file.read_text().splitlines()) == 1  # one SMS for three presses
        assert len(rows(db, "SELECT id FROM switches")) == 1
        assert rows(db, "SELECT hop_id FROM switch_refusals") == []  # held back, not refused
    finally:
        stop(started)


@TALK
def test_case_invite_rings_a_second_agent_into_the_talk_and_the_talks_end_releases_them(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        db: psycopg.Connection, rendered_files_removed_afterwards: Path) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "i", {"tq": 0}, {})
    started = phones(lab, first, second)
    try:
        caller = sipp.start_call(NUMBER, "caller_until_bye.xml", caller=CALLER)
        hop = answered_hop(db, daemon)
        invited = hotline_cli(daemon_env, "case", "invite", str(hop["case_id"]), second.name)
        assert invited.returncode == 0, invited.stderr
        assert f"ringing {second.name} into case {hop['case_id']}" in invited.stdout

        def bridged() -> dict[str, object] | None:
            status, body = ari_get(daemon_env, f"bridges/case-{hop['case_id']}")
            bridge = json.loads(body) if status == 200 else {"channels": []}
            return bridge if len(bridge["channels"]) == 3 else None
        bridge = wait_until(bridged, what="the second agent in the case's bridge")
        assert bridge["video_mode"] != "sfu"  # an audio caller with audio agents: no SFU to pay for
        [joined] = wait_until(lambda: rows(db, "SELECT invited_by, left_at FROM case_participants"),
                              what="the participant recorded")
        assert joined == {"invited_by": "cli", "left_at": None}

        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(started[1]).ok  # the invited agent's phone got its BYE: released
        wait_until(lambda: rows(db, "SELECT id FROM case_participants WHERE left_at IS NOT NULL"),
                   what="the participant's leaving recorded")
    finally:
        stop(started)


@TALK
def test_case_commands_refuse_what_they_cannot_do_in_one_line(
        daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection) -> None:
    for args, says in ((("case", "show", "4242"), "case 4242 does not exist"),
                       (("case", "switch", "4242"), "case 4242 has no call in progress"),
                       (("case", "invite", "4242", "nobody"), "agent 'nobody' does not exist"),
                       (("case", "show", "x"), "'x' is not a valid integer")):
        result = hotline_cli(daemon_env, *args)
        assert result.returncode != 0 and says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
