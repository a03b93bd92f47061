"""The browser call as a customer meets it, through the real lab: a voice call from the customer
page (microphone only), with Debian's Chromium on both sides (the agent on the agent page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab

from support.browser import launch, open_page, playwright_session
from support.checks import rows
from support.daemon import DaemonProcess
from support.fake_camera import BLUE, RED, write_y4m
from support.provisioning import BASE
from support.web_calls import (
    agent_page,
    answer,
    case_bridge,
    flowing,
    poll,
    rtp_counts,
    state_of,
    web_url,
    webrtc_agent,
)

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

WEB_DESK = pytest.mark.provision(BASE + """
[queues.wq]
ring_timeout = 15

[hotlines.webdesk]
entry = "queue:wq"

[numbers.web-desk]
hotline = "webdesk"
kind = "video"
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    """Last in every test's arguments: its event loop must not run while fixtures before it still
    use asyncio.run (provisioning the test's database)."""
    with playwright_session() as session:
        yield session


@pytest.fixture
def cameras(tmp_path: Path) -> dict[str, Path]:
    return {"customer": write_y4m(tmp_path / "red.y4m", RED), "agent": write_y4m(tmp_path / "blue.y4m", BLUE)}


@WEB_DESK
def test_a_customer_who_refuses_the_camera_calls_by_voice_and_talks_with_a_video_agent_on_audio(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "wq"))
    customer = open_page(launch(pw, cameras["customer"], allow_media=False),
                         f"{web_url(daemon_env)}/call/web-desk", permissions=["microphone"])
    customer.click("#call-voice")
    answer(agent)
    poll(lambda: state_of(customer) == "in call", "the customer page in the call")
    poll(lambda: flowing(customer, "audioIn") and flowing(agent, "audioIn"), "sound both ways")

    [hop] = rows(db, "SELECT * FROM hops")
    assert (hop["channel_kind"], hop["media"], hop["dialled"]) == ("webrtc", "audio", "web-desk")
    assert hop["answered_at"] is not None and hop["agent_id"] is not None
    bridge = case_bridge(daemon_env, hop["case_id"])
    # A voice call is a plain mixing bridge, even with a video agent: the SFU would double
    # Asterisk's work for a picture nobody sends.
    assert bridge["bridge_type"] == "mixing" and bridge["video_mode"] != "sfu", bridge
    assert hop["channel_id"] in bridge["channels"] and len(bridge["channels"]) == 2  # type: ignore[arg-type]
    assert customer.evaluate("window.hotlinePhone.localStream.getTracks().map((t) => t.kind)") == ["audio"]
    assert rtp_counts(customer)["videoOut"] == 0 and not flowing(agent, "videoIn")

    customer.click("#hangup")
    poll(lambda: rows(db, "SELECT end_reason FROM hops WHERE ended_at IS NOT NULL"), "the hop closed")
    assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": "completed"}]
    poll(lambda: state_of(agent) == "ended", "the agent's call ended with the customer's")
