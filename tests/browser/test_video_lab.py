"""WebRTC video through the real lab: Debian's Chromium runs the daemon's pages (JsSIP over
Asterisk's SIP WebSocket), the daemon routes the calls over ARI into the case's SFU bridge.

Each browser has a camera of its own colour; a test samples the *remote* video's pixels and checks
that its frames keep advancing, so "the call connected" is never taken for "the other party is
seen"."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents
from support.browser import (
    launch,
    open_page,
    playwright_session,
    shows_all,
)
from support.checks import rows
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.fake_camera import BLUE, GREEN, RED, write_y4m
from support.provisioning import BASE
from support.web_calls import (
    WEBRTC_AGENT,
    agent_page,
    answer,
    case_bridge,
    poll,
    sees,
    state_of,
    web_url,
    webrtc_agent,
    ws_url_of,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

T = TypeVar("T")

VIDEO_DESK = pytest.mark.provision(BASE + """
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
""")
PHONE_NUMBER = "84950002299"


@pytest.fixture
def pw() -> Iterator[Playwright]:
    """Last in every test's arguments: its event loop must not run while fixtures before it still
    use asyncio.run (provisioning the test's database)."""
    with playwright_session() as session:
        yield session


@pytest.fixture
def cameras(tmp_path: Path) -> dict[str, Path]:
    return {"customer": write_y4m(tmp_path / "red.y4m", RED), "agent": write_y4m(tmp_path / "blue.y4m", BLUE),
            "supervisor": write_y4m(tmp_path / "green.y4m", GREEN)}


def phone_call_answered_by(agent: Page, db: psycopg.Connection
                           ) -> tuple[subprocess.Popen[str], dict[str, object]]:
    """A sipp phone call to the desk, answered on the agent page: (the caller, its hop). The caller
    stays until Asterisk hangs it up (the switch must do that, not the test)."""
    phone = sipp.start_call(PHONE_NUMBER, "caller_until_bye.xml", caller="+79161234567", timeout_s=60)
    answer(agent)
    hop = poll(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
               "the phone call answered")
    return phone, hop


@VIDEO_DESK
def test_a_customer_page_calls_a_video_hotline_and_a_webrtc_agent_and_each_sees_the_other(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "vq"))
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/video-desk")
    customer.click("#call")
    answer(agent)
    poll(lambda: state_of(customer) == "in call", "the customer page in the call")
    sees(customer, BLUE, "the customer")
    sees(agent, RED, "the agent")
    relay = f"ws://{daemon_env['HOTLINE_WEB_LISTEN']}/ws"  # the daemon's web port, not Asterisk's
    assert [ws_url_of(page) for page in (customer, agent)] == [relay, relay]

    [hop] = rows(db, "SELECT * FROM hops")
    assert (hop["channel_kind"], hop["media"], hop["dialled"]) == ("webrtc", "video", "video-desk")
    assert case_bridge(daemon_env, hop["case_id"])["video_mode"] == "sfu"
    [case] = rows(db, "SELECT customer_key FROM cases")
    assert re.fullmatch(r"web:[0-9a-f]{16}", case["customer_key"])  # the browser's own id, not the endpoint

    # The agent asks for a switch link from the page: the daemon checks the agent's SIP password
    # and finds the agent's live call itself.
    agent.click("#switch")
    link = poll(lambda: agent.evaluate("window.hotlinePhone.switchLink"), "the agent page's switch link")
    assert re.fullmatch(re.escape(web_url(daemon_env)) + r"/switch/[0-9a-f]{64}", link), link
    [issued] = rows(db, "SELECT from_hop_id, requested_by, used_at FROM switches")
    assert (issued["from_hop_id"], issued["used_at"]) == (hop["id"], None)
    assert issued["requested_by"].startswith("agent:w1-")

    customer.click("#hangup")
    poll(lambda: rows(db, "SELECT end_reason FROM hops WHERE ended_at IS NOT NULL"), "the hop closed")
    assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": "completed"}]
    poll(lambda: state_of(agent) == "ended", "the agent's call ended with the customer's")


