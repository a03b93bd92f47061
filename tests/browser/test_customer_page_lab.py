"""The customer's page as a customer meets it, through the real lab: the hotline's look from
provisioning, the device check, the call in stages with its place in line moving as the caller
ahead is served, the agent named once they answer, and the rating after the talk kept on the case.
In Russian (the browser's language) on a laptop; the phone in portrait is in test_web_call_lab."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.browser import launch, playwright_session
from support.checks import rows
from support.cli import hotline_cli
from support.customer_page import laid_out, stage, unexplained_texts
from support.daemon import DaemonProcess
from support.fake_camera import BLUE, RED, write_y4m
from support.provisioning import BASE
from support.web_calls import agent_page, answer, poll, state_of, web_url, webrtc_agent

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

pytestmark = [pytest.mark.lab, pytest.mark.browser]

PHONE_NUMBER = "84950002299"
TITLE = "Поддержка «Пример»"
TEXT = "Отвечаем с 9 до 21 без выходных"
ACCENT = (0x0A, 0x7D, 0x3E)
LAPTOP = {"width": 1280, "height": 800}
BRANDED_DESK = pytest.mark.provision(BASE + f"""
[queues.wq]
ring_timeout = 20
max_wait = 300

[hotlines.webdesk]
entry = "queue:wq"
page_title = "{TITLE}"
page_text = "{TEXT}"
page_color = "#0a7d3e"

[numbers.web-desk]
hotline = "webdesk"
kind = "video"

[numbers."+74950002299"]
hotline = "webdesk"
lines = 4
""")


@pytest.fixture
def pw() -> Iterator[Playwright]:
    with playwright_session() as session:
        yield session


@BRANDED_DESK
def test_the_customer_page_in_russian_shows_its_place_in_line_moving_then_the_agent_then_takes_a_rating(
        daemon: DaemonProcess, daemon_env: dict[str, str], lab: Lab, tmp_path: Path, db: psycopg.Connection,
        rendered_files_removed_afterwards: Path, pw: Playwright) -> None:
    agent_id = webrtc_agent(daemon_env, tmp_path, "wq")
    for args in (("set", agent_id.name, "--display-name", "Анна Смирнова"),
                 ("pause", agent_id.name, "lunch")):
        done = hotline_cli(daemon_env, "agent", *args)
        assert done.returncode == 0, done.stderr  # named; busy elsewhere: every caller waits
    agent = agent_page(pw, write_y4m(tmp_path / "blue.y4m", BLUE), daemon_env, lab, agent_id)

    context = launch(pw, write_y4m(tmp_path / "red.y4m", RED)).new_context(
        locale="ru-RU", viewport=LAPTOP, permissions=["camera", "microphone"])
    customer = context.new_page()
    customer.goto(f"{web_url(daemon_env)}/call/web-desk")
    assert customer.title() == f"{TITLE} · hotline" and customer.get_attribute("html", "lang") == "ru"
    assert (customer.inner_text("h1"), customer.inner_text("#brand-text")) == (TITLE, TEXT)
    # The device check: the camera's picture, the devices to choose from, the microphone's level.
    poll(lambda: customer.inner_text("#device-message") == "Камера и микрофон работают: можно звонить.",
         "the device check done")
    assert customer.evaluate("document.getElementById('preview').srcObject.getVideoTracks().length") == 1
    assert customer.evaluate("window.hotlinePhone.customer.devices.cameras") >= 1
    poll(lambda: customer.evaluate("document.getElementById('mic-level').value") > 0,
         "the microphone's level")
    assert unexplained_texts(customer, "ru", TITLE, TEXT) == []
    laid_out(customer, tmp_path / "laptop-ready.png",
             ("h1", "#call", "#call-voice", "#preview", "#mic-select"), ACCENT)

    # The caller ahead comes now: its phone waits 20 s for the end of its call, and the page's
    # checks above may take that long on a busy machine.
    ahead = sipp.start_call(PHONE_NUMBER, "caller_until_bye.xml", caller="+79161234567", timeout_s=120)
    poll(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'join'"), "the caller ahead in line")
    customer.click("#call")
    poll(lambda: stage(customer) == ("Ваше место в очереди: 2", "Оператор ответит, как только освободится."),
         "the customer second in line, no estimate yet")
    assert customer.get_attribute("#stage", "aria-live") == "polite"

    assert hotline_cli(daemon_env, "agent", "unpause", agent_id.name).returncode == 0
    answer(agent)  # the caller ahead: answered, the customer moves up, and the queue has a hold time
    poll(lambda: stage(customer) == ("Вам ответят следующим", "Примерное ожидание: меньше минуты"),
         "the customer next in line, with an estimate")
    assert unexplained_texts(customer, "ru", TITLE, TEXT) == []
    agent.click("#hangup")
    assert sipp.finish(ahead).ok

    answer(agent)  # now the customer
    poll(lambda: stage(customer)[0] == "Вы разговариваете с оператором: Анна Смирнова", "the agent named")
    assert state_of(customer) == "in call"
    customer.click("#mute")
    assert customer.get_attribute("#mute", "aria-pressed") == "true"
    assert customer.evaluate("window.hotlinePhone.localStream.getAudioTracks()[0].enabled") is False
    assert customer.get_attribute("#camera", "aria-pressed") == "true"
    laid_out(customer, tmp_path / "laptop-talking.png",
             ("h1", "#stage", "#mute", "#camera", "#hangup", "#remote"), ACCENT)
    assert unexplained_texts(customer, "ru", TITLE, TEXT) == []

    customer.click("#hangup")
    poll(lambda: stage(customer)[0] == "Звонок завершён", "the call ended")
    assert all(customer.is_visible(s) for s in ("#rating", "#call-again", "#leave"))
    assert customer.evaluate("document.activeElement.dataset.score") == "1"  # the question has the focus
    customer.click("#rating-send")
    assert customer.inner_text("#rating-said") == "Сначала выберите оценку от 1 до 5."
    customer.click(".score[data-score='4']")
    customer.fill("#rating-comment", "Быстро и вежливо")
    customer.click("#rating-send")
    poll(lambda: customer.inner_text("#rating-said") == "Спасибо за оценку!", "the rating taken")
    assert unexplained_texts(customer, "ru", TITLE, TEXT) == []
    laid_out(customer, tmp_path / "laptop-ended.png", ("#call-again", "#leave"), ACCENT)

    [hop] = rows(db, "SELECT h.id, h.case_id FROM hops h WHERE h.channel_kind = 'webrtc'")
    [rating] = rows(db, "SELECT * FROM customer_ratings")
    assert (rating["case_id"], rating["hop_id"], rating["score"], rating["comment"]) == (
        hop["case_id"], hop["id"], 4, "Быстро и вежливо")
    again = customer.evaluate("""(hop) => fetch('/api/customer/rating', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({customer: window.hotlinePhone.customerId(), hop, score: 1})})
        .then((r) => r.status)""", hop["id"])
    assert again == 409 and len(rows(db, "SELECT id FROM customer_ratings")) == 1  # once per call
    shown = hotline_cli(daemon_env, "case", "show", str(hop["case_id"]))
    assert "rated 4 of 5 by the customer: Быстро и вежливо" in shown.stdout, shown.stdout
    as_json = json.loads(hotline_cli(daemon_env, "case", "show", str(hop["case_id"]), "--format",
                                     "json").stdout)
    assert [(r["hop_id"], r["score"]) for r in as_json["ratings"]] == [(hop["id"], 4)]
