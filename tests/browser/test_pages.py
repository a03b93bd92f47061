"""The pages in Debian's Chromium, without Asterisk: make_app serves them, and a stand-in SIP
WebSocket takes what JsSIP sends. It answers REGISTER and relays between two pages, so a customer
page calls an agent page directly (no SFU: that is the lab's e2e test); with one page a call stays
`calling`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from aiohttp import WSMsgType, web

from hotline.web.app import SwitchCheck, WebConfig, WebRefusal, make_app

from support.browser import (
    close_to,
    frames_advancing,
    launch,
    open_page,
    playwright_session,
    remote_colour,
    served,
    video_colour,
)
from support.fake_camera import BLUE, RED, write_y4m

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = pytest.mark.browser

REFUSED = "Camera or microphone access was refused: allow them in the browser and try again"
TOKEN = "switch-token-0123456789abcdef"
T = TypeVar("T")


class FakeSip:
    """The pages' SIP WebSocket: answers REGISTER with 200 OK, hands every other message to the other
    connected page (two JsSIP pages then call each other directly), and keeps every message."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.sockets: list[web.WebSocketResponse] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self._socket)
        return app

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("sip",))
        await ws.prepare(request)
        self.sockets.append(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._handle(ws, message.data)
        finally:
            self.sockets.remove(ws)
        return ws

    async def _handle(self, ws: web.WebSocketResponse, text: str) -> None:
        self.messages.append(text)
        if text.startswith("REGISTER "):
            await ws.send_str(registered(text))
            return
        for other in self.sockets:
            if other is not ws and not other.closed:
                await other.send_str(text)

    def requests(self, method: str) -> list[tuple[str, dict[str, str]]]:
        """(request line, headers) of each request of `method` received so far."""
        found = []
        for text in list(self.messages):
            line, headers = parse(text)
            if line.startswith(f"{method} "):
                found.append((line, headers))
        return found


def parse(text: str) -> tuple[str, dict[str, str]]:
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    return head[0], dict(line.split(": ", 1) for line in head[1:] if ": " in line)


def registered(register: str) -> str:
    """200 OK to a REGISTER, its Contact echoed with an expiry (what JsSIP looks for)."""
    _, headers = parse(register)
    lines = ["SIP/2.0 200 OK"] + [f"{name}: {headers[name]}" for name in ("Via", "From", "Call-ID", "CSeq")]
    contact = headers["Contact"].split(";expires=")[0]
    lines += [f"To: {headers['To']};tag=fake", f"Contact: {contact};expires=600", "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


class Backend:
    def video_addresses(self) -> frozenset[str]:
        return frozenset({"video-support", "agent1"})

    async def check_switch_token(self, token: str) -> SwitchCheck:
        return SwitchCheck.VALID if token == TOKEN else SwitchCheck.UNKNOWN

    async def agent_switch(self, endpoint: str, password: str) -> str:
        if (endpoint, password) != ("ivanov", "pässword"):
            raise WebRefusal(403, "wrong endpoint or password")
        return f"/switch/{TOKEN}"

    def live_queues(self) -> list[dict[str, object]]:
        return []


@pytest.fixture
def sip() -> Iterator[tuple[FakeSip, str]]:
    fake = FakeSip()
    with served(fake.app()) as base:
        yield fake, base.replace("http://", "ws://") + "/ws"


@pytest.fixture
def site(sip: tuple[FakeSip, str]) -> Iterator[str]:
    config = WebConfig(sip_ws_url=sip[1], sip_domain="127.0.0.1")
    with served(make_app(config, Backend())) as base:
        yield base


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while (value := probe()) is None or value is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


def status(page: Page) -> str:
    return page.inner_text("#status")


def test_a_refused_camera_shows_why_and_places_no_call(pw: Playwright, site: str, sip: tuple[FakeSip, str],
                                                       tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE), allow_media=False)
    try:
        page = open_page(browser, f"{site}/call/video-support", allow_media=False)
        page.click("#call")
        page.wait_for_function("() => window.hotlinePhone.lastError !== null")
        assert page.inner_text("#error") == REFUSED
        assert page.is_visible("#error")
        assert status(page) == f"failed: {REFUSED}"
        assert page.is_enabled("#call")
    finally:
        browser.close()
    assert sip[0].requests("INVITE") == []


def test_the_fake_camera_shows_in_the_local_video_in_its_colour(
        pw: Playwright, site: str, tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "red.y4m", RED))
    try:
        page = open_page(browser, f"{site}/call/video-support")
        page.click("#call")
        colour = eventually(lambda: video_colour(page, "#local"), "a picture in #local")
        assert close_to(colour, RED, tolerance=20), colour
        assert status(page) == "calling"
    finally:
        browser.close()


