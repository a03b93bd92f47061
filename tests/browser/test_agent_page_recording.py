"""The agent page's Pause recording and Record through the real lab: Chromium runs the page of an
agent who answers a sipp phone caller in a queue that records; the button pauses the talk's
recording, then resumes it. Checked: the page's word and button, the rows (the pause with who
asked), and the file, shorter than the talk by the pause. In a queue that records on demand, the
Record button begins the recording: no row before, a file as long as the talk since then."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from test_agent_page_transfer import agent_page, answered_call

from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents
from support.browser import playwright_session
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.recordings import finished_recordings, seconds_of

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

RECORDED_DESK = pytest.mark.provision(BASE + """
[queues.tp_desk]
ring_timeout = 15
record = "always"

[hotlines.tp]
entry = "queue:tp_desk"

[numbers."+74950002259"]
hotline = "tp"
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    """Last in every test's arguments (as in test_video_lab)."""
    with playwright_session() as session:
        yield session


def recording_said(page: Page) -> str:
    return str(page.text_content("#recording-status") or "")


@RECORDED_DESK
def test_the_agent_page_pauses_and_resumes_the_recording_of_its_talk(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "pr", {"tp_desk": 0},
                               capabilities=[("audio", "video", "webrtc")])
    page = agent_page(pw, tmp_path, daemon_env, lab, agent)
    caller, hop = answered_call(page, db)
    wait_until(lambda: rows(db, "SELECT id FROM recordings"), what="the recording started")
    time.sleep(1)
    asked = time.monotonic()
    page.click("#recording")
    wait_until(lambda: recording_said(page) == "Recording paused", what="the page said the pause")
    assert page.text_content("#recording") == "Resume recording"
    assert [r["state"] for r in rows(db, "SELECT state FROM recordings")] == ["paused"]
    time.sleep(3)
    page.click("#recording")
    wait_until(lambda: recording_said(page) == "Recording", what="the page said the resume")
    at_most = time.monotonic() - asked  # from the pause asked to the resume written
    assert page.text_content("#recording") == "Pause recording"
    time.sleep(1)
    lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
    assert sipp.finish(caller).ok
    [rec] = finished_recordings(db, 1)
    [pause] = rows(db, "SELECT asked_by, extract(epoch FROM resumed_at - paused_at)::float AS s"
                       " FROM recording_pauses")
    assert pause["asked_by"] == f"agent:{agent.name}" and 3 <= pause["s"] <= at_most, (pause, at_most)
    [talk] = rows(db, "SELECT extract(epoch FROM ended_at - started_at)::float AS s FROM recordings")
    seconds = seconds_of(Path(daemon_env["HOTLINE_RECORDING_DIR"]) / f"{rec['name']}.wav")
    assert abs(seconds - (talk["s"] - pause["s"])) < 1.0, (seconds, talk, pause)


ON_DEMAND_DESK = pytest.mark.provision(BASE + """
[queues.tp_asked]
ring_timeout = 15
record = "on_demand"

[hotlines.tp]
entry = "queue:tp_asked"

[numbers."+74950002259"]
hotline = "tp"
""")


@ON_DEMAND_DESK
def test_the_agent_pages_record_button_records_an_on_demand_talk_from_then(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "po", {"tp_asked": 0},
                               capabilities=[("audio", "video", "webrtc")])
    page = agent_page(pw, tmp_path, daemon_env, lab, agent)
    caller, hop = answered_call(page, db)
    time.sleep(3)
    assert rows(db, "SELECT id FROM recordings") == []  # nothing until the agent asks
    page.click("#record")
    wait_until(lambda: recording_said(page) == "Recording", what="the page said the recording began")
    assert [r["state"] for r in rows(db, "SELECT state FROM recordings")] == ["recording"]
    time.sleep(3)
    lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
    assert sipp.finish(caller).ok
    [rec] = finished_recordings(db, 1)
    assert rec["agent"] == agent.name and rec["queue"] == "tp_asked"
    [times] = rows(db, "SELECT extract(epoch FROM h.ended_at - h.answered_at)::float AS talk,"
                       " extract(epoch FROM g.ended_at - g.started_at)::float AS recorded"
                       " FROM hops h JOIN recordings g ON g.hop_id = h.id")
    seconds = seconds_of(Path(daemon_env["HOTLINE_RECORDING_DIR"]) / f"{rec['name']}.wav")
    assert abs(seconds - times["recorded"]) < 1.0 and seconds <= times["talk"] - 2.5, (seconds, times)