@VIDEO_DESK
def test_a_phone_caller_moves_to_video_and_the_agent_never_loses_them(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "vq"))
    phone, phone_hop = phone_call_answered_by(agent, db)
    before = case_bridge(daemon_env, phone_hop["case_id"])
    agent_channel = next(c for c in before["channels"] if c != phone_hop["channel_id"])  # type: ignore[attr-defined]

    switch = hotline_cli(daemon_env, "case", "switch", str(phone_hop["case_id"]))
    assert switch.returncode == 0, switch.stderr
    link = switch.stdout.strip()
    assert link.startswith(f"{web_url(daemon_env)}/switch/")

    customer = open_page(launch(pw, cameras["customer"]), link)
    customer.click("#call")
    poll(lambda: state_of(customer) == "in call", "the customer's video leg in the call")
    run = sipp.finish(phone, timeout_s=20)
    assert run.ok, run.output[-3000:]  # the phone leg got its BYE
    sees(agent, RED, "the agent")
    sees(customer, BLUE, "the customer")
    assert state_of(agent) == "in call"  # the agent's own call was never cut

    hops = poll(lambda: rows(db, "SELECT * FROM hops WHERE case_id = %s ORDER BY seq", phone_hop["case_id"]),
                "the case's hops")
    assert [(h["seq"], h["channel_kind"], h["media"]) for h in hops] == [
        (1, "pstn", "audio"), (2, "webrtc", "video")]
    poll(lambda: rows(db, "SELECT id FROM hops WHERE id = %s AND ended_at IS NOT NULL", phone_hop["id"]),
         "the phone hop closed")
    after = case_bridge(daemon_env, phone_hop["case_id"])
    assert set(after["channels"]) == {agent_channel, hops[1]["channel_id"]}  # type: ignore[arg-type]
    video_hop = rows(db, "SELECT agent_id, answered_at FROM hops WHERE id = %s", hops[1]["id"])[0]
    assert video_hop["agent_id"] == phone_hop["agent_id"] and video_hop["answered_at"] is not None
    [switched] = rows(db, "SELECT * FROM switches")
    assert (switched["from_hop_id"], switched["to_hop_id"], switched["requested_by"]) == (
        phone_hop["id"], hops[1]["id"], "cli")

    customer.click("#hangup")
    poll(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2, "both hops closed")
    ends = rows(db, "SELECT end_reason FROM hops WHERE case_id = %s ORDER BY seq", phone_hop["case_id"])
    assert [e["end_reason"] for e in ends] == ["switched", "completed"]
    events = [e["event"] for e in rows(db, "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id",
                                       phone_hop["id"])]
    assert events == ["join", "ring", "answer", "complete"]  # one visit, one talk across both legs
    shown = hotline_cli(daemon_env, "case", "show", str(phone_hop["case_id"]))
    assert "switch link used: this leg joined, replacing hop 1" in shown.stdout, shown.stdout
    assert "ended switched" in shown.stdout

    reused = open_page(customer.context.browser, link)  # type: ignore[arg-type]
    assert "already been used" in reused.inner_text("body")
    assert reused.evaluate("document.getElementById('config')") is None
    assert switch_call_by_hand(customer, link.rsplit("/", 1)[1]).startswith("failed")
    assert len(rows(db, "SELECT id FROM hops")) == 2  # the used token opened nothing more


def switch_call_by_hand(page: Page, token: str) -> str:
    """What a browser gets when it calls the switch extension itself with `token` (not through a
    switch page): "joined", or "failed: CAUSE"."""
    page.evaluate("""(token) => { const h = window.hotlinePhone; h.byHand = 'calling';
        const config = JSON.parse(document.getElementById('config').textContent);
        const ua = new JsSIP.UA({sockets: [new JsSIP.WebSocketInterface(config.wsUrl)],
            uri: `sip:${config.endpoint}@${config.domain}`, register: false, session_timers: false});
        ua.on('connected', () => { const s = ua.call(`sip:switch@${config.domain}`, {
            extraHeaders: ['X-Hotline-Switch: ' + token],
            mediaConstraints: {audio: true, video: true}, pcConfig: {iceServers: []}});
          s.on('failed', (e) => { h.byHand = 'failed: ' + e.cause; });
          s.on('confirmed', () => { h.byHand = 'joined'; }); });
        ua.start(); }""", token)
    def outcome() -> str | None:
        state = str(page.evaluate("window.hotlinePhone.byHand"))
        return None if state == "calling" else state
    return poll(outcome, "the switch call by hand answered")


def expired_switch(db: psycopg.Connection, token: str) -> None:
    """A phone leg of a case, live, with a switch link issued for it an hour ago that expired."""
    case = db.execute("INSERT INTO cases (customer_key) VALUES ('+79160000001') RETURNING id").fetchone()[0]
    hop = db.execute("INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled, answered_at)"
                     " VALUES (%s, 1, 'elsewhere', 'gone', 'pstn', '84950002299', now()) RETURNING id",
                     (case,)).fetchone()[0]
    db.execute("INSERT INTO switches (case_id, from_hop_id, token_sha256, requested_by, issued_at,"
               " expires_at) VALUES (%s, %s, sha256(%s::bytea), 'cli', now() - interval '1 hour',"
               " now() - interval '1 s')", (case, hop, token.encode()))


