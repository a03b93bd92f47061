"""The browser call as a customer meets it, through the real lab: a voice call from the customer
page (microphone only), with Debian's Chromium on both sides (the agent on the agent page)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import logged_in_agents, registered
from support.browser import launch, open_page, playwright_session
from support.checks import rows
from support.cli import hotline_cli
from support.customer_page import laid_out, stage, unexplained_texts
from support.daemon import DaemonProcess, ari_get
from support.fake_camera import BLUE, RED, write_y4m
from support.provisioning import BASE
from support.web_calls import (
    agent_page,
    answer,
    bridge_exists,
    case_bridge,
    flowing,
    poll,
    rtp_counts,
    sees,
    state_of,
    video_bridge,
    web_url,
    webrtc_agent,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

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
def daemon_env(daemon_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    """The daemon's settings, with the test's `@pytest.mark.rejoin_grace(SECONDS)` if it has one."""
    marker = request.node.get_closest_marker("rejoin_grace")
    return {**daemon_env, "HOTLINE_WEB_REJOIN_GRACE": str(marker.args[0])} if marker else daemon_env


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


@WEB_DESK
@pytest.mark.serial  # three Chromiums' video and a bridge move: froze and lagged beside the other lab
def test_a_voice_caller_turns_the_camera_on_and_off_and_the_agent_is_never_cut(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "wq"))
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/web-desk")
    customer.click("#call-voice")
    answer(agent)
    poll(lambda: state_of(customer) == "in call", "the customer page in the call")
    [hop] = rows(db, "SELECT * FROM hops")
    channels = set(case_bridge(daemon_env, hop["case_id"])["channels"])  # type: ignore[arg-type]
    assert hop["media"] == "audio" and case_bridge(daemon_env, hop["case_id"])["video_mode"] != "sfu"
    assert camera_on(customer) is False

    customer.click("#camera")
    poll(lambda: rows(db, "SELECT media FROM hops")[0]["media"] == "video", "the hop's media: video")
    # Both channels moved at once into the case's SFU bridge; the plain one is gone.
    def moved() -> dict[str, object] | None:
        b = video_bridge(daemon_env, hop["case_id"])
        return b if b is not None and set(b["channels"]) == channels else None  # type: ignore[arg-type]
    bridge = poll(moved, "the talk in the case's SFU bridge")
    assert bridge["video_mode"] == "sfu" and bridge["bridge_type"] == "mixing", bridge
    # the plain one let go once everyone is in the SFU one (a moment after: poll)
    poll(lambda: not bridge_exists(daemon_env, f"case-{hop['case_id']}"), "the plain bridge destroyed")
    sees(agent, RED, "the agent")
    sees(customer, BLUE, "the customer")
    assert camera_on(customer) is True
    assert state_of(agent) == "in call" and state_of(customer) == "in call"  # one call each, never cut

    customer.click("#camera")
    poll(lambda: rows(db, "SELECT media FROM hops")[0]["media"] == "audio", "the hop's media: audio again")
    poll(lambda: not flowing(customer, "videoOut"), "the customer's picture stopped")
    # the camera itself is released (its light goes off)
    assert customer.evaluate("window.hotlinePhone.localStream.getVideoTracks().length") == 0
    assert flowing(customer, "audioIn") and flowing(agent, "audioIn")  # the talk goes on
    bridge = video_bridge(daemon_env, hop["case_id"])  # off: the talk stays where it is
    assert bridge is not None and set(bridge["channels"]) == channels  # type: ignore[arg-type]
    assert camera_on(customer) is False

    shown = hotline_cli(daemon_env, "case", "show", str(hop["case_id"])).stdout
    assert "camera turned on: video" in shown and "camera turned off: audio only" in shown, shown
    customer.click("#hangup")
    poll(lambda: rows(db, "SELECT end_reason FROM hops WHERE ended_at IS NOT NULL"), "the hop closed")
    assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": "completed"}]
    assert [r["media"] for r in rows(db, "SELECT media FROM media_changes ORDER BY id")] == ["video", "audio"]


def camera_on(page: Page) -> bool:
    """What the Camera button says to a screen reader: pressed while the camera is on."""
    assert page.inner_text("#camera") == "Camera"
    return page.get_attribute("#camera", "aria-pressed") == "true"


def phone_page(pw: Playwright, camera: Path, url: str) -> Page:
    """The customer page in Chromium emulating a phone in portrait (Playwright's Pixel 5: 393x727
    CSS pixels, touch, a mobile user agent), camera and microphone granted."""
    browser = launch(pw, camera)
    context = browser.new_context(**pw.devices["Pixel 5"], permissions=["camera", "microphone"])
    page = context.new_page()
    page.goto(url)
    return page


def fits_the_screen(page: Page, selector: str) -> bool:
    """The element lies inside the screen's width, and a button is finger-sized (44 CSS px)."""
    box = page.locator(selector).bounding_box()
    width = int(page.evaluate("window.innerWidth"))
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width and (
        not selector.startswith("#call") or box["height"] >= 44)


