"""Supervising from the agent page through the real lab: Chromium runs the page of an agent whose
row says supervisor; a sipp caller is answered by a sipp agent phone; the page lists the talk
(case, queue, agent, caller, talk time) from the daemon's own calls; Listen rings the supervisor's
sipp phone, which answers. Checked: the page's word, the snoop Asterisk has, the supervisions row
(supervising, asked_by agent:NAME), and that an agent who is no supervisor gets 403 and no list."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.agents import Agent, hotline, logged_in_agents, registered
from support.browser import launch, open_page, playwright_session
from support.checks import rows, wait_until
from support.daemon import DaemonProcess, ari_get
from support.fake_camera import BLUE, write_y4m
from support.provisioning import BASE

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

DIALLED = "84950002265"
CALLER = "+79165550265"
DESK = pytest.mark.provision(BASE + """
[queues.spv_desk]
ring_timeout = 15

[hotlines.spv]
entry = "queue:spv_desk"

[numbers."+74950002265"]
hotline = "spv"
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    """Last in every test's arguments (as in test_video_lab)."""
    with playwright_session() as session:
        yield session


def logged_in_page(pw: Playwright, tmp_path: Path, env: dict[str, str], lab: Lab, agent: Agent) -> Page:
    page = open_page(launch(pw, write_y4m(tmp_path / "blue.y4m", BLUE)), f"http://{env['HOTLINE_WEB_LISTEN']}/agent")
    page.fill("#endpoint", agent.name)
    page.fill("#password", agent.password)
    page.click("#login")
    wait_until(lambda: page.evaluate("window.hotlinePhone.state") == "registered", what="the page registered")
    return page


def phone_registered(lab: Lab, endpoint: str) -> bool:
    """The endpoint's one contact (max_contacts 1, remove_existing) is the sipp phone, not the page."""
    return registered(lab, endpoint) and "transport=ws" not in lab.asterisk_cli(
        f"pjsip show contacts like {endpoint}")


def api(env: dict[str, str], path: str, agent: Agent, body: dict[str, object]
        ) -> tuple[int, dict[str, object]]:
    """POST to the agent API as a client that is no browser (no Origin header), with the login."""
    login = base64.b64encode(f"{agent.name}:{agent.password}".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {login}"}
    url = f"http://{env['HOTLINE_WEB_LISTEN']}{path}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def snoops(env: dict[str, str]) -> list[str]:
    status, body = ari_get(env, "channels")
    assert status == 200
    return [c["name"] for c in json.loads(body) if c["name"].startswith("Snoop/")]


def listed(page: Page) -> list[dict[str, object]]:
    talks = page.evaluate("window.hotlinePhone.talks")
    return list(talks) if talks else []


SUPERVISORS_ONLY = {"error": "Supervising talks is for supervisors", "code": "supervisors_only", "fields": {}}


@DESK
def test_a_supervisor_listens_from_the_page_and_an_agent_who_is_none_gets_403(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    agent, boss = logged_in_agents(daemon_env, tmp_path, "spv", {"spv_desk": 0}, {})
    hotline(daemon_env, "agent", "set", boss.name, "--supervisor")
    page = logged_in_page(pw, tmp_path, daemon_env, lab, boss)
    wait_until(lambda: page.is_visible("#supervise"), what="the supervisor's page showing live talks")
    assert page.inner_text("#talks") == "no live talks"
    procs: list[subprocess.Popen[str]] = []
    try:
        # The supervisor's desk phone takes the endpoint's one contact over from the page's.
        procs += [sipp.agent_phone(a.name, a.password, ring_ms=200, timeout_s=90) for a in (agent, boss)]
        wait_until(lambda: registered(lab, agent.name) and phone_registered(lab, boss.name),
                   what="both sipp phones registered")
        procs.append(sipp.start_call(DIALLED, "caller_until_bye.xml", caller=CALLER, timeout_s=90))
        answered = "SELECT * FROM hops WHERE answered_at IS NOT NULL"
        hop = wait_until(lambda: next(iter(rows(db, answered)), None), what="the call answered by the agent")
        case_id = int(hop["case_id"])
        [talk] = wait_until(lambda: listed(page), what="the page listing the talk")
        assert {k: talk[k] for k in ("case", "queue", "agent")} == {
            "case": case_id, "queue": "spv_desk", "agent": agent.name}
        assert str(talk["caller"]).endswith(CALLER[2:]) and 0 <= int(str(talk["talk_s"])) < 30, talk
        row = page.locator(f'#talks tr[data-case="{case_id}"]')
        assert row.locator("td").nth(2).inner_text() == agent.name

        assert api(daemon_env, "/api/agent/talks", agent, {}) == (
            403, SUPERVISORS_ONLY)
        assert api(daemon_env, "/api/agent/supervise", agent, {"case": case_id, "mode": "listen"}) == (
            403, SUPERVISORS_ONLY)

        row.locator("button.supervise-listen").click()
        wait_until(lambda: page.evaluate("window.hotlinePhone.superviseMessage"), timeout_s=60,
                   what="the page telling the outcome")
        said = f"case {case_id}: {boss.name} listens (the customer and the agent do not hear them)"
        assert page.evaluate("window.hotlinePhone.superviseMessage") == said
        assert page.inner_text("#supervise-status") == said
        assert len(snoops(daemon_env)) == 1
        [supervision] = rows(db, "SELECT s.mode, s.outcome, s.asked_by, a.name AS supervisor"
                                 " FROM supervisions s JOIN agents a ON a.id = s.supervisor_id")
        assert supervision == {"mode": "listen", "outcome": "supervising", "asked_by": f"agent:{boss.name}",
                               "supervisor": boss.name}
        lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
        for proc in procs:
            assert sipp.finish(proc).ok
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    wait_until(lambda: rows(db, "SELECT outcome FROM supervisions") == [{"outcome": "ended"}],
               what="the supervision ended with the talk")
    other = logged_in_page(pw, tmp_path, daemon_env, lab, agent)
    wait_until(lambda: other.evaluate("window.hotlinePhone.talksStatus") == 403,
               what="the agent's page asked for the talks")
    assert other.is_hidden("#supervise") and other.evaluate("window.hotlinePhone.talks") is None
