"""The agent page's screen pop through the real lab: Chromium runs the page of a logged-in agent;
a sipp caller rings it twice from the same number (the second call continues the case), first
through the hotline's menu (key 1). Checked: the page shows each ring live (ringing, then
answered), with the caller's number, the number dialled, the hotline, the keys, the queue, and, on
the second ring, the case's earlier leg: when, answered by this agent, completed. With cases never
continued, the second call's pop lists the customer's earlier case instead. A note the agent
writes in the page's Notes box during the first talk pops with the second call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

DIALLED = "84950002261"
CALLER = "+79161234569"
DESK = pytest.mark.provision(BASE + """
[queues.sp_desk]
ring_timeout = 15
wrapup = 0

[menus.sp_menu]
prompt = "beep"
timeout = 5

[menus.sp_menu.options]
"1" = "queue:sp_desk"

[hotlines.sp]
entry = "menu:sp_menu"

[numbers."+74950002261"]
hotline = "sp"
""")
# A ring shows on the page within this long of the queue recording it.
SHOWN_WITHIN_S = 5


@pytest.fixture
def daemon_env(daemon_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    """The lab's settings, with a test's own (indirect parametrization) on top."""
    return {**daemon_env, **getattr(request, "param", {})}


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


def state_of(page: Page) -> str:
    return str(page.evaluate("window.hotlinePhone.state"))


def pop(page: Page) -> dict[str, str]:
    """What the screen pop shows, as the agent reads it."""
    fields = ("state", "caller", "dialled", "hotline", "keys", "queue", "wait", "hops", "cases", "notes")
    return {f: page.inner_text(f"#pop-{f}") for f in fields}


def agent_page(pw: Playwright, tmp_path: Path, env: dict[str, str], lab: Lab, agent: Agent) -> Page:
    page = open_page(launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE)), f"http://{env['HOTLINE_WEB_LISTEN']}/agent")
    page.fill("#endpoint", agent.name)
    page.fill("#password", agent.password)
    page.click("#login")
    wait_until(lambda: state_of(page) == "registered", what="the agent page registered")
    wait_until(lambda: registered(lab, agent.name), what="Asterisk has the agent's browser as a contact")
    wait_until(lambda: page.evaluate("window.hotlinePhone.popConnected"), what="the screen pop's stream open")
    return page


def ring_and_answer(page: Page, db: psycopg.Connection, after_hop: int = 0,
                    during_talk: Callable[[int], None] | None = None) -> tuple[dict[str, str], float, int]:
    """A call from CALLER through the menu (key 1), answered and hung up on the page (`during_talk`
    done with its hop's id before); the pop when it rang, how long after the ring was recorded the
    page showed it, and its hop's id."""
    caller = sipp.start_pressing_keys(DIALLED, "1", first_ms=1500, caller=CALLER, timeout_s=40)
    try:
        hop = wait_until(lambda: next(iter(rows(db, "SELECT id FROM hops WHERE id > %s", after_hop)),
                                      None), what="the call's hop opened")
        wait_until(lambda: rows(db, "SELECT 1 FROM queue_events WHERE hop_id = %s AND event = 'ring'",
                                hop["id"]), timeout_s=20, what="the queue ringing the agent")
        rung = time.monotonic()
        page.wait_for_selector("#pop-state:text('ringing')", timeout=20_000)
        shown = time.monotonic() - rung
        wait_until(lambda: page.evaluate("window.hotlinePhone.screenPop.hop") == hop["id"],
                   what="the pop of this hop")
        ringing = pop(page)
        page.wait_for_selector("#answer:not([disabled])", state="visible", timeout=10_000)
        page.click("#answer")
        wait_until(lambda: page.inner_text("#pop-state") == "answered", what="the pop saying answered")
        wait_until(lambda: state_of(page) == "in call", what="the page in the call")
        if during_talk is not None:
            during_talk(hop["id"])
        page.click("#hangup")
        assert sipp.finish(caller).ok
    finally:
        if caller.poll() is None:
            caller.kill()
    wait_until(lambda: state_of(page) == "ended", what="the page's call ended")
    wait_until(lambda: rows(db, "SELECT 1 FROM hops h JOIN cases c ON c.id = h.case_id"
                                " WHERE h.id = %s AND c.status = 'closed'", hop["id"]),
               what="the case closed")
    return ringing, shown, hop["id"]


@DESK
def test_the_agent_page_pops_the_caller_and_the_cases_earlier_leg_when_the_phone_rings(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "sp", {"sp_desk": 0},
                               capabilities=[("audio", "video", "webrtc")])
    page = agent_page(pw, tmp_path, daemon_env, lab, agent)
    first, shown, hop = ring_and_answer(page, db)
    assert shown < SHOWN_WITHIN_S, shown
    assert first["caller"] == f"IVR Caller <{CALLER}>"
    assert (first["dialled"], first["hotline"], first["queue"], first["keys"]) == ("+74950002261", "sp",
                                                                                   "sp_desk", "1")
    assert first["hops"] == "none" and first["cases"] == "none"

    second, shown, _ = ring_and_answer(page, db, hop)  # the same number again: the case continues
    assert shown < SHOWN_WITHIN_S, shown
    assert (second["caller"], second["keys"]) == (f"IVR Caller <{CALLER}>", "1")
    [earlier] = second["hops"].splitlines()
    assert earlier.startswith("leg 1, "), earlier
    assert earlier.endswith(f"queue sp_desk, answered by {agent.name}, completed"), earlier
    [case] = rows(db, "SELECT count(*) AS n FROM cases")
    assert case["n"] == 1


@DESK
@pytest.mark.parametrize("daemon_env", [{"HOTLINE_CONTINUE_CASE_WITHIN": "0"}], indirect=True)
def test_a_customers_earlier_case_shows_on_the_pop_of_their_next_call(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "sc", {"sp_desk": 0},
                               capabilities=[("audio", "video", "webrtc")])
    page = agent_page(pw, tmp_path, daemon_env, lab, agent)
    _, _, hop = ring_and_answer(page, db)
    second, shown, _ = ring_and_answer(page, db, hop)  # cases never continue: a new case
    assert shown < SHOWN_WITHIN_S, shown
    [first_case] = rows(db, "SELECT case_id FROM hops WHERE id = %s", hop)
    [earlier] = second["cases"].splitlines()
    assert earlier.startswith(f"case {first_case['case_id']}, "), earlier
    assert earlier.endswith(f": {agent.name}, 1 leg, completed (closed)"), earlier
    assert second["hops"] == "none"


NOTE = "Просит перезвонить после 18:00\nномер в карточке неверный"


@DESK
@pytest.mark.parametrize("daemon_env", [{"HOTLINE_CONTINUE_CASE_WITHIN": "0"}], indirect=True)
def test_a_note_the_agent_writes_during_a_talk_pops_with_the_customers_next_call(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    [agent] = logged_in_agents(daemon_env, tmp_path, "sn", {"sp_desk": 0},
                               capabilities=[("audio", "video", "webrtc")])
    page = agent_page(pw, tmp_path, daemon_env, lab, agent)

    def write_note(hop: int) -> None:
        [case] = rows(db, "SELECT case_id FROM hops WHERE id = %s", hop)
        wait_until(lambda: page.inner_text("#note-case") == str(case["case_id"]),
                   what="the Notes box on the case")
        wait_until(lambda: rows(db, "SELECT 1 FROM queue_events WHERE hop_id = %s AND event = 'answer'", hop),
                   what="the answer recorded")
        page.fill("#note-text", NOTE)
        page.click("#note-save")
        wait_until(lambda: page.inner_text("#note-status") == f"Note kept on case {case['case_id']}",
                   what="the page saying the note is kept")

    first, _, hop = ring_and_answer(page, db, during_talk=write_note)
    assert first["notes"] == "none"
    [note] = rows(db, "SELECT n.case_id, n.author, a.name AS agent, n.text FROM case_notes n"
                      " JOIN agents a ON a.id = n.agent_id")
    [first_case] = rows(db, "SELECT case_id FROM hops WHERE id = %s", hop)
    assert note == {"case_id": first_case["case_id"], "author": agent.name, "agent": agent.name, "text": NOTE}
    assert page.input_value("#note-text") == ""  # saved: the box is empty for the next note

    second, _, _ = ring_and_answer(page, db, hop)  # cases never continue: a new case, the same customer
    line = second["notes"].split("\n", 1)[0]
    said = f", {agent.name} (case {first_case['case_id']}): Просит перезвонить после 18:00"
    assert line.endswith(said), line
    assert second["notes"].endswith("номер в карточке неверный")
    shown = page.evaluate("window.hotlinePhone.screenPop.notes")
    assert [(n["case_id"], n["author"], n["text"]) for n in shown] == [(first_case["case_id"], agent.name,
                                                                        NOTE)]
