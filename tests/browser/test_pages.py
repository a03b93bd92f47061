"""What the pages do before any call exists, in Debian's Chromium: make_app serves them, and a
WebSocket that only records what JsSIP sends shows what the page asks of Asterisk (it answers
nothing, so a call stays `calling`). Calls themselves, registration and video between parties run
through the real lab: tests/browser/test_video_lab.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from aiohttp import WSMsgType, web

from hotline.errors import WebRefusal
from hotline.web.app import SwitchCheck, WebConfig, make_app

from support.browser import (
    close_to,
    launch,
    open_page,
    playwright_session,
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


class SipRecorder:
    """The pages' SIP WebSocket: keeps every message a page sends, answers none."""

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
def sip() -> Iterator[tuple[SipRecorder, str]]:
    fake = SipRecorder()
    with served(fake.app()) as base:
        yield fake, base.replace("http://", "ws://") + "/ws"


@pytest.fixture
def site(sip: tuple[SipRecorder, str]) -> Iterator[str]:
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


def test_a_refused_camera_shows_why_and_places_no_call(
        pw: Playwright, site: str, sip: tuple[SipRecorder, str],
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
        def picture() -> tuple[int, int, int] | None:
            shown = video_colour(page, "#local")
            # A black first frame (drawn before the camera's first) is not a picture yet.
            return shown if shown is not None and any(shown) else None
        colour = eventually(picture, "a picture in #local")
        assert close_to(colour, RED, tolerance=20), colour
        assert status(page) == "calling"
    finally:
        browser.close()


def test_the_call_page_invites_its_address_with_the_customer_id_and_name(
        pw: Playwright, site: str, sip: tuple[SipRecorder, str], tmp_path: Path) -> None:
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


def test_the_switch_page_invites_switch_with_its_token(
        pw: Playwright, site: str, sip: tuple[SipRecorder, str],
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
