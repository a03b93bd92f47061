"""The agent's desk through the real lab: Chromium runs /agent for a logged-in agent, sipp calls.

1. The desk in Russian and in English (the browser's language): no text left in the other
   language or as a raw key, every field labelled, and on a laptop screen (1366x768) nothing
   scrolls. Presence is the very state of `hotline agent ...`: a pause with a provisioned reason
   from the page is seen by `hotline agent status`, one from the CLI shows on the page, a reason
   outside the list is refused to both (a refused pause of a logged-off agent logs no one in), Log
   off and Ready from the page are the CLI's logged out and free. The login
   holds across a reload of the tab, until Log out.
2. A real call: the agent paused, the caller waits and the desk's queue panel shows them; Ready
   on the page, the phone rings and the screen pop shows the caller; answered, the caller hears
   the agent (the browser's fake microphone plays a 1100 Hz tone); Hold gives the caller music on
   hold and none of the agent, and is recorded as a hold; Resume gives the agent back; Mute gives
   the caller silence (and is no hold); the page hangs up and the desk counts the queue's wrap-up
   down to ready.
"""

from __future__ import annotations

import json
import math
import re
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab
from hotline.web import i18n

from support import sipp
from support.agents import Agent, hotline, logged_in_agents, registered
from support.browser import launch, playwright_session
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE
from support.tones import RtpTap, share

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

NUMBER = "84950002281"
WRAPUP_S = 6
DESK = pytest.mark.provision(BASE + f"""
[queues.desk_q]
ring_timeout = 20
wrapup = {WRAPUP_S}

[hotlines.desk]
entry = "queue:desk_q"

[numbers."+74950002281"]
hotline = "desk"
""")
LAPTOP = {"width": 1366, "height": 768}
AGENT_HZ = 1100
HEARD = 0.5  # the agent's tone's share of what the caller is sent, while they talk
ABSENT = 0.01  # ... and at most this on hold or muted
LISTEN_S = 2.0


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


def tone_wav(path: Path, hz: float) -> Path:
    """A WAV file Chromium plays as its fake microphone: a sine at `hz`, whole periods."""
    rate = 48000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(0.3 * 32767 * math.sin(2 * math.pi * hz * i / rate)))
                                 for i in range(rate)))
    return path


def desk_page(browser: Browser, env: dict[str, str], locale: str) -> Page:
    context = browser.new_context(permissions=["camera", "microphone"], locale=locale, viewport=LAPTOP)
    page = context.new_page()
    page.goto(f"http://{env['HOTLINE_WEB_LISTEN']}/agent")
    return page


def log_in(page: Page, lab: Lab, agent: Agent) -> None:
    page.fill("#endpoint", agent.name)
    page.fill("#password", agent.password)
    page.click("#login")
    wait_until(lambda: page.evaluate("window.hotlinePhone.state") == "registered", what="registered")
    wait_until(lambda: registered(lab, agent.name), what="Asterisk has the browser as a contact")
    wait_until(lambda: page.evaluate("window.hotlinePhone.popConnected && window.hotlinePhone.deskConnected"),
               what="the screen pop's and the desk's streams open")


def presence(page: Page) -> str:
    return page.inner_text("#presence-state")


def cli_state(env: dict[str, str], agent: Agent) -> dict[str, object]:
    rows_ = json.loads(hotline(env, "agent", "status", "--format", "json").stdout)
    return next(r for r in rows_ if r["agent"] == agent.name)


SHOWN_TEXTS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (el.closest("script")) continue;
    const text = walker.currentNode.textContent.trim();
    if (text) out.push(text);
  }
  for (const el of document.querySelectorAll("[aria-label], [placeholder], option")) {
    for (const value of [el.getAttribute("aria-label"), el.getAttribute("placeholder")]) {
      if (value) out.push(value.trim());
    }
  }
  out.push(document.title.split(" · ")[0]);
  return out;
}"""


def pause_from_page(page: Page, reason: str) -> list[object]:
    """What the desk's presence API answers the page's own login asking for a pause."""
    return list(page.evaluate("""async (reason) => {
        const { endpoint, password } = window.hotlinePhone.credentials;
        const login = btoa(String.fromCharCode(...new TextEncoder().encode(`${endpoint}:${password}`)));
        const response = await fetch("/api/agent/presence", { method: "POST", body: JSON.stringify(
            { action: "pause", reason }), headers: { Authorization: `Basic ${login}`,
                                                     "Content-Type": "application/json" } });
        return [response.status, await response.json()];
    }""", reason))


def assert_speaks(page: Page, language: str) -> None:
    """Every text the page shows is its language's: none of the other catalogue's own texts, no
    raw key; every field has a label, every button a name."""
    other = "ru" if language == "en" else "en"
    mine, theirs = i18n.catalogue(language), i18n.catalogue(other)
    foreign = {v for k, v in theirs.items() if k.startswith("agent.") and v != mine[k] and "{" not in v}
    shown = page.evaluate(SHOWN_TEXTS)
    assert [t for t in shown if t in foreign] == []
    assert [t for t in shown if re.fullmatch(r"agent\.[a-z_.]+", t)] == []
    assert page.evaluate("document.documentElement.lang") == language
    assert page.title().startswith(mine["agent.title"])
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea'))
        .filter((el) => !el.labels.length && !el.getAttribute('aria-label')).map((el) => el.id)""")
    assert unlabelled == []
    nameless = page.evaluate("""() => Array.from(document.querySelectorAll('button'))
        .filter((b) => !b.textContent.trim()).map((b) => b.id)""")
    assert nameless == []