@WEB_DESK
def test_a_customer_on_a_phone_in_portrait_calls_by_video_with_a_tap(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent_id = webrtc_agent(daemon_env, tmp_path, "wq")  # no display name: their name is shown
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, agent_id)
    customer = phone_page(pw, cameras["customer"], f"{web_url(daemon_env)}/call/web-desk")
    assert customer.evaluate("navigator.maxTouchPoints") > 0
    assert "Mobile" in customer.evaluate("navigator.userAgent")
    size = customer.evaluate("[window.innerWidth, window.innerHeight]")
    assert size[0] < size[1] <= 800  # portrait, a phone's screen
    for selector in ("h1", "#name", "#call", "#call-voice"):
        assert fits_the_screen(customer, selector), selector
    poll(lambda: customer.inner_text("#device-message") == "Your camera and microphone work: you can call.",
         "the device check done")
    assert unexplained_texts(customer, "en") == []  # English: the browser's language
    laid_out(customer, tmp_path / "phone-ready.png", ("h1", "#stage", "#call", "#call-voice"))
    customer.tap("#call")
    answer(agent)
    poll(lambda: state_of(customer) == "in call", "the customer page in the call")
    sees(customer, BLUE, "the customer")
    sees(agent, RED, "the agent")
    poll(lambda: stage(customer) == (f"You are talking with {agent_id.name}", ""), "the agent named")
    assert unexplained_texts(customer, "en") == []
    laid_out(customer, tmp_path / "phone-talking.png", ("#stage", "#mute", "#camera", "#hangup"))
    # No sideways scrolling; the agent's picture across the screen, above the fold.
    assert customer.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    remote = customer.evaluate("""() => { const v = window.__hotlinePickRemote().getBoundingClientRect();
        return [v.left, v.right, v.top, v.width]; }""")
    left, right, top, width = remote
    assert left >= 0 and right <= size[0] and width >= 0.9 * size[0] and top < size[1], remote
    for selector in ("#hangup", "#camera"):
        assert fits_the_screen(customer, selector), selector

    [hop] = rows(db, "SELECT * FROM hops")
    assert (hop["channel_kind"], hop["media"]) == ("webrtc", "video")
    assert case_bridge(daemon_env, hop["case_id"])["video_mode"] == "sfu"
    customer.tap("#hangup")
    poll(lambda: rows(db, "SELECT end_reason FROM hops WHERE ended_at IS NOT NULL"), "the hop closed")
    assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": "completed"}]
    poll(lambda: stage(customer) == ("The call has ended", ""), "the page's last stage")
    laid_out(customer, tmp_path / "phone-ended.png", (".score[data-score='1']", ".score[data-score='5']",
                                                      "#rating-send", "#call-again", "#leave"))


