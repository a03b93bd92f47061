"""The screen pop and the wallboard as Chromium draws them, before any call exists: make_app with
an in-test backend and a real hub; the test publishes into the hub what a call or the live
publisher would. The lab tests (test_screen_pop_lab, test_wallboard_lab) run them with real calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from hotline.engine.live_hub import WALLBOARD, Event, LiveHub, RingNews, Subscription, agent_topic, ring_event
from hotline.errors import WebRefusal
from hotline.web.app import WebConfig, make_app

from support.browser import launch, open_page, playwright_session, served
from support.checks import wait_until
from support.daemon import free_tcp_port
from support.png import differing

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = pytest.mark.browser

TOKEN = "wallboard-page-token-0123456789"
NEWS = RingNews("ivanov", "leg-1", 7, 9, "support", "+79161234567", "Anna", 1_796_000_000.0)
HISTORY = {"dialled": "+74951234567", "hotline": "city", "keys": "12", "earlier_hops": [
    {"seq": 1, "entered_at": "2026-12-03T05:00:00+00:00", "answered_at": "2026-12-03T05:00:09+00:00",
     "channel_kind": "pstn", "media": "audio", "queue": "support", "agent": "petrov", "agent_name": "",
     "end_reason": "transferred"}],
    "earlier_cases": [{"case": 3, "opened_at": "2026-11-30T10:00:00+00:00", "agent": "sidorov",
                       "agent_name": "Sidorov", "hops": 2, "end_reason": "completed", "status": "closed"}]}


class Backend:
    def __init__(self) -> None:
        self.hub = LiveHub()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiting = 0

    def authenticate(self, endpoint: str, password: str) -> bool:
        return (endpoint, password) == ("ivanov", "secret")

    def subscribe_agent(self, endpoint: str) -> Subscription:
        if endpoint != "ivanov":
            raise WebRefusal(401, "Wrong agent or password")
        self.loop = asyncio.get_running_loop()
        return self.hub.subscribe(agent_topic("ivanov"))

    def subscribe_wallboard(self) -> Subscription:
        self.loop = asyncio.get_running_loop()
        return self.hub.subscribe(WALLBOARD)

    async def screen_pop(self, event: Event) -> Event:
        return event | HISTORY if event["state"] == "ringing" else event

    async def wallboard(self) -> Event:
        since = "2026-12-03T06:00:00+00:00" if self.waiting else None
        return {"now": "2026-12-03T06:00:30+00:00", "agents": [
                    {"agent": "ivanov", "state": "free", "since": "2026-12-03T05:59:00+00:00"}],
                "queues": [{"queue": "support", "waiting": self.waiting, "longest_waiting_since": since,
                            "agents_free": 1, "agents_ringing": 0, "agents_busy": 0, "agents_wrapup": 0,
                            "agents_paused": 0, "agents_logged_out": 0, "line": [],
                            "today": {"answered": 4, "abandoned": 1, "service_level_pct": 75.0}}]}

    def publish(self, topic: str, event: Event) -> None:
        """From the test's thread into the application's loop, as a call's task would."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.hub.publish, topic, event)

    def video_addresses(self) -> frozenset[str]:
        return frozenset()


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def site(backend: Backend) -> Iterator[str]:
    port = free_tcp_port()
    config = WebConfig(sip_ws_url="ws://127.0.0.1:9/ws", sip_domain="127.0.0.1",
                       origin=f"http://127.0.0.1:{port}", supervisor_token=TOKEN)
    with served(make_app(config, backend), port=port) as base:  # type: ignore[arg-type]
        yield base


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


def logged_in(pw: Playwright, site: str) -> Page:
    page = open_page(launch(pw, None), f"{site}/agent")
    page.fill("#endpoint", "ivanov")
    page.fill("#password", "secret")
    page.click("#login")
    wait_until(lambda: page.evaluate("window.hotlinePhone.popConnected"), what="the screen pop's stream open")
    return page


def test_a_ring_pops_the_caller_the_number_the_keys_and_the_history_then_says_answered(
        pw: Playwright, site: str, backend: Backend) -> None:
    page = logged_in(pw, site)
    assert page.is_hidden("#screen-pop")
    backend.publish(agent_topic("petrov"), ring_event(NEWS, "ringing"))  # not this agent's
    backend.publish(agent_topic("ivanov"), ring_event(NEWS, "ringing"))
    page.wait_for_selector("#screen-pop", state="visible", timeout=5_000)
    fields = ("state", "caller", "dialled", "hotline", "keys", "queue")
    shown = {f: page.inner_text(f"#pop-{f}") for f in fields}
    assert shown == {"state": "ringing", "caller": "Anna <+79161234567>", "dialled": "+74951234567",
                     "hotline": "city", "keys": "12", "queue": "support"}
    [hop] = page.inner_text("#pop-hops").splitlines()
    assert hop.startswith("leg 1, ") and hop.endswith(
        ": pstn audio, queue support, answered by petrov, transferred"), hop
    [case] = page.inner_text("#pop-cases").splitlines()
    assert case.startswith("case 3, ") and case.endswith(": Sidorov, 2 legs, completed (closed)"), case
    assert page.is_hidden("#pop-history-error")
    waited = page.inner_text("#pop-wait")
    wait_until(lambda: page.inner_text("#pop-wait") != waited, timeout_s=3, what="the wait ticking")
    backend.publish(agent_topic("ivanov"), ring_event(NEWS, "answered"))
    wait_until(lambda: page.inner_text("#pop-state") == "answered", timeout_s=5, what="answered")
    backend.publish(agent_topic("ivanov"), ring_event(NEWS, "gone", "caller gone"))
    wait_until(lambda: page.inner_text("#pop-state") == "gone (caller gone)", timeout_s=5, what="gone")


def test_the_wallboard_redraws_on_a_change_and_its_pixels_change_with_it(
        pw: Playwright, site: str, backend: Backend) -> None:
    page = open_page(launch(pw, None), f"{site}/wallboard")
    page.fill("#token", TOKEN)
    page.click("#open")
    row = "#queues tr[data-queue='support']"
    page.wait_for_selector(row, timeout=5_000)
    texts = page.eval_on_selector_all(f"{row} td", "tds => tds.map(td => td.textContent)")
    assert texts == ["support", "0", "—", "4", "1", "75%", "1", "0", "0", "0", "0"]
    assert page.inner_text("#agents tbody td.state") == "free"
    idle = page.locator(row).screenshot()
    backend.waiting = 1
    backend.publish(WALLBOARD, {"changed": "now"})
    wait_until(lambda: page.inner_text(f"{row} td.waiting") == "1", timeout_s=5, what="1 waiting")
    assert page.inner_text(f"{row} td.longest-wait").startswith("0:3")  # from the server's clock
    busy = page.locator(row).screenshot()
    assert differing(idle, busy) > 20


def test_a_wrong_token_is_said_and_not_retried(pw: Playwright, site: str) -> None:
    page = open_page(launch(pw, None), f"{site}/wallboard")
    page.fill("#token", "wrong-token-0123456789")
    page.click("#open")
    wait_until(lambda: page.is_visible("#error"), timeout_s=5, what="the refusal shown")
    assert page.inner_text("#error") == "Wrong supervisor token"
    assert page.inner_text("#status") == "not connected"
