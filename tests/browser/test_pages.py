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

from hotline.engine.customer_view import CustomerView
from hotline.engine.live_hub import WALLBOARD, LiveHub, Subscription
from hotline.errors import WebRefusal
from hotline.web.app import HotlinePage, SwitchCheck, WebConfig, make_app

from support.browser import (
    close_to,
    launch,
    open_page,
    playwright_session,
    served,
    video_colour,
)
from support.daemon import free_tcp_port
from support.fake_camera import BLUE, RED, write_y4m

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

pytestmark = pytest.mark.browser

REFUSED = "Camera or microphone access was refused: allow them in the browser and try again"
OR_VOICE = " (or call by voice, without the camera)"
MIC_REFUSED = "Microphone access was refused: allow it in the browser and try again"
TOKEN = "5a" * 32
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
    def __init__(self) -> None:
        self.hub = LiveHub()
        self.switch_look = HotlinePage()  # the look of a valid switch link's page

    def video_addresses(self) -> frozenset[str]:
        return frozenset({"video-support", "agent1"})

    def hotline_page(self, address: str) -> HotlinePage | None:
        return HotlinePage() if address in self.video_addresses() else None

    def customer_view(self, customer: str) -> CustomerView | None:
        return None  # the recorder answers no INVITE: no call is ever in line

    def subscribe_customer(self) -> Subscription:
        return self.hub.subscribe(WALLBOARD)

    async def switch_page(self, token: str) -> HotlinePage:
        return self.switch_look

    async def check_switch_token(self, token: str) -> SwitchCheck:
        return SwitchCheck.VALID if token == TOKEN else SwitchCheck.UNKNOWN

    def authenticate(self, endpoint: str, password: str) -> bool:
        return (endpoint, password) == ("ivanov", "pässword")

    async def agent_switch(self, endpoint: str) -> str:
        return f"/switch/{TOKEN}"

    async def agent_invite(self, endpoint: str, invitee: str) -> str:
        raise WebRefusal(409, "You have no call in progress to bring anyone into")

    def live_queues(self) -> list[dict[str, object]]:
        return [{"queue": "support", "waiting": 0}]

    def customer_camera(self, customer: str, video: bool) -> bool:
        return False


@pytest.fixture
def sip() -> Iterator[tuple[SipRecorder, str]]:
    fake = SipRecorder()
    with served(fake.app()) as base:
        yield fake, base.replace("http://", "ws://") + "/ws"


@pytest.fixture
def site(sip: tuple[SipRecorder, str]) -> Iterator[str]:
    port = free_tcp_port()
    config = WebConfig(sip_ws_url=sip[1], sip_domain="127.0.0.1", origin=f"http://127.0.0.1:{port}")
    with served(make_app(config, Backend()), port=port) as base:
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
    return str(page.evaluate("window.hotlinePhone.state"))


def test_a_refused_camera_shows_why_and_places_no_call(
        pw: Playwright, site: str, sip: tuple[SipRecorder, str],
        tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE), allow_media=False)
    try:
        page = open_page(browser, f"{site}/call/video-support", allow_media=False)
        page.click("#call")
        page.wait_for_function("() => window.hotlinePhone.lastError !== null")
        assert page.inner_text("#error") == REFUSED + OR_VOICE
        assert page.is_visible("#error")
        assert status(page) == "failed" and page.is_visible("#setup")  # back to the device check
        assert page.is_enabled("#call") and page.is_enabled("#call-voice")
        page.click("#call-voice")  # the microphone is refused too
        page.wait_for_function("() => window.hotlinePhone.lastError.startsWith('Microphone')")
        assert page.inner_text("#error") == MIC_REFUSED
    finally:
        browser.close()
    assert sip[0].requests("INVITE") == []