@WEB_DESK
def test_a_video_caller_turns_the_camera_off_and_on_again_in_the_same_sfu_bridge(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "wq"))
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/web-desk")
    customer.click("#call")
    answer(agent)
    sees(agent, RED, "the agent")
    [hop] = rows(db, "SELECT * FROM hops")
    before = case_bridge(daemon_env, hop["case_id"])
    assert hop["media"] == "video" and before["video_mode"] == "sfu"
    assert camera_on(customer) is True

    customer.click("#camera")
    poll(lambda: rows(db, "SELECT media FROM hops")[0]["media"] == "audio", "the hop's media: audio")
    poll(lambda: not flowing(customer, "videoOut"), "the customer's picture stopped")
    assert flowing(agent, "audioIn") and state_of(agent) == "in call"

    customer.click("#camera")
    poll(lambda: rows(db, "SELECT media FROM hops")[0]["media"] == "video", "the hop's media: video again")
    poll(lambda: flowing(customer, "videoOut"), "the customer's picture going out again")
    sees(agent, RED, "the agent, again")
    after = case_bridge(daemon_env, hop["case_id"])  # an SFU bridge from the start: nothing moved
    assert after["id"] == before["id"] and set(after["channels"]) == set(before["channels"])  # type: ignore[arg-type]
    assert video_bridge(daemon_env, hop["case_id"]) is None
    assert [r["media"] for r in rows(db, "SELECT media FROM media_changes ORDER BY id")] == ["audio", "video"]
    customer.click("#hangup")
    poll(lambda: rows(db, "SELECT end_reason FROM hops WHERE ended_at IS NOT NULL"), "the hop closed")


def notice_of(page: Page) -> str | None:
    """The notice the agent page shows about its call, or None (read from the page, as the agent
    sees it: the element's text when it is visible)."""
    return page.inner_text("#notice") if page.is_visible("#notice") else None


@WEB_DESK
def test_a_customer_whose_page_reloads_comes_back_to_the_same_agent_in_the_same_case(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "wq"))
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/web-desk")
    customer.click("#call")
    answer(agent)
    sees(agent, RED, "the agent")
    [first] = rows(db, "SELECT * FROM hops")
    bridge = case_bridge(daemon_env, first["case_id"])
    [agent_channel] = [c for c in bridge["channels"] if c != first["channel_id"]]  # type: ignore[attr-defined]

    customer.reload()  # the tab reloaded: its leg goes (JsSIP's BYE as the page unloads), unasked
    notice = poll(lambda: notice_of(agent), "the agent page's notice")
    assert "connection dropped" in notice and "60 s" in notice, notice
    assert state_of(agent) == "in call"
    assert case_bridge(daemon_env, first["case_id"])["channels"] == [agent_channel]  # the agent waits there

    customer.click("#call")  # the same page (the same browser's customer id) calls again
    poll(lambda: state_of(customer) == "in call", "the customer back in the call")
    sees(agent, RED, "the agent, after the customer came back")
    sees(customer, BLUE, "the customer, back")
    poll(lambda: notice_of(agent) is None, "the notice gone")
    assert state_of(agent) == "in call"  # the agent's own call was never cut
    def both_legs() -> list[dict[str, object]] | None:
        found = rows(db, "SELECT * FROM hops ORDER BY id")
        return found if len(found) == 2 and found[0]["ended_at"] is not None else None
    hops = poll(both_legs, "the first leg closed and the second open")
    assert [(h["case_id"], h["seq"], h["channel_kind"]) for h in hops] == [
        (first["case_id"], 1, "webrtc"), (first["case_id"], 2, "webrtc")]
    assert hops[0]["end_reason"] == "switched" and hops[1]["agent_id"] == first["agent_id"]
    assert set(case_bridge(daemon_env, first["case_id"])["channels"]) == {  # type: ignore[arg-type]
        agent_channel, hops[1]["channel_id"]}

    customer.click("#hangup")  # the button: the end of the talk, no waiting
    poll(lambda: state_of(agent) == "ended", "the agent's call ended with the customer's", 5)
    poll(lambda: rows(db, "SELECT id FROM hops WHERE id = %s AND ended_at IS NOT NULL", hops[1]["id"]),
         "the second hop closed")
    assert rows(db, "SELECT end_reason FROM hops ORDER BY id") == [
        {"end_reason": "switched"}, {"end_reason": "completed"}]
    events = [e["event"] for e in rows(db, "SELECT event FROM queue_events WHERE case_id = %s ORDER BY id",
                                       first["case_id"])]
    assert events == ["join", "ring", "answer", "complete"]  # one talk across both legs


