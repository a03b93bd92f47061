"""The supervisor's wallboard through the real lab: Chromium opens /wallboard with the supervisor
token; a sipp caller joins a queue with nobody to answer, waits, and hangs up. Checked: the
queue's waiting count goes 0 -> 1 -> 0 on the page without a reload, the longest wait advances
every second while the caller waits, the abandon is counted in today's numbers, screenshots of
the queue's row differ, pixel by pixel, between the two states, and the daemon stops at once with
the stream open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import psycopg
import pytest

from support import sipp
from support.browser import launch, open_page, playwright_session
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.png import differing
from support.provisioning import BASE

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

TOKEN = "wallboard-lab-token-0123456789"
DIALLED = "84950002262"
BOARD = pytest.mark.provision(BASE + """
[queues.wb_line]
ringback = 0
max_wait = 60

[hotlines.wb]
entry = "queue:wb_line"

[numbers."+74950002262"]
hotline = "wb"
""")
ROW = "#queues tr[data-queue='wb_line']"
STOPS_WITHIN_S = 5.0


@pytest.fixture
def daemon_env(daemon_env: dict[str, str]) -> dict[str, str]:
    return {**daemon_env, "HOTLINE_SUPERVISOR_TOKEN": TOKEN}


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


def cell(page: Page, name: str) -> str:
    return page.inner_text(f"{ROW} td.{name}")


def pictures(page: Page) -> int:
    return int(page.evaluate("window.hotlineWallboard.pictures"))


@BOARD
def test_the_wallboard_shows_a_caller_arrive_wait_and_leave_without_a_reload(
        daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection, pw: Playwright) -> None:
    page = open_page(launch(pw, None), f"http://{daemon_env['HOTLINE_WEB_LISTEN']}/wallboard")
    page.fill("#token", TOKEN)
    page.click("#open")
    page.wait_for_selector(ROW, timeout=10_000)
    assert (cell(page, "waiting"), cell(page, "longest-wait"), cell(page, "abandoned")) == ("0", "—", "0")
    idle = page.locator(ROW).screenshot()
    loaded = page.evaluate("performance.timeOrigin")

    caller = sipp.start_call(DIALLED, "caller_hangs_up.xml", caller="+79161234570", hold_ms=7000,
                             timeout_s=40)
    try:
        wait_until(lambda: cell(page, "waiting") == "1", timeout_s=10, what="the wallboard: 1 waiting")
        first = cell(page, "longest-wait")
        wait_until(lambda: cell(page, "longest-wait") != first, timeout_s=3, what="the longest wait ticking")
        busy = page.locator(ROW).screenshot()
        assert sipp.finish(caller).ok
    finally:
        if caller.poll() is None:
            caller.kill()
    wait_until(lambda: cell(page, "waiting") == "0", timeout_s=10, what="the wallboard back to 0 waiting")
    wait_until(lambda: cell(page, "abandoned") == "1", timeout_s=10, what="the abandon counted today")
    assert cell(page, "longest-wait") == "—"
    assert page.evaluate("performance.timeOrigin") == loaded  # the same page: never reloaded
    assert pictures(page) >= 3
    assert differing(idle, busy) > 20  # the row's pixels changed, not only its DOM
    [visit] = rows(db, "SELECT event FROM queue_events WHERE event = 'abandon'")
    assert visit == {"event": "abandon"}

    # The daemon stops with the page's stream open: the stream ends at once, the stop waits for
    # nothing, and the page says it is reconnecting.
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < STOPS_WITHIN_S
    assert "still waiting for web" not in daemon.log()
    wait_until(lambda: page.inner_text("#status") in ("reconnecting", "connecting"), timeout_s=5,
               what="the page reconnecting")