def test_a_customer_who_refuses_the_camera_calls_by_voice_with_the_microphone_alone(
        pw: Playwright, site: str, sip: tuple[SipRecorder, str], tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE), allow_media=False)
    try:
        page = open_page(browser, f"{site}/call/video-support", permissions=["microphone"])
        labels = (page.inner_text("#call"), page.inner_text("#call-voice"))
        assert labels == ("Call by video", "Call by voice")
        page.click("#call")
        page.wait_for_function("() => window.hotlinePhone.lastError !== null")
        assert page.inner_text("#error") == REFUSED + OR_VOICE
        assert sip[0].requests("INVITE") == []

        page.click("#call-voice")
        line, headers = eventually(lambda: sip[0].requests("INVITE") or None, "the INVITE")[0]
        assert line == "INVITE sip:video-support@127.0.0.1 SIP/2.0"
        assert re.fullmatch(r"[0-9a-f]{16}", headers["X-Hotline-Customer"])
        offer = sip[0].messages[-1]
        assert "m=audio" in offer and "m=video" not in offer, offer
        assert page.is_hidden("#error") and status(page) == "calling"
        assert page.evaluate("window.hotlinePhone.localStream.getTracks().map((t) => t.kind)") == ["audio"]
        assert not page.is_enabled("#call") and not page.is_enabled("#call-voice")
    finally:
        browser.close()


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
        assert status(page) == "failed" and page.inner_text("#stage") == "The call did not go through"

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


def agent_logged_in(browser: Browser, site: str, password: str) -> Page:
    page = open_page(browser, f"{site}/agent")
    page.fill("#endpoint", "ivanov")
    page.fill("#password", password)
    page.click("#login")  # registers over the recorder (which never answers); the API needs no more
    return page


def test_the_agent_page_asks_for_a_switch_link_as_json_with_its_credentials_and_leaves_none_behind(
        pw: Playwright, site: str, tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE))
    try:
        page = agent_logged_in(browser, site, "pässword")
        page.click("#switch")
        link = eventually(lambda: page.evaluate("window.hotlinePhone.switchLink"), "the switch link")
        assert link == f"{site}/switch/{TOKEN}"
        assert page.get_attribute("#switch-link", "href") == link
        # The credentials went in that request alone: the browser holds none for this site.
        assert page.evaluate("fetch('/api/queues').then((r) => r.status)") == 401
    finally:
        browser.close()


def test_a_wrong_password_on_the_agent_page_shows_why_and_opens_no_login_dialog(
        pw: Playwright, site: str, tmp_path: Path) -> None:
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE))
    try:
        page = agent_logged_in(browser, site, "wrong")
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.click("#switch")
        eventually(lambda: page.evaluate("window.hotlinePhone.lastError"), "the refusal shown")
        assert page.inner_text("#error") == "Wrong agent or password"
        assert dialogs == [] and page.evaluate("window.hotlinePhone.switchLink") is None
    finally:
        browser.close()


def test_another_site_cannot_use_the_agent_api_even_with_the_credentials(
        pw: Playwright, site: str, tmp_path: Path) -> None:
    """A page of another origin (here: the same server under another host name) posting JSON with
    the agent's credentials gets nothing: the browser sends its Origin, and the API refuses it."""
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE))
    try:
        page = agent_logged_in(browser, site.replace("127.0.0.1", "localhost"), "pässword")
        page.click("#switch")
        eventually(lambda: page.evaluate("window.hotlinePhone.lastError"), "the refusal shown")
        assert page.inner_text("#error") == "Requests to this API come from its own pages only"
        assert page.evaluate("window.hotlinePhone.switchLink") is None
    finally:
        browser.close()


@pytest.mark.parametrize(("path", "buttons"), [
    ("/call/video-support", ("#call", "#call-voice")),
    (f"/switch/{TOKEN}", ("#call",)),
    ("/agent", ("#login", "#switch", "#invite")),
])
def test_every_page_fits_a_phone_in_portrait_without_sideways_scrolling(
        pw: Playwright, site: str, tmp_path: Path, path: str, buttons: tuple[str, ...]) -> None:
    browser = launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE))
    try:
        page = browser.new_context(**pw.devices["Pixel 5"]).new_page()
        page.goto(f"{site}{path}")
        width = page.evaluate("window.innerWidth")
        assert width < page.evaluate("window.innerHeight")  # portrait
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for selector in buttons:
            box = page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
            assert box["height"] >= 44, f"{selector} is {box['height']} px high: too small for a finger"
    finally:
        browser.close()
