"""Browser calls through the lab for the web-call tests (tests/browser/test_web_call_lab.py):
an agent page logged in and registered, a page's state, the case's bridge as ARI shows it, and
what media a page's RTCPeerConnection carries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from hotline.lab import Lab

from support.agents import Agent, logged_in_agents, registered
from support.browser import close_to, frames_advancing, launch, open_page, remote_colour
from support.checks import wait_until
from support.daemon import ari_get
from support.fake_camera import RGB

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

WEBRTC_AGENT = ("audio", "video", "webrtc")
T = TypeVar("T")

# What the page's RTCPeerConnection has received and sent so far, per kind of media.
_RTP_COUNTS = """
async () => {
  const counts = { audioIn: 0, videoIn: 0, audioOut: 0, videoOut: 0 };
  const pc = window.hotlinePhone.pc;
  if (!pc) return counts;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") counts[s.kind + "In"] += s.packetsReceived || 0;
    if (s.type === "outbound-rtp") counts[s.kind + "Out"] += s.packetsSent || 0;
  });
  return counts;
}
"""


def web_url(env: dict[str, str]) -> str:
    return f"http://{env['HOTLINE_WEB_LISTEN']}"


def poll(check: Callable[[], T], what: str, timeout_s: float = 15) -> T:
    return wait_until(check, timeout_s=timeout_s, what=what)


def state_of(page: Page) -> str:
    return str(page.evaluate("window.hotlinePhone.state"))


def webrtc_agent(daemon_env: dict[str, str], tmp_path: Path, queue: str) -> Agent:
    [agent] = logged_in_agents(daemon_env, tmp_path, "w", {queue: 0}, capabilities=[WEBRTC_AGENT])
    return agent


def agent_page(pw: Playwright, camera: Path, env: dict[str, str], lab: Lab, agent: Agent, *,
               locale: str | None = None) -> Page:
    page = open_page(launch(pw, camera), f"{web_url(env)}/agent", locale=locale)
    page.fill("#endpoint", agent.name)
    page.fill("#password", agent.password)
    page.click("#login")
    poll(lambda: state_of(page) == "registered", "the agent page registered")
    poll(lambda: registered(lab, agent.name), "Asterisk has the agent's browser as a contact")
    return page


def ws_url_of(page: Page) -> str:
    """The SIP WebSocket the page's JsSIP connected to."""
    return str(page.evaluate("window.hotlinePhone.ua.transport.socket.url"))


def answer(page: Page) -> None:
    page.wait_for_selector("#answer:not([disabled])", state="visible", timeout=20_000)
    page.click("#answer")
    poll(lambda: state_of(page) == "in call", "the agent page in the call")


def case_bridge(env: dict[str, str], case_id: int) -> dict[str, object]:
    status, body = ari_get(env, f"bridges/case-{case_id}")
    assert status == 200, body
    return dict(json.loads(body))


def video_bridge(env: dict[str, str], case_id: int) -> dict[str, object] | None:
    """The SFU bridge a case's talk moved to when the customer's camera came on, or None."""
    status, body = ari_get(env, f"bridges/case-{case_id}-video")
    return dict(json.loads(body)) if status == 200 else None


def bridge_exists(env: dict[str, str], bridge_id: str) -> bool:
    return ari_get(env, f"bridges/{bridge_id}")[0] == 200


def rtp_counts(page: Page) -> dict[str, int]:
    """Packets in and out of the page's call so far: audioIn, videoIn, audioOut, videoOut."""
    counts: dict[str, int] = page.evaluate(_RTP_COUNTS)
    return counts


def flowing(page: Page, key: str, seconds: float = 1.0) -> bool:
    """Whether rtp_counts(page)[key] grows over `seconds`."""
    before = rtp_counts(page)[key]
    page.wait_for_timeout(seconds * 1000)
    return rtp_counts(page)[key] > before


def sees(page: Page, colour: RGB, who: str) -> None:
    """`page` shows the other party's camera (its colour), and the picture is live."""
    poll(lambda: close_to(remote_colour(page), colour), f"{who} seeing the other party's camera", 20)
    assert frames_advancing(page, 1.5), f"{who}'s remote video froze"
