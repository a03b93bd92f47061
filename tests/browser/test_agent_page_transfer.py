"""The agent page's Transfer through the real lab: Chromium runs the page of an agent who answers a
sipp phone caller; the picker lists the queues, the hotlines and the agents free now; Transfer
passes the caller on blind, "Consult first" then "Complete transfer" attended, each to a second
agent whose phone is a sipp UAS. Checked: the page's word, its own call ending, who is in the
case's bridge (ARI) at each step, and the rows."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.browser import launch, open_page, playwright_session
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.fake_camera import BLUE, write_y4m
from support.provisioning import BASE
from support.transfer_checks import bridge_channels, channel_name, stop

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

PHONE_NUMBER = "84950002259"
DESK = pytest.mark.provision(BASE + """
[queues.tp_desk]
ring_timeout = 15

[hotlines.tp]
entry = "queue:tp_desk"

[numbers."+74950002259"]
hotline = "tp"

[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+74950002259"
allow = ["+7916"]
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    """Last in every test's arguments (as in test_video_lab)."""
    with playwright_session() as session:
        yield session


def state_of(page: Page) -> str:
    return str(page.evaluate("window.hotlinePhone.state"))


def agent_page(pw: Playwright, tmp_path: Path, env: dict[str, str], lab: Lab, agent: Agent) -> Page:
    camera = write_y4m(tmp_path / "blue.y4m", BLUE)
    page = open_page(launch(pw, camera), f"http://{env['HOTLINE_WEB_LISTEN']}/agent")
    page.fill("#endpoint", agent.name)
    page.fill("#password", agent.password)
    page.click("#login")
    wait_until(lambda: state_of(page) == "registered", what="the agent page registered")
    wait_until(lambda: registered(lab, agent.name), what="Asterisk has the agent's browser as a contact")
    return page


def answered_call(page: Page, db: psycopg.Connection) -> tuple[subprocess.Popen[str], dict[str, object]]:
    caller = sipp.start_call(PHONE_NUMBER, "caller_until_bye.xml", caller="+79161234568", timeout_s=60)
    page.wait_for_selector("#answer:not([disabled])", state="visible", timeout=20_000)
    page.click("#answer")
    wait_until(lambda: state_of(page) == "in call", what="the agent page in the call")
    hop = wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
                     what="the call answered")
    return caller, hop


def in_bridge(env: dict[str, str], case_id: object) -> list[str]:
    """Who is in the case's bridge: the customer, or an agent's endpoint (its PJSIP channel)."""
    names = [channel_name(env, c) for c in bridge_channels(env, case_id)]
    return sorted("customer" if "sipp-trunk" in n else n.removeprefix("PJSIP/").rsplit("-", 1)[0]
                  for n in names)


def said(page: Page) -> str | None:
    message = page.evaluate("window.hotlinePhone.transferMessage")
    return str(message) if message else None


def setup(pw: Playwright, tmp_path: Path, env: dict[str, str], lab: Lab, prefix: str
          ) -> tuple[Page, Agent, subprocess.Popen[str]]:
    first, second = logged_in_agents(env, tmp_path, prefix, {"tp_desk": 0}, {},
                                     capabilities=[("audio", "video", "webrtc"), ("audio",)])
    second_phone = sipp.agent_phone(second.name, second.password, ring_ms=300)
    wait_until(lambda: registered(lab, second.name), what="the second agent's phone registered")
    return agent_page(pw, tmp_path, env, lab, first), second, second_phone


@DESK
def test_the_agent_page_transfers_blind_to_an_agent_picked_from_its_list(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    page, second, second_phone = setup(pw, tmp_path, daemon_env, lab, "pb")
    caller, hop = answered_call(page, db)
    try:
        options = page.eval_on_selector_all("#transfer-target option", "els => els.map(e => e.value)")
        assert {"queue:tp_desk", "hotline:tp", f"agent:{second.name}"} <= set(options), options
        page.select_option("#transfer-target", f"agent:{second.name}")
        page.click("#transfer")
        wait_until(lambda: said(page), what="the page told the transfer's outcome")
        assert said(page) == f"Transferred to agent:{second.name}"
        wait_until(lambda: state_of(page) == "ended", what="the agent page's call ended")
        wait_until(lambda: in_bridge(daemon_env, hop["case_id"]) == sorted(["customer", second.name]),
                   what="the caller bridged with the second agent")
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(second_phone).ok
    finally:
        stop([caller, second_phone])
    [row] = rows(db, "SELECT kind, asked_by, target, outcome FROM transfers")
    assert row == {"kind": "blind", "asked_by": "page", "target": f"agent:{second.name}",
                   "outcome": "transferred"}


@DESK
def test_the_agent_page_consults_an_agent_then_completes_the_transfer(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    page, second, second_phone = setup(pw, tmp_path, daemon_env, lab, "pa")
    caller, hop = answered_call(page, db)
    first_name = str(page.input_value("#endpoint"))
    try:
        page.select_option("#transfer-target", f"agent:{second.name}")
        page.click("#consult")
        wait_until(lambda: said(page), what="the consult begun")
        assert said(page) == f"Consulting agent:{second.name}: the customer is on hold"
        wait_until(lambda: in_bridge(daemon_env, hop["case_id"]) == sorted([first_name, second.name]),
                   what="the agent talking with the second agent, the customer on hold")
        assert page.is_enabled("#transfer-complete") and not page.is_enabled("#transfer")
        page.click("#transfer-complete")
        wait_until(lambda: said(page) == f"Transferred to agent:{second.name}", what="the transfer completed")
        wait_until(lambda: state_of(page) == "ended", what="the agent page's call ended")
        wait_until(lambda: in_bridge(daemon_env, hop["case_id"]) == sorted(["customer", second.name]),
                   what="the caller bridged with the second agent")
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
        assert sipp.finish(second_phone).ok
    finally:
        stop([caller, second_phone])
    written = rows(db, "SELECT * FROM transfers ORDER BY id")
    outcomes = [(r["kind"], r["asked_by"], r["outcome"]) for r in written]
    assert outcomes == [("attended", "page", "consulting"), ("attended", "page", "transferred")]


@DESK
def test_the_agent_page_shows_a_refused_transfer_in_one_line_and_the_talk_goes_on(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    page, second, second_phone = setup(pw, tmp_path, daemon_env, lab, "pr")
    caller, hop = answered_call(page, db)
    first_name = str(page.input_value("#endpoint"))
    try:
        page.fill("#transfer-number", "8 (809) 555-12-34")  # outside the trunk's +7916
        page.click("#transfer")
        wait_until(lambda: page.is_visible("#error"), what="the page showing the refusal")
        assert page.inner_text("#error") == ("transfer to +78095551234 refused: no trunk may dial "
                                             "'+78095551234': +78095551234 is outside trunk carrier's "
                                             "allowed prefixes (+7916)")
        page.fill("#transfer-number", "")
        page.select_option("#transfer-target", "queue:tp_desk")
        page.click("#consult")  # an attended transfer goes to an agent only
        wait_until(lambda: "not to queue:tp_desk" in page.inner_text("#error"), what="the second refusal")
        assert state_of(page) == "in call" and said(page) is None
        assert in_bridge(daemon_env, hop["case_id"]) == sorted(["customer", first_name])  # untouched
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        assert sipp.finish(caller).ok
    finally:
        stop([caller, second_phone])
    assert rows(db, "SELECT id FROM transfers") == []  # refused before any daemon was asked