def assert_fits_a_laptop(page: Page) -> None:
    size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
                         " innerWidth, innerHeight]")
    assert size[0] <= size[2] and size[1] <= size[3], size
    for selector in ("#ready", "#pause", "#logoff", "#hold", "#mute", "#hangup", "#transfer", "#note-save",
                     "#desk-queues"):
        box = page.locator(selector).bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0 and box["y"] >= 0, selector
        assert box["x"] + box["width"] <= LAPTOP["width"] and box["y"] + box["height"] <= LAPTOP["height"], (
            selector, box)


@DESK
def test_the_desk_speaks_the_browsers_language_fits_a_laptop_and_shares_presence_with_the_cli(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "dk", {"desk_q": 0}, capabilities=[("audio", "webrtc")])
    hotline(daemon_env, "agent", "pause-reasons", "обед", "training", "team meeting")
    assert hotline(daemon_env, "agent", "pause-reasons").stdout.splitlines() == ["обед", "training",
                                                                                 "team meeting"]
    browser = launch(pw, None)
    try:
        english = desk_page(browser, daemon_env, "en-US")
        assert_speaks(english, "en")
        assert_fits_a_laptop(english)

        page = desk_page(browser, daemon_env, "ru-RU")
        log_in(page, lab, agent)
        ru = i18n.catalogue("ru")
        wait_until(lambda: presence(page) == ru["agent.presence.free"], what="the desk showing ready")
        assert page.eval_on_selector_all("#pause-reason option", "os => os.map((o) => o.value)") == [
            "обед", "training", "team meeting"]
        assert page.is_hidden("#pause-typed")  # a list: no free text
        assert_speaks(page, "ru")
        assert_fits_a_laptop(page)
        assert page.inner_text("#desk-queues tr[data-queue='desk_q'] td.waiting") == "0"

        page.select_option("#pause-reason", "обед")
        page.click("#pause")
        wait_until(lambda: cli_state(daemon_env, agent)["reason"] == "обед", what="the CLI seeing the pause")
        assert cli_state(daemon_env, agent)["state"] == "paused"
        paused = ru["agent.presence.paused"]
        wait_until(lambda: presence(page) == f"{paused}: обед", what="the page saying so")

        hotline(daemon_env, "agent", "pause", agent.name, "training")
        wait_until(lambda: presence(page) == f"{paused}: training", timeout_s=6,
                   what="the page seeing the CLI's pause")

        refused = hotline_cli(daemon_env, "agent", "pause", agent.name, "coffee")
        assert refused.returncode == 1
        said = "'coffee' is not one of the provisioned reasons: обед, training, team meeting"
        assert said in refused.stderr, refused.stderr
        # The desk's own API refuses it too, with the engine's reason (in English) under its code.
        refusal = {"error": f"pause reason {said}", "code": "presence_refused",
                   "fields": {"reason": f"pause reason {said}"}}
        assert pause_from_page(page, "coffee") == [409, refusal]
        assert cli_state(daemon_env, agent)["reason"] == "training"

        page.click("#logoff")
        wait_until(lambda: cli_state(daemon_env, agent)["state"] == "logged out",
                   what="the CLI seeing log off")
        wait_until(lambda: presence(page) == ru["agent.presence.logged_out"], what="the page saying so")
        assert pause_from_page(page, "coffee") == [409, refusal]
        assert cli_state(daemon_env, agent)["state"] == "logged out"  # the refused pause logged no one in

        page.click("#ready")  # logs in and is ready
        wait_until(lambda: cli_state(daemon_env, agent)["state"] == "free", what="the CLI seeing ready")
        wait_until(lambda: presence(page) == ru["agent.presence.free"], what="the page saying ready")

        page.reload()  # logged in once: the tab keeps the login, the form stays folded away
        wait_until(lambda: page.evaluate("window.hotlinePhone.state") == "registered",
                   what="registered again")
        assert page.inner_text("#who") == agent.name and page.is_hidden("#password")
        wait_until(lambda: presence(page) == ru["agent.presence.free"], what="the desk again")
        page.click("#logout")  # out of the page: the login is forgotten, presence stays
        assert page.is_visible("#password") and page.evaluate("sessionStorage.length") == 0
        page.reload()
        assert page.evaluate("window.hotlinePhone.state") == "logged out"
        assert cli_state(daemon_env, agent)["state"] == "free"
    finally:
        browser.close()


