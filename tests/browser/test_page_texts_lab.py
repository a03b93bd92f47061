"""The pages in the language of the page through the real lab (issue 19): a Russian agent's desk
shows the daemon's refusal in Russian (by its answer's code), and a phone caller's switch link
opens a page in the look and language of the hotline the call came through, whatever the
browser's own language; `hotline case show` names the phone leg's language."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.browser import launch, open_page, playwright_session
from support.checks import rows
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.fake_camera import BLUE, RED, write_y4m
from support.provisioning import BASE
from support.web_calls import agent_page, answer, poll, webrtc_agent

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

PHONE_NUMBER = "84950002299"
TITLE = "Помощь «Пример»"
TEXT = "Продолжим разговор по видео"
RUSSIAN_DESK = pytest.mark.provision(BASE + f"""
[queues.rq]
ring_timeout = 20

[hotlines.rudesk]
entry = "queue:rq"
language = "ru"
page_title = "{TITLE}"
page_text = "{TEXT}"
page_color = "#0a7d3e"

[numbers."+74950002299"]
hotline = "rudesk"
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


@RUSSIAN_DESK
def test_a_russian_desk_says_the_daemons_refusal_in_russian_and_a_switch_link_has_its_hotlines_look(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    agent = agent_page(pw, write_y4m(tmp_path / "blue.y4m", BLUE), daemon_env, lab,
                       webrtc_agent(daemon_env, tmp_path, "rq"), locale="ru-RU")
    phone = sipp.start_call(PHONE_NUMBER, "caller_until_bye.xml", caller="+79161234567", timeout_s=90)
    answer(agent)
    hop = poll(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
               "the phone call answered")

    # The daemon refuses the invite (no such agent): the desk says so in its own language.
    agent.fill("#invite-agent", "nobody")
    agent.click("#invite")
    poll(lambda: agent.evaluate("window.hotlinePhone.lastError") == "Оператора nobody нет",
         "the refusal in Russian")
    assert agent.inner_text("#error") == "Оператора nobody нет"

    switch = hotline_cli(daemon_env, "case", "switch", str(hop["case_id"]))
    assert switch.returncode == 0, switch.stderr
    customer = open_page(launch(pw, write_y4m(tmp_path / "red.y4m", RED)), switch.stdout.strip(),
                         locale="en-US")  # the browser's language is not the hotline's
    assert customer.get_attribute("html", "lang") == "ru" and customer.title() == f"{TITLE} · hotline"
    assert (customer.inner_text("h1"), customer.inner_text("#brand-text")) == (TITLE, TEXT)
    assert customer.inner_text("#call") == "Присоединиться к видеозвонку"
    assert json.loads(customer.text_content("#config") or "{}")["accentColor"] == "#0a7d3e"

    agent.click("#hangup")
    assert sipp.finish(phone).ok
    shown = hotline_cli(daemon_env, "case", "show", str(hop["case_id"]))
    assert re.search(r"^1 leg\(s\): 1 pstn/audio completed .*language ru$", shown.stdout, re.M), shown.stdout
    as_json = json.loads(hotline_cli(daemon_env, "case", "show", str(hop["case_id"]), "--format",
                                     "json").stdout)
    assert [h["language"] for h in as_json["hops"]] == ["ru"]
