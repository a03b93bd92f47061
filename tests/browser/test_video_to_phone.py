"""From video to phone through the real lab, with Chromium: a customer's page talks by video
with an agent on the agent page; the agent presses "Move the caller to the phone" with the
customer's number typed; the daemon dials it through the provisioned trunk, where a sipp UAS on the
lab carrier's address answers; the phone leg joins the case's bridge, the customer's page is hung
up, and the agent's call is never cut."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab
from hotline.lab.asterisk_conf import CARRIER_ADDRESS

from support.browser import launch, open_page, playwright_session
from support.checks import rows
from support.daemon import DaemonProcess
from support.fake_camera import BLUE, RED, write_y4m
from support.provisioning import BASE
from support.web_calls import agent_page, answer, case_bridge, poll, sees, state_of, web_url, webrtc_agent

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

CUSTOMER = "+79161234567"
DESK = pytest.mark.provision(BASE + """
[queues.vq]
ring_timeout = 15
prefer_video_agents = true

[hotlines.videodesk]
entry = "queue:vq"

[numbers.video-desk]
hotline = "videodesk"
kind = "video"

[numbers."+74950002299"]
hotline = "videodesk"

[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+7 495 000-22-99"
allow = ["+7916"]
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


def customers_phone(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """sipp's built-in UAS behind the carrier: answers one call, stays until Asterisk's BYE."""
    messages = tmp_path / "phone-messages.log"
    proc = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", CARRIER_ADDRESS, "-p", "5060", "-m", "1", "-trace_msg",
         "-message_file", str(messages), "-timeout", "90s", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    return proc, messages


@DESK
def test_the_agent_moves_a_video_caller_to_their_phone_and_stays_in_the_bridge(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    agent = agent_page(pw, write_y4m(tmp_path / "blue.y4m", BLUE), daemon_env, lab,
                       webrtc_agent(daemon_env, tmp_path, "vq"))
    customer = open_page(launch(pw, write_y4m(tmp_path / "red.y4m", RED)),
                         f"{web_url(daemon_env)}/call/video-desk")
    customer.click("#call")
    answer(agent)
    sees(customer, BLUE, "the customer")
    [video_hop] = rows(db, "SELECT * FROM hops")
    before = case_bridge(daemon_env, video_hop["case_id"])
    [agent_channel] = set(before["channels"]) - {video_hop["channel_id"]}  # type: ignore[arg-type]

    agent.click("#to-phone")  # the browser's case has no phone number of its own
    poll(lambda: agent.evaluate("window.hotlinePhone.lastError"), "the agent page's refusal")
    assert "type the customer's number" in str(agent.evaluate("window.hotlinePhone.lastError"))

    phone, messages = customers_phone(tmp_path)
    try:
        agent.fill("#phone-number", "8 916 123-45-67")
        agent.click("#to-phone")
        said = poll(lambda: agent.evaluate("window.hotlinePhone.phoneMessage"), "the agent page's answer")
        assert said.startswith(f"Calling {CUSTOMER}")
        poll(lambda: state_of(customer) == "ended", "the customer's page hung up once the phone answered", 30)
        hops = poll(lambda: (found := rows(db, "SELECT * FROM hops WHERE case_id = %s ORDER BY seq",
                                           video_hop["case_id"])) and found[0]["ended_at"] and found,
                    "the video hop closed")
        assert [(h["seq"], h["channel_kind"], h["media"], h["end_reason"]) for h in hops] == [
            (1, "webrtc", "video", "switched"), (2, "pstn", "audio", None)]
        assert state_of(agent) == "in call"  # the agent's call was never cut
        after = case_bridge(daemon_env, video_hop["case_id"])
        assert set(after["channels"]) == {agent_channel, hops[1]["channel_id"]}  # type: ignore[arg-type]
        [switch] = rows(db, "SELECT from_hop_id, to_hop_id, requested_by FROM switches")
        assert (switch["from_hop_id"], switch["to_hop_id"]) == (video_hop["id"], hops[1]["id"])
        assert switch["requested_by"].startswith("agent:w1-")

        agent.click("#hangup")
        out, _ = phone.communicate(timeout=30)
        assert phone.returncode == 0, out  # answered, then Asterisk's BYE when the talk ended
        poll(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2, "both hops closed")
        events = [e["event"] for e in rows(db, "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id",
                                           video_hop["id"])]
        assert events == ["join", "ring", "answer", "complete"]  # one talk across both legs
        invite = next(b for b in messages.read_text().split("\n\n") if "INVITE sip:" in b)
        assert f"INVITE sip:{CUSTOMER}@{CARRIER_ADDRESS}:5060" in invite and "m=video" not in invite
    finally:
        if phone.poll() is None:
            phone.kill()
        phone.communicate()


@DESK
def test_the_customer_page_continues_by_phone_and_the_agent_stays_in_the_bridge(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    agent = agent_page(pw, write_y4m(tmp_path / "blue.y4m", BLUE), daemon_env, lab,
                       webrtc_agent(daemon_env, tmp_path, "vq"))
    customer = open_page(launch(pw, write_y4m(tmp_path / "red.y4m", RED)),
                         f"{web_url(daemon_env)}/call/video-desk")
    customer.click("#call")
    answer(agent)
    sees(customer, BLUE, "the customer")
    [video_hop] = rows(db, "SELECT * FROM hops")

    customer.fill("#phone-number", "+7 495 765-43-21")  # outside the trunk's prefixes: never dialled
    customer.click("#to-phone")
    poll(lambda: customer.evaluate("window.hotlinePhone.lastError"), "the customer page's refusal")
    assert "cannot be called" in str(customer.evaluate("window.hotlinePhone.lastError"))

    phone, messages = customers_phone(tmp_path)
    try:
        customer.fill("#phone-number", "8 916 123-45-67")
        customer.click("#to-phone")
        said = poll(lambda: customer.evaluate("window.hotlinePhone.phoneMessage"), "the page's answer")
        assert said.startswith(f"Calling {CUSTOMER}")
        poll(lambda: state_of(customer) == "ended", "the customer's page hung up once the phone answered", 30)
        hops = poll(lambda: (found := rows(db, "SELECT * FROM hops WHERE case_id = %s ORDER BY seq",
                                           video_hop["case_id"])) and found[0]["ended_at"] and found,
                    "the video hop closed")
        assert [(h["seq"], h["channel_kind"], h["end_reason"]) for h in hops] == [
            (1, "webrtc", "switched"), (2, "pstn", None)]
        assert state_of(agent) == "in call"  # the agent's call was never cut
        [switch] = rows(db, "SELECT requested_by, to_hop_id FROM switches")
        assert switch == {"requested_by": "customer", "to_hop_id": hops[1]["id"]}
        agent.click("#hangup")
        out, _ = phone.communicate(timeout=30)
        assert phone.returncode == 0, out
        invite = next(b for b in messages.read_text().split("\n\n") if "INVITE sip:" in b)
        assert f"INVITE sip:{CUSTOMER}@{CARRIER_ADDRESS}:5060" in invite
    finally:
        if phone.poll() is None:
            phone.kill()
        phone.communicate()
