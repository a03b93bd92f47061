"""Changing channel while waiting, the phone side, through the real lab: a sipp caller choosing a
menu's `video:QUEUE` key is sent the video link by the SMS gateway command and waits in that
queue; a caller whose case has had its links presses the queue's video key and is refused, once,
recorded in switch_refusals, and waits on. (Chromium opening the link and taking the place is
tests/browser/test_video_while_waiting.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

MENU_NUMBER, QUEUE_NUMBER = "84950002255", "84950002266"
CALLER = "+79161234567"
DESK = pytest.mark.provision(BASE + """
[queues.wq]
video_key = "9"

[menus.start]
prompt = "beep"
timeout = 3

[menus.start.options]
"9" = "video:wq"

[hotlines.bymenu]
entry = "menu:start"

[hotlines.byqueue]
entry = "queue:wq"

[numbers."+74950002255"]
hotline = "bymenu"

[numbers."+74950002266"]
hotline = "byqueue"
""")


@pytest.fixture
def sms_file(tmp_path: Path) -> Path:
    return tmp_path / "sms.txt"


@pytest.fixture
def daemon_env(daemon_env: dict[str, str], sms_file: Path, tmp_path: Path) -> dict[str, str]:
    """An SMS gateway that appends the caller and the link to a file; one link per case, a
    caller's presses quiet for 10 s after a link."""
    gateway = tmp_path / "sms_gateway.py"
    gateway.write_text(f"import os\nopen({str(sms_file)!r}, 'a').write("
                       "os.environ['HOTLINE_CALLER'] + ' ' + os.environ['HOTLINE_SWITCH_LINK'] + '\\n')\n")
    return {**daemon_env, "HOTLINE_SWITCH_LINK_COMMAND": f"{sys.executable} {gateway}",
            "HOTLINE_SWITCH_LINKS_PER_CASE": "1", "HOTLINE_SWITCH_LINK_COOLDOWN": "10"}


def sms(sms_file: Path) -> list[str]:
    return sms_file.read_text().splitlines() if sms_file.exists() else []


@DESK
def test_a_menus_video_key_sends_the_link_and_the_caller_waits_in_its_queue(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
        sms_file: Path) -> None:
    caller = sipp.start_pressing_keys(MENU_NUMBER, "9", first_ms=800, timeout_s=40, caller=CALLER)
    try:
        [sent] = wait_until(lambda: sms(sms_file), what="the video link sent")
        number, link = sent.split()
        assert number == CALLER and "/switch/" in link
        [hop] = wait_until(lambda: rows(db, "SELECT h.* FROM hops h JOIN queue_events e ON e.hop_id = h.id"
                                            " WHERE e.event = 'join'"), what="the caller in line")
        assert hop["ivr_path"] == "9" and hop["ended_at"] is None  # waiting, not hung up
        [issued] = rows(db, "SELECT from_hop_id, requested_by, used_at FROM switches")
        assert issued == {"from_hop_id": hop["id"], "requested_by": "caller", "used_at": None}
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok  # the call went on until hung up: the link changed nothing
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.communicate()
    ended = wait_until(lambda: rows(db, "SELECT end_reason FROM hops WHERE ended_at IS NOT NULL"),
                       what="the hop closed")
    assert ended == [{"end_reason": "abandoned"}]


@DESK
def test_the_queues_video_key_past_the_cases_links_is_refused_once_and_the_caller_waits_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, db: psycopg.Connection,
        sms_file: Path) -> None:
    caller = sipp.start_pressing_keys(QUEUE_NUMBER, "9", "9", first_ms=1500, gap_ms=11_000,
                                      timeout_s=60, caller=CALLER)
    try:
        [sent] = wait_until(lambda: sms(sms_file), what="the first press's link")
        assert sent.startswith(CALLER)
        [hop] = wait_until(lambda: rows(db, "SELECT * FROM hops"), what="the caller's hop")
        # The second press comes past the cooldown: it would send another link, but the case has
        # had its one.
        refusal = wait_until(lambda: rows(db, "SELECT hop_id, reason FROM switch_refusals"),
                             timeout_s=30, what="the second press refused")
        assert refusal == [{"hop_id": hop["id"], "reason": "the case has had its 1 switch links "
                                                           "(switch_links_per_case)"}]
        assert caller.poll() is None  # the caller waits on
        assert rows(db, "SELECT ended_at FROM hops") == [{"ended_at": None}]
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller, timeout_s=40).ok
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.communicate()
    assert len(sms(sms_file)) == 1 and len(rows(db, "SELECT id FROM switches")) == 1