def caller_hears(tap: RtpTap, port: int) -> tuple[float, float]:
    """The agent's tone's share of what the caller is sent over LISTEN_S, and its mean power."""
    since = time.monotonic()
    time.sleep(LISTEN_S)
    samples = tap.samples(port, since)
    assert len(samples) > 8000, tap.ports()  # RTP kept flowing to the caller
    return share(samples, AGENT_HZ), sum(x * x for x in samples) / len(samples)


@DESK
def test_a_waiting_caller_shows_then_pops_and_is_held_with_music_muted_resumed_and_wrapped_up(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "dc", {"desk_q": 0}, capabilities=[("audio", "webrtc")])
    hotline(daemon_env, "agent", "pause", agent.name, "lunch")
    microphone = tone_wav(tmp_path / "agent.wav", AGENT_HZ)
    browser = launch(pw, None, extra_args=(f"--use-file-for-fake-audio-capture={microphone}",))
    port = sipp.free_udp_port(sipp.TRUNK)
    caller = None
    try:
        page = desk_page(browser, daemon_env, "en-GB")
        log_in(page, lab, agent)
        en = i18n.catalogue("en")
        paused = en["agent.presence.paused"]
        wait_until(lambda: presence(page) == f"{paused}: lunch", what="paused on the desk")
        with RtpTap() as tap:
            caller = sipp.start_call(NUMBER, caller="+79161230001", caller_name="Desk Caller",
                                     media_port=port, timeout_s=90)
            row = "#desk-queues tr[data-queue='desk_q']"
            wait_until(lambda: page.inner_text(f"{row} td.waiting") == "1",
                       what="the caller waiting on the desk")
            wait_until(lambda: re.fullmatch(r"0:0\d", page.inner_text(f"{row} .waiter")) is not None,
                       what="the caller's wait in the line")
            page.click("#ready")
            page.wait_for_selector("#answer", state="visible", timeout=20_000)
            wait_until(lambda: page.inner_text("#pop-state") == "ringing", what="the pop")
            assert page.inner_text("#pop-caller") == "Desk Caller <+79161230001>"
            assert (page.inner_text("#pop-hotline"), page.inner_text("#pop-queue")) == ("desk", "desk_q")
            assert page.inner_text("#pop-dialled") == "+74950002281"
            page.click("#answer")
            wait_until(lambda: page.evaluate("window.hotlinePhone.state") == "in call", what="in call")
            wait_until(lambda: page.is_enabled("#hold"), what="hold offered")
            wait_until(lambda: caller_hears(tap, port)[0] > HEARD, what="the caller hearing the agent")

            page.click("#hold")
            assert page.get_attribute("#hold", "aria-pressed") == "true"
            assert page.inner_text("#hold") == en["agent.call.resume"]
            wait_until(lambda: (h := caller_hears(tap, port))[0] < ABSENT and h[1] > 1000,
                       what="the caller hearing music, not the agent")
            page.click("#hold")
            wait_until(lambda: caller_hears(tap, port)[0] > HEARD, what="the agent back after the hold")

            page.click("#mute")
            assert page.get_attribute("#mute", "aria-pressed") == "true"
            wait_until(lambda: (h := caller_hears(tap, port))[0] < ABSENT and h[1] < 1000,
                       what="the caller hearing nothing from a muted agent")
            page.click("#mute")
            wait_until(lambda: caller_hears(tap, port)[0] > HEARD, what="the agent heard again")

            page.click("#hangup")
            assert sipp.finish(caller).ok
        wait_until(lambda: presence(page) == en["agent.presence.wrapup"], what="wrap-up on the desk")
        first = page.evaluate("window.hotlinePhone.wrapupLeft")
        assert 0 < first <= WRAPUP_S
        assert re.fullmatch(r"0:0\d left", page.inner_text("#wrapup-left"))
        wait_until(lambda: page.evaluate("window.hotlinePhone.wrapupLeft") < first, timeout_s=3,
                   what="the countdown running")
        wait_until(lambda: presence(page) == en["agent.presence.free"], timeout_s=WRAPUP_S + 4,
                   what="ready once the wrap-up is over")
        assert page.is_hidden("#wrapup-left")
        assert [r["event"] for r in rows(db, "SELECT event FROM queue_events ORDER BY id")][:3] == [
            "join", "ring", "answer"]
        # Hold was recorded (JsSIP's re-INVITE sendonly: ChannelHold on the agent's leg); Mute was not
        held = rows(db, "SELECT h.held_by, a.name AS agent, h.ended_at - h.started_at AS held FROM holds h"
                        " JOIN agents a ON a.id = h.agent_id")
        assert [(h["held_by"], h["agent"]) for h in held] == [("agent", agent.name)]
        assert held[0]["held"].total_seconds() > 0
        assert [e["kind"] for e in rows(db, "SELECT kind FROM contact_events WHERE kind LIKE 'hold_%%'"
                                            " ORDER BY id")] == ["hold_started", "hold_ended"]
    finally:
        if caller is not None and caller.poll() is None:
            caller.kill()
        browser.close()