@WEB_DESK
@pytest.mark.rejoin_grace(3)
def test_a_customer_who_does_not_come_back_within_the_grace_period_ends_the_talk_as_a_hang_up(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path], pw: Playwright) -> None:
    agent = agent_page(pw, cameras["agent"], daemon_env, lab, webrtc_agent(daemon_env, tmp_path, "wq"))
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/web-desk")
    customer.click("#call-voice")
    answer(agent)
    poll(lambda: state_of(customer) == "in call", "the customer page in the call")
    customer.context.close()  # the tab closed
    poll(lambda: notice_of(agent), "the agent page's notice")
    assert state_of(agent) == "in call"
    poll(lambda: state_of(agent) == "ended", "the agent's call ended after the grace period", 10)
    [hop] = poll(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), "the hop closed")
    assert hop["end_reason"] == "completed"
    [complete] = rows(db, "SELECT talk_ms FROM queue_events WHERE event = 'complete'")
    assert complete["talk_ms"] >= 3000  # the grace is part of the talk the agent gave


def sip_received(messages: Path, method: str) -> int:
    """How many requests `method` a sipp phone received so far (its -trace_msg file)."""
    text = messages.read_text(errors="replace") if messages.exists() else ""
    return sum(1 for block in text.split("----------------------------------------------- ")
               if "received" in block and re.search(f"^{method} sip:", block, re.M))