def test_the_call_page_invites_its_address_with_the_customer_id_and_name(
        pw: Playwright, site: str, sip: tuple[FakeSip, str], tmp_path: Path) -> None:
    fake = sip[0]
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE))
    try:
        page = open_page(browser, f"{site}/call/video-support")
        page.fill("#name", 'Anna "Ivanova"')
        page.click("#call")
        line, headers = eventually(lambda: fake.requests("INVITE") or None, "the INVITE")[0]
        assert line == "INVITE sip:video-support@127.0.0.1 SIP/2.0"
        assert headers["From"].startswith('"Anna Ivanova" <sip:hotline-web@127.0.0.1>')
        assert re.fullmatch(r"[0-9a-f]{16}", headers["X-Hotline-Customer"])
        assert "X-Hotline-Switch" not in headers
        assert "m=video" in fake.messages[-1]
        page.click("#hangup")
        page.wait_for_function("() => window.hotlinePhone.state === 'failed'")
        assert status(page) == "failed: canceled"

        again = page.context.new_page()  # the same browser profile: the same customer
        again.goto(f"{site}/call/video-support")
        again.click("#call")
        invites = eventually(lambda: fake.requests("INVITE")[1:] or None, "the second INVITE")
        assert invites[0][1]["X-Hotline-Customer"] == headers["X-Hotline-Customer"]
    finally:
        browser.close()


def test_the_switch_page_invites_switch_with_its_token(pw: Playwright, site: str, sip: tuple[FakeSip, str],
                                                       tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE))
    try:
        page = open_page(browser, f"{site}/switch/{TOKEN}")
        assert page.inner_text("#call") == "Join the video call"
        page.click("#call")
        line, headers = eventually(lambda: sip[0].requests("INVITE") or None, "the INVITE")[0]
        assert line == "INVITE sip:switch@127.0.0.1 SIP/2.0"
        assert headers["X-Hotline-Switch"] == TOKEN
        assert "X-Hotline-Customer" in headers
    finally:
        browser.close()


def test_the_agent_page_registers_and_shows_the_switch_link(
        pw: Playwright, site: str, sip: tuple[FakeSip, str], tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "red.y4m", RED))
    try:
        page = open_page(browser, f"{site}/agent")
        page.fill("#endpoint", "ivanov")
        page.fill("#password", "wrong")
        page.click("#login")
        line, _ = eventually(lambda: sip[0].requests("REGISTER") or None, "the REGISTER")[0]
        assert line == "REGISTER sip:127.0.0.1 SIP/2.0"
        page.wait_for_function("() => window.hotlinePhone.state === 'registered'")
        assert status(page) == "registered"

        page.click("#switch")
        page.wait_for_function("() => window.hotlinePhone.lastError !== null")
        assert page.inner_text("#error") == "wrong endpoint or password"

        page.fill("#password", "pässword")
        page.click("#login")
        page.click("#switch")
        page.wait_for_function("() => window.hotlinePhone.switchLink !== null")
        assert page.inner_text("#switch-link") == f"{site}/switch/{TOKEN}"
        assert page.get_attribute("#switch-link", "href") == f"{site}/switch/{TOKEN}"
        assert page.is_hidden("#error")
    finally:
        browser.close()


def test_a_customer_and_an_agent_see_each_other_in_their_own_colours(
        pw: Playwright, site: str, tmp_path: Path) -> None:
    agent_browser = launch(pw, write_y4m(tmp_path / "red.y4m", RED))
    customer_browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE))
    try:
        agent = open_page(agent_browser, f"{site}/agent")
        agent.fill("#endpoint", "agent1")
        agent.fill("#password", "secret")
        agent.click("#login")
        agent.wait_for_function("() => window.hotlinePhone.state === 'registered'")

        customer = open_page(customer_browser, f"{site}/call/agent1")
        customer.fill("#name", "Anna")
        customer.click("#call")
        agent.wait_for_selector("#incoming", state="visible")
        assert agent.inner_text("#caller") == "Anna <hotline-web>"
        agent.click("#answer")
        for page in (agent, customer):
            page.wait_for_function("() => window.hotlinePhone.state === 'in call'")

        seen_by_customer = eventually(lambda: remote_colour(customer), "the agent's picture")
        seen_by_agent = eventually(lambda: remote_colour(agent), "the customer's picture")
        assert close_to(seen_by_customer, RED), seen_by_customer
        assert close_to(seen_by_agent, BLUE), seen_by_agent
        assert frames_advancing(customer, 1.0) and frames_advancing(agent, 1.0)

        customer.click("#hangup")
        for page in (agent, customer):
            page.wait_for_function("() => window.hotlinePhone.state === 'ended'")
        assert remote_colour(customer) is None and remote_colour(agent) is None
    finally:
        customer_browser.close()
        agent_browser.close()