@VIDEO_DESK
def test_forged_and_expired_links_are_refused_and_nothing_joins(
        daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection,
        cameras: dict[str, Path], pw: Playwright) -> None:
    browser = launch(pw, cameras["customer"])
    forged, expired = "ab" * 32, "cd" * 32
    expired_switch(db, expired)
    for token, status, says in ((forged, 404, "not valid"), (expired, 410, "expired")):
        page = open_page(browser, f"{web_url(daemon_env)}/switch/{token}")
        assert page.evaluate("document.title") and says in page.inner_text("body")
        assert page.evaluate("document.getElementById('config')") is None  # no SIP settings given out
        assert page.request.get(f"{web_url(daemon_env)}/switch/{token}").status == status
    # A browser calling the switch extension itself, past the pages, is refused by the engine too.
    page = open_page(browser, f"{web_url(daemon_env)}/call/video-desk")
    for token in (forged, expired, ""):
        outcome = switch_call_by_hand(page, token)
        assert outcome.startswith("failed"), outcome
    assert [h["channel_id"] for h in rows(db, "SELECT channel_id FROM hops")] == ["gone"]  # nothing joined


@VIDEO_DESK
def test_an_agent_brings_a_supervisor_into_the_video_call_and_all_three_see_each_other(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    first, second = logged_in_agents(daemon_env, tmp_path, "w", {"vq": 0}, {},
                                     capabilities=[WEBRTC_AGENT] * 2)
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, first)
    supervisor = agent_page(pw, cameras["supervisor"], daemon_env, lab, second)
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/video-desk")
    customer.click("#call")
    answer(agent)
    sees(customer, BLUE, "the customer")

    agent.fill("#invite-agent", second.name)
    agent.click("#invite")
    poll(lambda: agent.evaluate("window.hotlinePhone.inviteMessage"), "the invitation under way")
    answer(supervisor)
    for page, others, who in ((customer, [BLUE, GREEN], "the customer"), (agent, [RED, GREEN], "the agent"),
                              (supervisor, [RED, BLUE], "the supervisor")):
        poll(lambda page=page, others=others: shows_all(page, others), f"{who} seeing both others", 25)
    [case] = rows(db, "SELECT id FROM cases")
    [joined] = rows(db, "SELECT p.invited_by, a.name, p.left_at FROM case_participants p"
                        " JOIN agents a ON a.id = p.agent_id")
    assert (joined["invited_by"], joined["name"], joined["left_at"]) == (
        f"agent:{first.name}", second.name, None)
    assert len(case_bridge(daemon_env, case["id"])["channels"]) == 3  # type: ignore[arg-type]

    customer.click("#hangup")  # the talk is the customer's: its end releases everyone it brought in
    poll(lambda: state_of(supervisor) == "ended", "the supervisor released with the talk")
    poll(lambda: rows(db, "SELECT left_at FROM case_participants WHERE left_at IS NOT NULL"),
         "the supervisor's leaving recorded")
    shown = hotline_cli(daemon_env, "case", "show", str(case["id"]))
    assert f"{second.name} joined, invited by agent:{first.name}" in shown.stdout, shown.stdout
    assert f"{second.name} left" in shown.stdout


@VIDEO_DESK
def test_a_link_opened_after_the_phone_call_ended_still_continues_the_case_through_the_hotline(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "vq"))
    phone, phone_hop = phone_call_answered_by(agent, db)
    switch = hotline_cli(daemon_env, "case", "switch", str(phone_hop["case_id"]))
    assert switch.returncode == 0, switch.stderr
    lab.asterisk_cli(f"channel request hangup {phone_hop['channel_id']}")  # the line drops first
    assert sipp.finish(phone).ok
    poll(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), "the phone hop closed")
    poll(lambda: state_of(agent) == "ended", "the agent's call ended")

    customer = open_page(launch(pw, cameras["customer"]), switch.stdout.strip())
    customer.click("#call")
    answer(agent)  # no talk to join: the video leg went where the phone leg went, to the same queue
    sees(customer, BLUE, "the customer")
    sees(agent, RED, "the agent")
    hops = rows(db, "SELECT seq, channel_kind, media, end_reason, agent_id FROM hops WHERE case_id = %s"
                    " ORDER BY seq", phone_hop["case_id"])
    assert [(h["seq"], h["channel_kind"], h["media"]) for h in hops] == [
        (1, "pstn", "audio"), (2, "webrtc", "video")]
    assert hops[0]["end_reason"] == "completed" and hops[1]["agent_id"] == phone_hop["agent_id"]
    customer.click("#hangup")
    poll(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2, "both hops closed")
