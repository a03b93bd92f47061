"""Changing channel while waiting, through the real lab: a sipp phone caller waiting in a queue
presses the queue's video key, the link goes out by the SMS gateway command, Chromium opens it, and
the customer's video leg takes the phone leg's place in line, ahead of a caller who called later;
the phone leg gets its BYE and its hop ends `switched`. Then the agent is free and answers the
video leg on the agent page, and each sees the other."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.browser import launch, open_page, playwright_session
from support.checks import rows
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.fake_camera import BLUE, RED, write_y4m
from support.provisioning import BASE
from support.web_calls import agent_page, answer, case_bridge, poll, sees, state_of, webrtc_agent

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

PHONE_NUMBER = "84950002299"
FIRST, LATER = "+79161234567", "+79167654321"
WAITING_DESK = pytest.mark.provision(BASE + """
[queues.vq]
ring_timeout = 15
prefer_video_agents = true
video_key = "9"

[hotlines.videodesk]
entry = "queue:vq"

[numbers.video-desk]
hotline = "videodesk"
kind = "video"

[numbers."+74950002299"]
hotline = "videodesk"
lines = 4
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


@pytest.fixture
def sms_file(tmp_path: Path) -> Path:
    return tmp_path / "sms.txt"


@pytest.fixture
def daemon_env(daemon_env: dict[str, str], sms_file: Path, tmp_path: Path) -> dict[str, str]:
    """The lab's daemon with an SMS gateway: a command appending the caller and the link to a file."""
    gateway = tmp_path / "sms_gateway.py"
    gateway.write_text(f"import os\nopen({str(sms_file)!r}, 'a').write("
                       "os.environ['HOTLINE_CALLER'] + ' ' + os.environ['HOTLINE_SWITCH_LINK'] + '\\n')\n")
    return {**daemon_env, "HOTLINE_SWITCH_LINK_COMMAND": f"{sys.executable} {gateway}"}


def joined(db: psycopg.Connection, n: int) -> list[dict[str, object]]:
    def in_line() -> list[dict[str, object]] | None:
        found = rows(db, "SELECT h.* FROM queue_events e JOIN hops h ON h.id = e.hop_id"
                         " WHERE e.event = 'join' ORDER BY e.id")
        return found if len(found) >= n else None
    return poll(in_line, f"{n} callers in line")


@WAITING_DESK
def test_a_waiting_caller_moves_to_video_and_keeps_their_place_ahead_of_a_later_caller(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, sms_file: Path, pw: Playwright) -> None:
    agent_id = webrtc_agent(daemon_env, tmp_path, "vq")
    paused = hotline_cli(daemon_env, "agent", "pause", agent_id.name, "lunch")
    assert paused.returncode == 0, paused.stderr  # nobody free: both callers wait
    agent = agent_page(pw, write_y4m(tmp_path / "blue.y4m", BLUE), daemon_env, lab, agent_id)

    first = sipp.start_pressing_keys(PHONE_NUMBER, "9", first_ms=2500, timeout_s=90, caller=FIRST)
    [phone_hop] = joined(db, 1)
    later = sipp.start_call(PHONE_NUMBER, "caller_until_bye.xml", caller=LATER, timeout_s=90)
    later_hop = joined(db, 2)[1]
    sms = poll(lambda: sms_file.exists() and sms_file.read_text().splitlines(), "the video link sent")
    caller, link = sms[0].split()
    assert caller == FIRST and len(sms) == 1
    [issued] = rows(db, "SELECT from_hop_id, requested_by FROM switches")
    assert issued == {"from_hop_id": phone_hop["id"], "requested_by": "caller"}

    customer = open_page(launch(pw, write_y4m(tmp_path / "red.y4m", RED)), link)
    customer.click("#call")
    poll(lambda: state_of(customer) == "in call", "the customer's video leg answered, waiting")
    run = sipp.finish(first, timeout_s=20)
    assert run.ok, run.output[-3000:]  # the phone leg got its BYE
    hops = poll(lambda: (found := rows(db, "SELECT * FROM hops WHERE case_id = %s ORDER BY seq",
                                       phone_hop["case_id"])) and found[0]["ended_at"] and found,
                "the phone hop closed")
    assert [(h["seq"], h["channel_kind"], h["media"], h["end_reason"]) for h in hops] == [
        (1, "pstn", "audio", "switched"), (2, "webrtc", "video", None)]
    assert later.poll() is None  # the later caller still waits

    assert hotline_cli(daemon_env, "agent", "unpause", agent_id.name).returncode == 0
    answer(agent)  # rung for the video leg first: it has the phone leg's place
    sees(customer, BLUE, "the customer")
    sees(agent, RED, "the agent")
    bridge = case_bridge(daemon_env, int(phone_hop["case_id"]))  # type: ignore[call-overload]
    assert hops[1]["channel_id"] in bridge["channels"]  # type: ignore[operator]
    assert rows(db, "SELECT answered_at FROM hops WHERE id = %s", later_hop["id"]) == [{"answered_at": None}]

    customer.click("#hangup")
    poll(lambda: rows(db, "SELECT id FROM hops WHERE id = %s AND ended_at IS NOT NULL", hops[1]["id"]),
         "the video hop closed")
    lab.asterisk_cli(f"channel request hangup {later_hop['channel_id']}")
    assert sipp.finish(later).ok
    video = rows(db, "SELECT h.end_reason, h.answered_at IS NOT NULL AS answered, q.name AS queue"
                     " FROM hops h JOIN queues q ON q.id = h.queue_id WHERE h.id = %s", hops[1]["id"])
    assert video == [{"end_reason": "completed", "answered": True, "queue": "vq"}]
    # One visit, on the hop that joined: its wait counted from the phone leg's join.
    events = rows(db, "SELECT event, wait_ms FROM queue_events WHERE hop_id = %s ORDER BY id",
                  phone_hop["id"])
    assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"]
    waited = rows(db, "SELECT extract(epoch FROM (SELECT at FROM queue_events WHERE hop_id = %s"
                      " AND event = 'answer') - queued_at) * 1000 AS ms FROM hops WHERE id = %s",
                  phone_hop["id"], phone_hop["id"])[0]["ms"]
    assert abs(int(events[2]["wait_ms"]) - float(waited)) < 1000  # type: ignore[arg-type]
    assert [e["event"] for e in rows(db, "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id",
                                     hops[1]["id"])] == []  # no second visit on the video hop
    shown = hotline_cli(daemon_env, "case", "show", str(phone_hop["case_id"]))
    assert "ended switched" in shown.stdout, shown.stdout