@pytest.fixture
def sipp_agent(daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab,
               tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The queue's agent on a sipp phone (its SIP goes to Asterisk, not through the daemon's
    relay, so a daemon killed cuts nothing of its own), and the file of the SIP it received."""
    [agent] = logged_in_agents(daemon_env, tmp_path, "w", {"wq": 0})
    messages = tmp_path / "agent-phone.log"
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=300, timeout_s=120, messages=messages)
    poll(lambda: registered(lab, agent.name), "the agent's phone registered")
    yield phone, messages
    if phone.poll() is None:
        phone.kill()
        phone.communicate()


def dropped_then_daemon_killed(daemon: DaemonProcess, env: dict[str, str], db: psycopg.Connection,
                               customer: Page, kill_after_s: float = 0) -> tuple[dict[str, object], str]:
    """The customer's page in a voice talk; its tab reloads (the leg drops unasked, the agent
    waits), then, `kill_after_s` later, the daemon is SIGKILLed and started again. The first hop
    (with `dropped_at`, the database's clock just before the reload) and the agent's leg."""
    customer.click("#call-voice")
    poll(lambda: state_of(customer) == "in call", "the customer page in the call")
    # the answer is written behind the talk: read the hop once it names the agent
    [first] = poll(lambda: rows(db, "SELECT * FROM hops WHERE agent_id IS NOT NULL"), "the answer written")
    bridge = case_bridge(env, first["case_id"])
    [agent_channel] = [c for c in bridge["channels"] if c != first["channel_id"]]  # type: ignore[attr-defined]
    first["dropped_at"] = rows(db, "SELECT now() AS at")[0]["at"]
    customer.reload()
    poll(lambda: case_bridge(env, first["case_id"])["channels"] == [agent_channel],
         "the agent alone, waiting")
    note = f"channels/{agent_channel}/variable?variable=HOTLINE_REJOIN"
    poll(lambda: str(first["channel_id"]) in ari_get(env, note)[1].decode(),
         "the drop noted on the agent's leg")
    time.sleep(kill_after_s)
    daemon.stop(signal.SIGKILL)
    daemon.start()
    poll(lambda: "more for the customer's page after a restart" in daemon.log() or None,
         "the wait taken over by the new daemon")
    return first, str(agent_channel)


@WEB_DESK
def test_a_customer_whose_leg_dropped_just_before_a_daemon_sigkill_still_comes_back_to_the_agent(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path],
        sipp_agent: tuple[subprocess.Popen[str], Path], pw: Playwright) -> None:
    phone, messages = sipp_agent
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/web-desk")
    first, agent_channel = dropped_then_daemon_killed(daemon, daemon_env, db, customer)
    assert case_bridge(daemon_env, first["case_id"])["channels"] == [agent_channel]
    assert phone.poll() is None and sip_received(messages, "BYE") == 0  # the agent never cut

    customer.click("#call-voice")  # the same page (the same browser's customer id) calls again
    poll(lambda: state_of(customer) == "in call", "the customer back in the call")
    def both_legs() -> list[dict[str, object]] | None:
        found = rows(db, "SELECT * FROM hops ORDER BY id")
        return found if len(found) == 2 and found[0]["ended_at"] is not None else None
    hops = poll(both_legs, "the first leg closed and the second open")
    assert [(h["case_id"], h["seq"]) for h in hops] == [(first["case_id"], 1), (first["case_id"], 2)]
    assert hops[0]["end_reason"] == "switched" and hops[1]["agent_id"] == first["agent_id"]
    assert set(case_bridge(daemon_env, first["case_id"])["channels"]) == {  # type: ignore[arg-type]
        agent_channel, hops[1]["channel_id"]}
    assert flowing(customer, "audioOut")
    assert sip_received(messages, "INVITE") == 1 and sip_received(messages, "BYE") == 0  # the same call

    customer.click("#hangup")  # the button: the end of the talk, no waiting
    poll(lambda: rows(db, "SELECT 1 FROM hops WHERE id = %s AND ended_at IS NOT NULL", hops[1]["id"]),
         "the second hop closed")
    assert sipp.finish(phone).ok and sip_received(messages, "BYE") == 1  # the BYE came now
    assert rows(db, "SELECT end_reason FROM hops ORDER BY id") == [
        {"end_reason": "switched"}, {"end_reason": "completed"}]
    events = rows(db, "SELECT event FROM queue_events WHERE case_id = %s ORDER BY id", first["case_id"])
    assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"]  # one talk across both legs


@WEB_DESK
@pytest.mark.rejoin_grace(10)
def test_a_customer_who_does_not_come_back_after_a_daemon_sigkill_ends_the_talk_when_the_grace_ends(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, cameras: dict[str, Path],
        sipp_agent: tuple[subprocess.Popen[str], Path], pw: Playwright) -> None:
    phone, messages = sipp_agent
    customer = open_page(launch(pw, cameras["customer"]), f"{web_url(daemon_env)}/call/web-desk")
    first, agent_channel = dropped_then_daemon_killed(daemon, daemon_env, db, customer, kill_after_s=3)
    restarted = rows(db, "SELECT now() - %s AS took", first["dropped_at"])[0]["took"].total_seconds()
    assert phone.poll() is None and sip_received(messages, "BYE") == 0
    assert sipp.finish(phone).ok and sip_received(messages, "BYE") == 1  # hung up when the grace ended
    [hop] = poll(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), "the hop closed")
    assert hop["end_reason"] == "completed"
    # the grace counts from the drop, not from the restart (3 s and more after it)
    over = (hop["ended_at"] - first["dropped_at"]).total_seconds()
    assert restarted > 3 and 10 <= over < 12, (over, restarted)
    [complete] = rows(db, "SELECT talk_ms, detail FROM queue_events WHERE event = 'complete'")
    assert complete["talk_ms"] >= 10_000 and complete["detail"] == "caller hung up"
    poll(lambda: not bridge_exists(daemon_env, f"case-{first['case_id']}"), "the case's bridge destroyed")
