"""The web pages without Asterisk: aiohttp's test client against make_app with an in-test backend."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import ClientResponse, ClientSession, hdrs
from aiohttp.test_utils import TestClient, TestServer
from markupsafe import escape

from hotline.engine.customer_view import CustomerView
from hotline.engine.live_hub import LiveHub, Subscription
from hotline.errors import ConfigError, HotlineError, WebRefusal
from hotline.web import i18n
from hotline.web.app import HotlinePage, SwitchCheck, WebConfig, make_app, start_web
from hotline.web.guard import WebLimits
from hotline.web.said import refused

WS_URL = "ws://127.0.0.1:8088/ws"
ORIGIN = "https://video.example.ru"
SUPERVISOR_TOKEN = "wallboard-token-0123456789"
CONFIG = WebConfig(sip_ws_url=WS_URL, sip_domain="127.0.0.1", origin=ORIGIN,
                   supervisor_token=SUPERVISOR_TOKEN)
# Tokens as hotline.store.switches gives them out: 64 lowercase hex digits.
VALID = "0123456789abcdef" * 4
EXPIRED = "e" * 64
USED = "d" * 64
UNKNOWN = "f" * 64
CONFIG_RE = re.compile(r'<script type="application/json" id="config">(.*?)</script>', re.S)


class Backend:
    """Knows one video address, three tokens and two agents; records what it was asked."""

    def __init__(self) -> None:
        self.tokens = {VALID: SwitchCheck.VALID, EXPIRED: SwitchCheck.EXPIRED, USED: SwitchCheck.USED}
        self.switch_look = HotlinePage()  # the look of a valid switch link's page
        self.checked: list[str] = []
        self.logins: list[str] = []
        self.transfers: list[tuple[str | None, bool, str]] = []
        self.cameras: list[tuple[str, bool]] = []
        self.supervisions: list[tuple[str, int, str]] = []
        self.notes: list[tuple[str, int, str]] = []
        self.views: dict[str, CustomerView] = {}
        self.ratings: list[tuple[str, int, object, object]] = []
        self.hub = LiveHub()
        self.presences: list[tuple[str, str, str]] = []

    def video_addresses(self) -> frozenset[str]:
        return frozenset({"video-support", "russian", "bad address"})

    def hotline_page(self, address: str) -> HotlinePage | None:
        if address == "branded":
            return HotlinePage("Банк «Пример»", "Answers 9 to 18", "https://cdn.example.ru/logo.svg",
                               "#0a7d3e")
        if address == "russian":  # a hotline whose language is ru
            return HotlinePage(language="ru")
        return HotlinePage() if address in self.video_addresses() else None

    def customer_view(self, customer: str) -> CustomerView | None:
        return self.views.get(customer)

    def subscribe_customer(self) -> Subscription:
        return self.hub.subscribe("wallboard")

    async def rate_call(self, customer: str, hop_id: int, score: object, comment: object) -> None:
        self.ratings.append((customer, hop_id, score, comment))
        if hop_id == 9:
            raise WebRefusal(409, "this call has been rated already")

    async def switch_page(self, token: str) -> HotlinePage:
        return self.switch_look

    async def check_switch_token(self, token: str) -> SwitchCheck:
        self.checked.append(token)
        return self.tokens.get(token, SwitchCheck.UNKNOWN)

    def authenticate(self, endpoint: str, password: str) -> bool:
        self.logins.append(endpoint)
        return (endpoint, password) in {("ivanov", "pässword"), ("petrov", "any")}

    async def agent_invite(self, endpoint: str, invitee: str) -> str:
        assert endpoint == "ivanov"
        if invitee != "petrov":
            raise WebRefusal(404, f"There is no agent {invitee}")
        return "Ringing Petrov"

    async def agent_phone(self, endpoint: str, typed: str) -> str:
        if endpoint == "petrov":
            raise WebRefusal(409, "Your caller is on the phone already")
        return f"Calling {typed or '+79161234567'}"

    async def customer_phone(self, browser: str, token: str, typed: str) -> str:
        if browser == "0" * 16:
            raise WebRefusal(409, "You have no video call with an agent to move to the phone")
        return f"Calling {typed or 'you'} for {browser}{' by ' + token[:4] if token else ''}"

    async def agent_switch(self, endpoint: str) -> str:
        if endpoint == "petrov":
            raise WebRefusal(409, "you are not in a call")
        return f"/switch/{VALID}"

    def transfer_targets(self, endpoint: str) -> dict[str, list[str]]:
        assert endpoint == "ivanov"
        return {"queues": ["sales", "support"], "hotlines": ["city"], "agents": ["petrov"]}

    async def agent_transfer(self, endpoint: str, target: str | None, *, attended: bool, step: str) -> str:
        assert endpoint == "ivanov"
        self.transfers.append((target, attended, step))
        if target == "queue:billing":
            raise WebRefusal(409, "unknown transfer target 'queue:billing': there is no queue 'billing'")
        return f"{step} {target} attended={attended}"

    async def agent_recording(self, endpoint: str, action: str) -> str:
        if endpoint == "petrov":
            raise WebRefusal(409, "Your call is not being recorded")
        return f"recording {action}"

    def live_queues(self) -> list[dict[str, object]]:
        return [{"queue": "support", "waiting": 2}]

    def live_talks(self, endpoint: str) -> list[dict[str, object]]:
        if endpoint != "ivanov":  # the one supervisor
            raise WebRefusal(403, "Supervising talks is for supervisors")
        return [{"case": 7, "queue": "support", "agent": "petrov", "caller": "+79161234567", "talk_s": 65}]

    async def agent_supervise(self, endpoint: str, case_id: int, mode: str) -> str:
        if endpoint != "ivanov":
            raise WebRefusal(403, "Supervising talks is for supervisors")
        self.supervisions.append((endpoint, case_id, mode))
        if case_id == 8:
            raise WebRefusal(409, "case 8: listen refused: ivanov is busy in a call")
        return f"case {case_id}: ivanov {mode}"

    async def agent_note(self, endpoint: str, case_id: int, text: str) -> str:
        self.notes.append((endpoint, case_id, text))
        if case_id == 8:
            raise WebRefusal(403, "Case 8 is not one you have handled")
        return f"Note kept on case {case_id}"

    def customer_camera(self, customer: str, video: bool) -> bool:
        self.cameras.append((customer, video))
        return customer == "0123456789abcdef"  # the one customer with a live call

    def customer_hanging_up(self, customer: str) -> bool:
        self.cameras.append((customer, False))
        return customer == "0123456789abcdef"

    def agent_notice(self, endpoint: str) -> str:
        return "The customer's connection dropped" if endpoint == "ivanov" else ""

    async def agent_presence(self, endpoint: str, action: str, reason: str) -> str:
        self.presences.append((endpoint, action, reason))
        if reason == "nap":
            raise WebRefusal(409, "pause reason 'nap' is not one of the provisioned reasons: lunch")
        return "paused" if action == "pause" else "free"


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_app(CONFIG, backend))) as test_client:
        yield test_client


def page_config(body: str) -> dict[str, object]:
    match = CONFIG_RE.search(body)
    assert match, "no #config element"
    config: dict[str, object] = json.loads(match.group(1))
    return config


def assert_refusal_page(body: str, heading: str) -> None:
    assert heading in body
    assert WS_URL not in body and "<script" not in body and 'id="config"' not in body


@pytest.mark.parametrize(("token", "status", "heading"), [
    (UNKNOWN, 404, "This link is not valid"),
    (EXPIRED, 410, "This link has expired"),
    (USED, 410, "This link has already been used"),
])
async def test_a_switch_token_that_is_not_valid_gets_a_refusal_page_without_sip_settings(
        client: TestClient, token: str, status: int, heading: str) -> None:
    response = await client.get(f"/switch/{token}")
    assert response.status == status
    assert response.headers[hdrs.CACHE_CONTROL] == "no-store"
    assert_refusal_page(await response.text(), heading)


@pytest.mark.parametrize("forged", [
    "short", "x" * 65, "bad!chars-0123456789abcdef", "dots.are.not.allowed.0123456789",
    f"{VALID}%0A", "%3Cscript%3E0123456789abcdefghij", VALID[:-1], VALID + "0", VALID.upper(),
    "g" * 64, "valid-token-0123456789abcdef", VALID[:-2] + "%20",
])
async def test_a_forged_token_is_not_valid_and_never_reaches_the_backend(
        client: TestClient, backend: Backend, forged: str) -> None:
    response = await client.get(f"/switch/{forged}")
    assert response.status == 404
    assert_refusal_page(await response.text(), "This link is not valid")
    assert backend.checked == []


async def test_a_valid_token_gives_the_customer_page_that_calls_switch_with_the_token_header(
        client: TestClient, backend: Backend) -> None:
    response = await client.get(f"/switch/{VALID}")
    assert response.status == 200
    assert response.headers[hdrs.CACHE_CONTROL] == "no-store"
    body = await response.text()
    assert page_config(body) == {
        "role": "customer", "wsUrl": WS_URL, "domain": "127.0.0.1", "endpoint": "hotline-web",
        "target": "switch", "extraHeaders": [f"X-Hotline-Switch: {VALID}"],
        "phoneApi": "/api/customer/phone", "switchToken": VALID, "cameraApi": "/api/call/camera",
        "hangupApi": "/api/call/hangup", "eventsApi": "/api/customer/events",
        "ratingApi": "/api/customer/rating", "accentColor": ""}
    assert "Join the video call" in body and 'id="call"' in body
    assert backend.checked == [VALID]


async def test_a_provisioned_video_address_gets_the_click_to_call_page(client: TestClient) -> None:
    response = await client.get("/call/video-support")
    assert response.status == 200
    body = await response.text()
    config = page_config(body)
    assert config["target"] == "video-support" and config["extraHeaders"] == []
    assert "Call by video" in body
    for element in ('id="call"', 'id="hangup"', 'id="stage"', 'id="local"', 'id="remote"', 'id="error"',
                    'id="name"', 'id="mute"', 'id="preview"', 'id="rating"', 'src="/static/hotline-phone.js"',
                    'src="/static/hotline-customer.js"', 'id="hotline-texts"'):
        assert element in body


@pytest.mark.parametrize("address", ["no-such-hotline", "1video", "bad%20address", "a" * 64])
async def test_an_unknown_or_malformed_video_address_gets_a_404_page(
        client: TestClient, address: str) -> None:
    response = await client.get(f"/call/{address}")
    assert response.status == 404
    assert_refusal_page(await response.text(), "There is no such video hotline")


async def test_the_index_links_the_video_addresses_that_a_page_can_serve(client: TestClient) -> None:
    body = await (await client.get("/")).text()
    assert 'href="/call/video-support"' in body
    assert "bad address" not in body


async def test_the_agent_page_has_its_controls_and_the_switch_api_in_its_config(client: TestClient) -> None:
    body = await (await client.get("/agent")).text()
    assert page_config(body) == {"role": "agent", "wsUrl": WS_URL, "domain": "127.0.0.1",
                                 "switchApi": "/api/agent/switch", "inviteApi": "/api/agent/invite",
                                 "phoneApi": "/api/agent/phone",
                                 "transferApi": "/api/agent/transfer",
                                 "transferTargetsApi": "/api/agent/transfer-targets",
                                 "recordingApi": "/api/agent/recording",
                                 "noticeApi": "/api/agent/notice", "noteApi": "/api/agent/note",
                                 "eventsApi": "/api/agent/events",
                                 "talksApi": "/api/agent/talks", "superviseApi": "/api/agent/supervise",
                                 "presenceApi": "/api/agent/presence", "deskApi": "/api/agent/desk"}
    for element in ("endpoint", "password", "login", "status", "incoming", "answer", "decline", "hangup",
                    "switch", "switch-link", "local", "remote", "phone-number", "to-phone", "phone-status",
                    "transfer-target", "transfer-number",
                    "transfer", "consult", "transfer-complete", "transfer-cancel", "transfer-status",
                    "recording", "recording-status", "supervise", "talks", "supervise-status",
                    "note-case", "note-text", "note-save", "note-status", "pop-notes", "pop-passed",
                    "hold", "mute", "presence-state", "wrapup-left", "ready", "pause", "pause-reason",
                    "logoff", "desk-queues"):
        assert f'id="{element}"' in body
    assert re.search(r'<section id="supervise"[^>]*hidden', body)  # shown to a supervisor's login only


async def test_live_talks_are_a_supervisors_and_no_one_elses(client: TestClient) -> None:
    response = await client.post("/api/agent/talks", json={}, headers=_basic("ivanov", "pässword"))
    assert response.status == 200
    assert (await response.json())["talks"][0]["case"] == 7
    refused = await client.post("/api/agent/talks", json={}, headers=_basic("petrov", "any"))
    assert refused.status == 403
    assert await refused.json() == {"error": "Supervising talks is for supervisors"}
    assert (await client.post("/api/agent/talks", json={})).status == 401
    login = _basic("ivanov", "pässword")
    assert (await client.post("/api/agent/talks", json={}, headers=_basic("ivanov", "wrong"))).status == 401
    assert (await client.post("/api/agent/talks", data="{}", headers=login)).status == 415
    assert (await client.get("/api/agent/talks", headers=login)).status == 405


@pytest.mark.parametrize(("body", "status", "answer", "asked"), [
    ({"case": 7, "mode": "listen"}, 200, {"message": "case 7: ivanov listen"}, ("ivanov", 7, "listen")),
    ({"case": 7, "mode": "barge"}, 200, {"message": "case 7: ivanov barge"}, ("ivanov", 7, "barge")),
    ({"case": 8, "mode": "whisper"}, 409, {"error": "case 8: listen refused: ivanov is busy in a call"},
     ("ivanov", 8, "whisper")),
    ({"case": 7, "mode": "spy"}, 400, {"error": "a supervision's mode is listen, whisper or barge"}, None),
    ({"case": 7}, 400, {"error": "a supervision's mode is listen, whisper or barge"}, None),
    ({"case": "7", "mode": "listen"}, 400, {"error": "name the case of the talk to supervise"}, None),
    ({"case": True, "mode": "listen"}, 400, {"error": "name the case of the talk to supervise"}, None),
    ({"case": 0, "mode": "listen"}, 400, {"error": "name the case of the talk to supervise"}, None),
    ({"case": 2**63, "mode": "listen"}, 400, {"error": "name the case of the talk to supervise"}, None),
    ([7, "listen"], 400, {"error": "name the case of the talk to supervise"}, None),
])
async def test_agent_supervise_checks_its_body_and_gets_the_backends_answer(
        client: TestClient, backend: Backend, body: object, status: int, answer: dict[str, str],
        asked: tuple[str, int, str] | None) -> None:
    response = await client.post("/api/agent/supervise", json=body, headers=_basic("ivanov", "pässword"))
    assert (response.status, _english(await response.json())) == (status, answer)
    assert backend.supervisions == ([asked] if asked else [])


async def test_agent_supervise_is_refused_to_an_agent_who_is_no_supervisor_and_to_no_login(
        client: TestClient, backend: Backend) -> None:
    body = {"case": 7, "mode": "listen"}
    refused = await client.post("/api/agent/supervise", json=body, headers=_basic("petrov", "any"))
    assert (refused.status, await refused.json()) == (403, {"error": "Supervising talks is for supervisors"})
    assert (await client.post("/api/agent/supervise", json=body)).status == 401
    elsewhere = {**_basic("ivanov", "pässword"), "Origin": "https://evil.example"}
    assert (await client.post("/api/agent/supervise", json=body, headers=elsewhere)).status == 403
    assert backend.supervisions == []


@pytest.mark.parametrize(("body", "status", "answer", "asked"), [
    ({"case": 7, "text": "call back\ntomorrow"}, 200, {"message": "Note kept on case 7"},
     ("ivanov", 7, "call back\ntomorrow")),
    ({"case": 8, "text": "x"}, 403, {"error": "Case 8 is not one you have handled"}, ("ivanov", 8, "x")),
    ({"case": 7}, 400, {"error": "write the note's text"}, None),
    ({"case": 7, "text": ["x"]}, 400, {"error": "write the note's text"}, None),
    ({"case": "7", "text": "x"}, 400, {"error": "name the case the note is about"}, None),
    ({"case": True, "text": "x"}, 400, {"error": "name the case the note is about"}, None),
    ({"case": 0, "text": "x"}, 400, {"error": "name the case the note is about"}, None),
])
async def test_agent_note_checks_its_body_and_gets_the_backends_answer(
        client: TestClient, backend: Backend, body: object, status: int, answer: dict[str, str],
        asked: tuple[str, int, str] | None) -> None:
    response = await client.post("/api/agent/note", json=body, headers=_basic("ivanov", "pässword"))
    assert (response.status, _english(await response.json())) == (status, answer)
    assert backend.notes == ([asked] if asked else [])


async def test_agent_note_needs_a_login_and_the_pages_own_origin(client: TestClient,
                                                                backend: Backend) -> None:
    body = {"case": 7, "text": "x"}
    assert (await client.post("/api/agent/note", json=body)).status == 401
    assert (await client.post("/api/agent/note", json=body, headers=_basic("ivanov", "wrong"))).status == 401
    elsewhere = {**_basic("ivanov", "pässword"), "Origin": "https://evil.example"}
    assert (await client.post("/api/agent/note", json=body, headers=elsewhere)).status == 403
    assert backend.notes == []


# "OnBhc3M=" is ":pass" (no endpoint), "/w==" is one byte that is not UTF-8.
@pytest.mark.parametrize("authorization", [None, "Bearer abc", "Basic !!!not-base64", "Basic OnBhc3M=",
                                           "Basic /w=="])
async def test_agent_switch_without_usable_credentials_is_refused_without_a_challenge(
        client: TestClient, authorization: str | None) -> None:
    headers = {hdrs.AUTHORIZATION: authorization} if authorization else {}
    response = await client.post("/api/agent/switch", json={}, headers=headers)
    assert response.status == 401
    assert hdrs.WWW_AUTHENTICATE not in response.headers  # a browser would cache what it answered
    assert "error" in await response.json()


@pytest.mark.parametrize(("user", "password", "status", "error"), [
    ("ivanov", "wrong", 401, "Wrong agent or password"),
    ("nobody", "pässword", 401, "Wrong agent or password"),
    ("petrov", "any", 409, "you are not in a call"),
])
async def test_agent_switch_refused_gets_its_status_and_message_and_never_a_challenge(
        client: TestClient, user: str, password: str, status: int, error: str) -> None:
    response = await client.post("/api/agent/switch", json={}, headers=_basic(user, password))
    assert response.status == status
    assert _english(await response.json()) == {"error": error}
    assert hdrs.WWW_AUTHENTICATE not in response.headers


async def test_agent_switch_returns_the_link_as_a_whole_url_on_this_server(client: TestClient) -> None:
    response = await client.post("/api/agent/switch", json={}, headers=_basic("ivanov", "pässword"))
    assert response.status == 200
    assert response.headers[hdrs.CACHE_CONTROL] == "no-store"
    link = (await response.json())["link"]
    assert link == str(client.make_url(f"/switch/{VALID}"))


@pytest.mark.parametrize(("body", "status", "answer"), [
    ({"agent": "petrov"}, 200, {"message": "Ringing Petrov"}),
    ({"agent": "sidorov"}, 404, {"error": "There is no agent sidorov"}),
    ({"agent": "petrov\nX-Injected: 1"}, 400, {"error": "name the agent to bring in"}),
    ({"agent": 7}, 400, {"error": "name the agent to bring in"}),
    ([], 400, {"error": "name the agent to bring in"}),
])
async def test_agent_invite_names_a_plain_agent_and_gets_the_backends_answer(
        client: TestClient, body: object, status: int, answer: dict[str, str]) -> None:
    response = await client.post("/api/agent/invite", json=body, headers=_basic("ivanov", "pässword"))
    assert (response.status, _english(await response.json())) == (status, answer)
    unauthenticated = await client.post("/api/agent/invite", json={"agent": "petrov"})
    assert unauthenticated.status == 401


@pytest.mark.parametrize(("user", "body", "status", "answer"), [
    ("ivanov", {"number": "8 916 123-45-67"}, 200, {"message": "Calling 8 916 123-45-67"}),
    ("ivanov", {}, 200, {"message": "Calling +79161234567"}),  # the case's own number
    ("petrov", {"number": ""}, 409, {"error": "Your caller is on the phone already"}),
    ("ivanov", {"number": "+7916\nX-Injected: 1"}, 400,
     {"error": "type the customer's telephone number (digits, +, spaces)"}),
    ("ivanov", {"number": 79161234567}, 400,
     {"error": "type the customer's telephone number (digits, +, spaces)"}),
])
async def test_agent_phone_takes_a_typed_number_or_none_and_gets_the_backends_answer(
        client: TestClient, user: str, body: object, status: int, answer: dict[str, str]) -> None:
    password = "pässword" if user == "ivanov" else "any"
    response = await client.post("/api/agent/phone", json=body, headers=_basic(user, password))
    assert (response.status, _english(await response.json())) == (status, answer)
    assert (await client.post("/api/agent/phone", json={})).status == 401


@pytest.mark.parametrize(("body", "status", "answer"), [
    ({"customer": "0123456789abcdef", "number": "8 916 123-45-67"}, 200,
     {"message": "Calling 8 916 123-45-67 for 0123456789abcdef"}),
    ({"customer": "0123456789abcdef", "token": VALID}, 200,
     {"message": "Calling you for 0123456789abcdef by 0123"}),
    ({"customer": "0" * 16, "number": ""}, 409,
     {"error": "You have no video call with an agent to move to the phone"}),
    ({"customer": "web:0123", "number": ""}, 400, {"error": "This page cannot move the call: reload it"}),
    ({"customer": "0123456789abcdef", "token": "abc"}, 400,
     {"error": "This page cannot move the call: reload it"}),
    ({"customer": "0123456789abcdef", "number": "+7916;x"}, 400,
     {"error": "Type your telephone number (digits, +, spaces)"}),
    ([], 400, {"error": "This page cannot move the call: reload it"}),
])
async def test_customer_phone_needs_the_pages_own_id_or_link_and_a_plain_number(
        client: TestClient, body: object, status: int, answer: dict[str, str]) -> None:
    response = await client.post("/api/customer/phone", json=body)
    assert (response.status, _english(await response.json())) == (status, answer)


async def test_customer_phone_from_another_origin_is_refused(client: TestClient) -> None:
    response = await client.post("/api/customer/phone", json={"customer": "0123456789abcdef"},
                                 headers={hdrs.ORIGIN: "https://evil.example"})
    assert response.status == 403


@pytest.mark.parametrize(("body", "status", "answer", "asked"), [
    ({"target": "queue:sales"}, 200, {"message": "begin queue:sales attended=False"},
     ("queue:sales", False, "begin")),
    ({"target": "agent:petrov", "attended": True}, 200, {"message": "begin agent:petrov attended=True"},
     ("agent:petrov", True, "begin")),
    ({"target": "8 (916) 123-45-67"}, 200, {"message": "begin 8 (916) 123-45-67 attended=False"},
     ("8 (916) 123-45-67", False, "begin")),
    ({"step": "complete", "target": "ignored"}, 200, {"message": "complete None attended=True"},
     (None, True, "complete")),
    ({"step": "cancel"}, 200, {"message": "cancel None attended=True"}, (None, True, "cancel")),
    ({"target": "queue:billing"}, 409,
     {"error": "unknown transfer target 'queue:billing': there is no queue 'billing'"},
     ("queue:billing", False, "begin")),
    ({"target": "sales\nX-Injected: 1"}, 400,
     {"error": "name the transfer's target: a queue, a hotline, an agent or a number"}, None),
    ({"step": "later"}, 400, {"error": "a transfer's step is begin, complete or cancel"}, None),
    ({"target": "sales", "attended": "yes"}, 400,
     {"error": "a transfer's step is begin, complete or cancel"}, None),
    ([], 400, {"error": "name the transfer's target"}, None),
])
async def test_agent_transfer_checks_its_body_and_gets_the_backends_answer(
        client: TestClient, backend: Backend, body: object, status: int, answer: dict[str, str],
        asked: tuple[str | None, bool, str] | None) -> None:
    response = await client.post("/api/agent/transfer", json=body, headers=_basic("ivanov", "pässword"))
    assert (response.status, _english(await response.json())) == (status, answer)
    assert backend.transfers == ([asked] if asked else [])
    assert (await client.post("/api/agent/transfer", json={"target": "sales"})).status == 401


@pytest.mark.parametrize(("agent", "body", "status", "answer"), [
    ("ivanov", {"action": "pause"}, 200, {"message": "recording pause"}),
    ("ivanov", {"action": "resume"}, 200, {"message": "recording resume"}),
    ("ivanov", {"action": "start"}, 200, {"message": "recording start"}),
    ("ivanov", {"action": "stop"}, 400, {"error": "a recording's action is start, pause or resume"}),
    ("ivanov", [], 400, {"error": "a recording's action is start, pause or resume"}),
    ("petrov", {"action": "pause"}, 409, {"error": "Your call is not being recorded"}),
])
async def test_agent_recording_checks_its_body_and_gets_the_backends_answer(
        client: TestClient, agent: str, body: object, status: int, answer: dict[str, str]) -> None:
    password = "pässword" if agent == "ivanov" else "any"
    response = await client.post("/api/agent/recording", json=body, headers=_basic(agent, password))
    assert (response.status, _english(await response.json())) == (status, answer)
    assert (await client.post("/api/agent/recording", json={"action": "pause"})).status == 401


async def test_transfer_targets_lists_what_the_agent_may_pick(client: TestClient) -> None:
    response = await client.post("/api/agent/transfer-targets", json={}, headers=_basic("ivanov", "pässword"))
    assert (await response.json()) == {"targets": {"queues": ["sales", "support"], "hotlines": ["city"],
                                                   "agents": ["petrov"]}}
    assert (await client.post("/api/agent/transfer-targets", json={})).status == 401


@pytest.mark.parametrize("path", ["/", "/call/video-support", f"/switch/{VALID}", f"/switch/{USED}",
                                  "/agent", "/static/hotline-phone.js", "/nowhere"])
async def test_every_response_carries_a_csp_that_allows_scripts_from_this_server_only(
        client: TestClient, path: str) -> None:
    response = await client.get(path)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self' ws://127.0.0.1:8088"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_the_page_config_is_json_so_a_hostile_setting_cannot_close_the_script(
        backend: Backend) -> None:
    config = replace(CONFIG, sip_domain='x</script><script>alert("x")</script>')
    async with TestClient(TestServer(make_app(config, backend))) as test_client:
        body = await (await test_client.get("/call/video-support")).text()
    assert "<script>alert" not in body
    assert page_config(body)["domain"] == config.sip_domain


async def test_without_the_bundle_pages_render_and_say_how_to_get_it_back(
        backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hotline.web.app"):
        app = make_app(CONFIG, backend, static_dir=tmp_path)
    assert "The SIP client bundle is missing" in caplog.text
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/call/video-support")
        body = await response.text()
        agent_body = await (await test_client.get("/agent")).text()
    assert response.status == 200
    # The customer is told the page cannot call now (the log tells the operator how to fix it).
    assert "The page cannot place calls right now: try again later" in body
    assert "jssip.min.js" not in body
    assert ("The SIP client bundle is missing: reinstall hotline (the package ships it), or `make web` "
            "in a checkout") in agent_body


def test_a_sip_websocket_url_that_is_not_ws_is_a_config_error(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="SIP WebSocket URL"):
        make_app(replace(CONFIG, sip_ws_url="http://127.0.0.1:8088/ws"), backend)


async def test_start_web_listens_and_serves(backend: Backend) -> None:
    runner = await start_web(make_app(CONFIG, backend), "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/call/video-support"
        async with ClientSession() as session, session.get(url) as response:
            assert response.status == 200
    finally:
        await runner.cleanup()


async def test_start_web_on_a_taken_port_says_which(backend: Backend) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HotlineError, match=f"cannot listen on 127.0.0.1:{port}"):
            await start_web(make_app(CONFIG, backend), "127.0.0.1", port)


def _basic(user: str, password: str) -> dict[str, str]:
    return {hdrs.AUTHORIZATION: "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- the guard: origin, JSON only, failed logins, rates, outages ----------------------------------

TIGHT = WebLimits(burst=1000, rate_per_s=1000.0, source_failures=5, agent_failures=3, window_s=60,
                  lockout_s=120)


@pytest.fixture
async def tight_client(backend: Backend) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_app(CONFIG, backend, limits=TIGHT))) as test_client:
        yield test_client


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://video.example.ru"])
async def test_an_api_post_from_another_origin_is_refused_before_the_password_is_checked(
        client: TestClient, backend: Backend, origin: str) -> None:
    response = await client.post("/api/agent/switch", json={},
                                 headers={**_basic("ivanov", "pässword"), hdrs.ORIGIN: origin})
    assert response.status == 403
    assert "error" in await response.json()
    assert backend.logins == []


async def test_an_api_post_from_the_pages_own_origin_is_served(client: TestClient) -> None:
    response = await client.post("/api/agent/switch", json={},
                                 headers={**_basic("ivanov", "pässword"), hdrs.ORIGIN: ORIGIN})
    assert response.status == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
async def test_an_api_post_that_is_not_json_is_refused_with_415(
        client: TestClient, backend: Backend, content_type: str | None) -> None:
    headers = _basic("ivanov", "pässword")
    if content_type:
        headers[hdrs.CONTENT_TYPE] = content_type
    response = await client.post("/api/agent/invite", data=b'{"agent": "petrov"}', headers=headers)
    assert response.status == 415
    assert _english(await response.json()) == {"error": "Send the request as application/json"}
    assert backend.logins == []


async def test_json_with_a_charset_is_json(client: TestClient) -> None:
    response = await client.post("/api/agent/invite", data=b'{"agent": "petrov"}', headers={
        **_basic("ivanov", "pässword"), hdrs.CONTENT_TYPE: "application/json; charset=utf-8"})
    assert (response.status, await response.json()) == (200, {"message": "Ringing Petrov"})


async def test_a_failed_login_is_logged_with_its_source_and_endpoint_in_one_line(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hotline.web.guard"):
        await client.post("/api/agent/switch", json={}, headers=_basic("ivanov", "wrong"))
        await client.post("/api/agent/invite", json={}, headers=_basic("x\nforged line", "wrong"))
    assert [r.getMessage() for r in caplog.records] == [
        "agent login failed: source=127.0.0.1 endpoint=ivanov api=/api/agent/switch",
        "agent login failed: source=127.0.0.1 endpoint=? api=/api/agent/invite"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


async def test_after_repeated_failures_for_an_agent_even_the_right_password_gets_429_unchecked(
        tight_client: TestClient, backend: Backend) -> None:
    for _ in range(3):
        assert (await tight_client.post("/api/agent/switch", json={},
                                        headers=_basic("ivanov", "wrong"))).status == 401
    backend.logins.clear()
    response = await tight_client.post("/api/agent/switch", json={}, headers=_basic("ivanov", "pässword"))
    assert response.status == 429
    assert 110 <= int(response.headers[hdrs.RETRY_AFTER]) <= 120
    assert backend.logins == []  # the password was not checked
    other = await tight_client.post("/api/agent/switch", json={}, headers=_basic("petrov", "any"))
    assert other.status == 409  # another agent from the same source still gets in


async def test_after_repeated_failures_from_one_source_every_endpoint_gets_429(
        tight_client: TestClient, backend: Backend) -> None:
    for n in range(5):
        await tight_client.post("/api/agent/switch", json={}, headers=_basic(f"guess-{n}", "wrong"))
    response = await tight_client.post("/api/agent/switch", json={}, headers=_basic("petrov", "any"))
    assert response.status == 429 and hdrs.RETRY_AFTER in response.headers
    assert "guess" not in "".join(backend.logins[5:])


async def test_a_burst_of_requests_from_one_address_gets_429_with_retry_after(backend: Backend) -> None:
    limits = WebLimits(burst=5, rate_per_s=0.01)
    async with TestClient(TestServer(make_app(CONFIG, backend, limits=limits))) as test_client:
        statuses = [(await test_client.get(f"/switch/{UNKNOWN}")).status for _ in range(8)]
        refused = await test_client.get("/call/video-support")
        page = await refused.text()
    assert statuses == [404] * 5 + [429] * 3
    assert refused.status == 429 and int(refused.headers[hdrs.RETRY_AFTER]) >= 1
    assert "Too many requests" in page and "<script" not in page
    assert backend.checked == [UNKNOWN] * 5  # the refused ones never reached the backend


async def test_the_live_queues_need_an_agent_login_or_the_supervisor_token(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    assert (await client.get("/api/queues")).status == 401
    for headers in (_basic("ivanov", "pässword"), {hdrs.AUTHORIZATION: f"Bearer {SUPERVISOR_TOKEN}"}):
        response = await client.get("/api/queues", headers=headers)
        assert (response.status, await response.json()) == (200, [{"queue": "support", "waiting": 2}])
    with caplog.at_level(logging.WARNING, logger="hotline.web.guard"):
        wrong = await client.get("/api/queues", headers={hdrs.AUTHORIZATION: f"Bearer {SUPERVISOR_TOKEN}x"})
    assert wrong.status == 401 and hdrs.WWW_AUTHENTICATE not in wrong.headers
    assert "supervisor token refused: source=127.0.0.1 api=/api/queues" in caplog.text
    assert (await client.get("/api/queues", headers=_basic("ivanov", "wrong"))).status == 401


async def test_without_a_supervisor_token_set_no_bearer_token_opens_the_queues(backend: Backend) -> None:
    async with TestClient(TestServer(make_app(replace(CONFIG, supervisor_token=""), backend))) as test_client:
        for token in ("", "x", SUPERVISOR_TOKEN):
            response = await test_client.get("/api/queues", headers={hdrs.AUTHORIZATION: f"Bearer {token}"})
            assert response.status == 401, token


class DownBackend(Backend):
    """The database is away (what DaemonWebBackend makes of psycopg's errors), or worse."""

    async def check_switch_token(self, token: str) -> SwitchCheck:
        if token == UNKNOWN:
            raise RuntimeError("a bug with a secret in it")
        raise refused(503, "link_retry")


async def test_a_switch_page_while_the_database_is_away_is_a_plain_503_page() -> None:
    async with TestClient(TestServer(make_app(CONFIG, DownBackend()))) as test_client:
        response = await test_client.get(f"/switch/{VALID}")
        body = await response.text()
    assert response.status == 503 and response.headers[hdrs.RETRY_AFTER] == "5"
    assert "The service is unavailable for a moment" in body and "Try the link again" in body
    assert "<script" not in body and "Traceback" not in body


async def test_an_unexpected_error_is_a_plain_500_page_without_its_details(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="hotline.web.app"):
        async with TestClient(TestServer(make_app(CONFIG, DownBackend()))) as test_client:
            response = await test_client.get(f"/switch/{UNKNOWN}")
            body = await response.text()
    assert response.status == 500 and "Something went wrong" in body
    assert "secret" not in body and "Traceback" not in body
    assert "a bug with a secret in it" in caplog.text  # the operator sees it in the log


async def test_a_request_body_larger_than_the_api_needs_is_refused(client: TestClient) -> None:
    headers = {**_basic("ivanov", "pässword"), hdrs.CONTENT_TYPE: "application/json"}
    response = await client.post("/api/agent/invite", data=b"{" + b" " * 20_000 + b"}", headers=headers)
    assert response.status == 413


async def test_the_customer_page_offers_a_voice_call_and_a_camera_button_and_names_the_camera_api(
        client: TestClient) -> None:
    body = await (await client.get("/call/video-support")).text()
    assert 'id="call-voice"' in body and 'id="camera"' in body
    assert page_config(body)["cameraApi"] == "/api/call/camera"
    switch_page = await (await client.get(f"/switch/{VALID}")).text()
    assert 'id="call-voice"' not in switch_page  # a switch link continues a call by video


async def test_a_customer_page_tells_the_camera_of_its_own_live_call(
        client: TestClient, backend: Backend) -> None:
    for camera, video in (("on", True), ("off", False)):
        response = await client.post("/api/call/camera", headers={hdrs.ORIGIN: ORIGIN},
                                     json={"customer": "0123456789abcdef", "camera": camera})
        assert (response.status, await response.json()) == (202, {"camera": camera})
        assert backend.cameras[-1] == ("0123456789abcdef", video)
    response = await client.post("/api/call/camera", json={"customer": "fedcba9876543210", "camera": "on"},
                                 headers={hdrs.ORIGIN: ORIGIN})
    answer = _english(await response.json())
    assert (response.status, answer) == (404, {"error": "You have no call in progress"})


@pytest.mark.parametrize("body", [{"customer": "0123456789ABCDEF", "camera": "on"},
                                  {"customer": "0123456789abcdef", "camera": "maybe"},
                                  {"customer": "0123456789abcdef0", "camera": "on"}, {"camera": "on"}, []])
async def test_a_camera_word_that_is_not_one_is_refused_before_the_daemon_hears_it(
        client: TestClient, backend: Backend, body: object) -> None:
    response = await client.post("/api/call/camera", json=body, headers={hdrs.ORIGIN: ORIGIN})
    assert response.status == 400
    assert backend.cameras == []


async def test_a_camera_word_from_another_site_is_refused(client: TestClient, backend: Backend) -> None:
    response = await client.post("/api/call/camera", json={"customer": "0123456789abcdef", "camera": "on"},
                                 headers={hdrs.ORIGIN: "https://evil.example"})
    assert response.status == 403 and backend.cameras == []


async def test_the_customer_page_says_it_hangs_up_for_its_own_live_call_only(
        client: TestClient, backend: Backend) -> None:
    ok = await client.post("/api/call/hangup", json={"customer": "0123456789abcdef"},
                           headers={hdrs.ORIGIN: ORIGIN})
    assert (ok.status, await ok.json()) == (202, {"hanging_up": True})
    none = await client.post("/api/call/hangup", json={"customer": "fedcba9876543210"},
                             headers={hdrs.ORIGIN: ORIGIN})
    assert none.status == 404
    bad = await client.post("/api/call/hangup", json={"customer": "x"}, headers={hdrs.ORIGIN: ORIGIN})
    assert bad.status == 400
    assert backend.cameras == [("0123456789abcdef", False), ("fedcba9876543210", False)]


async def test_the_agent_notice_needs_the_agents_login_and_says_what_the_backend_says(
        client: TestClient) -> None:
    anonymous = await client.post("/api/agent/notice", json={}, headers={hdrs.ORIGIN: ORIGIN})
    assert anonymous.status == 401 and hdrs.WWW_AUTHENTICATE not in anonymous.headers
    for user, password, notice in (("ivanov", "pässword", "The customer's connection dropped"),
                                   ("petrov", "any", "")):
        response = await client.post("/api/agent/notice", json={},
                                     headers={**_basic(user, password), hdrs.ORIGIN: ORIGIN})
        assert (response.status, await response.json()) == (200, {"notice": notice})


# -- the customer page: its hotline's look, its language, its own call's stages, its rating -------

TEXTS_RE = re.compile(r'<script type="application/json" id="hotline-texts">(.*?)</script>', re.S)


async def test_a_branded_hotline_page_shows_its_name_text_and_logo_and_lets_in_only_that_logos_origin(
        client: TestClient) -> None:
    response = await client.get("/call/branded")
    body = await response.text()
    assert "<title>Банк «Пример» · hotline</title>" in body and '<h1 id="heading">Банк «Пример»</h1>' in body
    assert '<p id="brand-text" class="brand-text">Answers 9 to 18</p>' in body
    assert 'src="https://cdn.example.ru/logo.svg" alt="Банк «Пример» logo"' in body
    assert page_config(body)["accentColor"] == "#0a7d3e"
    csp = response.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.example.ru;" in csp and "script-src 'self';" in csp
    plain = await client.get("/call/video-support")  # no logo: no other origin
    assert "img-src 'self' data:;" in plain.headers["Content-Security-Policy"]
    assert "brand-logo" not in await plain.text() and "Video call" in await plain.text()


@pytest.mark.parametrize(("accept", "lang", "said"), [
    ("ru-RU,ru;q=0.9,en;q=0.8", "ru", ["Видеозвонок", "Позвонить по видео", "Позвонить голосом",
                                       "Перед звонком", "Как прошёл разговор?", "Без звука", "Завершить"]),
    ("de,en;q=0.5", "en", ["Video call", "Call by video", "Call by voice", "Before you call",
                           "How was your call?", "Mute", "Hang up"]),
])
async def test_the_customer_page_speaks_the_browsers_language_with_every_text_from_the_catalogue(
        client: TestClient, accept: str, lang: str, said: list[str]) -> None:
    body = await (await client.get("/call/video-support", headers={hdrs.ACCEPT_LANGUAGE: accept})).text()
    assert f'<html lang="{lang}">' in body
    for text in said:
        assert text in body, text
    assert "customer." not in TEXTS_RE.sub("", body).replace("hotline-customer.js", "")  # no key shown raw
    texts = json.loads(TEXTS_RE.search(body).group(1))  # type: ignore[union-attr]
    assert texts["customer.stage.waiting"] == ("Ваше место в очереди: {position}" if lang == "ru"
                                               else "Your place in line: {position}")


async def test_the_customer_stream_follows_only_the_asking_pages_own_call(
        client: TestClient, backend: Backend) -> None:
    assert (await client.get("/api/customer/events?customer=nothex")).status == 400
    response = await client.get("/api/customer/events?customer=0123456789abcdef")
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert await next_event(response) == ("stage", {"stage": "none"})
    backend.views["fedcba9876543210"] = CustomerView("talking", 5, 3, agent="Someone else")  # another page's
    backend.views["0123456789abcdef"] = CustomerView("waiting", 4, 2, position=3, wait_s=95)
    backend.hub.publish("wallboard", {"changed": "now"})
    assert await next_event(response) == ("stage", {"stage": "waiting", "hop": 4, "position": 3, "wait_s": 95,
                                                    "agent": ""})
    backend.views["0123456789abcdef"] = CustomerView("talking", 4, 2, agent="Анна")
    backend.hub.publish("wallboard", {"changed": "now"})
    assert await next_event(response) == ("stage", {"stage": "talking", "hop": 4, "position": None,
                                                    "wait_s": None, "agent": "Анна"})
    response.close()


async def test_a_rating_is_posted_with_the_pages_id_and_its_leg_once(
        client: TestClient, backend: Backend) -> None:
    headers = {hdrs.ORIGIN: ORIGIN}
    page = "0123456789abcdef"
    ok = await client.post("/api/customer/rating", headers=headers,
                           json={"customer": "0123456789abcdef", "hop": 4, "score": 5, "comment": "Спасибо"})
    assert ok.status == 201
    again = await client.post("/api/customer/rating", headers=headers,
                              json={"customer": "0123456789abcdef", "hop": 9, "score": 4})
    assert again.status == 409
    for bad in ({"customer": "x", "hop": 4, "score": 5}, {"customer": page, "hop": True, "score": 5}):
        assert (await client.post("/api/customer/rating", headers=headers, json=bad)).status == 400
    elsewhere = await client.post("/api/customer/rating", json={"customer": page, "hop": 4, "score": 1},
                                  headers={hdrs.ORIGIN: "https://evil.example"})
    assert elsewhere.status == 403
    assert backend.ratings == [("0123456789abcdef", 4, 5, "Спасибо"), ("0123456789abcdef", 9, 4, None)]


async def next_event(response: ClientResponse) -> tuple[str, dict[str, object]]:
    """The next event of a stream (keepalive comments skipped): its kind and its data."""
    kind, data = "", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and kind:
            return kind, json.loads(data)


async def test_a_customers_refused_page_speaks_their_language(client: TestClient) -> None:
    russian = {hdrs.ACCEPT_LANGUAGE: "ru-RU,ru;q=0.9"}
    unknown = await client.get("/call/no-such-hotline", headers=russian)
    assert unknown.status == 404
    body = await unknown.text()
    assert '<html lang="ru">' in body and "<h1>Такой видеолинии нет</h1>" in body
    expired = await client.get(f"/switch/{EXPIRED}", headers=russian)
    assert expired.status == 410 and "<h1>Срок действия ссылки истёк</h1>" in await expired.text()
    english = await client.get(f"/switch/{USED}")
    assert "<h1>This link has already been used</h1>" in await english.text()


@pytest.mark.parametrize(("accept", "lang", "title"), [
    ("ru-RU,ru;q=0.9,en;q=0.8", "ru", "Рабочее место оператора"),
    ("de, en;q=0.5", "en", "Agent's desk"),
    (None, "en", "Agent's desk"),
])
async def test_the_agent_page_speaks_the_browsers_language_with_its_own_texts_only(
        client: TestClient, accept: str | None, lang: str, title: str) -> None:
    headers = {hdrs.ACCEPT_LANGUAGE: accept} if accept else {}
    body = await (await client.get("/agent", headers=headers)).text()
    assert f'<html lang="{lang}">' in body
    assert f"<title>{escape(title)} · hotline</title>" in body
    match = TEXTS_RE.search(body)
    assert match is not None
    texts = json.loads(match.group(1))
    assert texts == {k: v for k, v in i18n.catalogue(lang).items() if k.startswith(("agent.", "said."))}
    assert texts["agent.title"] == title


@pytest.mark.parametrize(("body", "status", "said"), [
    ({"action": "pause", "reason": "lunch"}, 200, {"state": "paused"}),
    ({"action": "ready"}, 200, {"state": "free"}),
    ({"action": "logout"}, 200, {"state": "free"}),
    ({"action": "pause", "reason": "nap"}, 409,
     {"error": "pause reason 'nap' is not one of the provisioned reasons: lunch"}),
    ({"action": "pause", "reason": "  "}, 400, {"error": "a pause needs a reason"}),
    ({"action": "pause", "reason": 5}, 400, {"error": "a pause needs a reason"}),
    ({"action": "sleep"}, 400, {"error": "a presence's action is ready, pause or logout"}),
])
async def test_the_desk_changes_presence_with_a_clear_answer_to_every_bad_request(
        client: TestClient, backend: Backend, body: dict[str, object], status: int,
        said: dict[str, str]) -> None:
    response = await client.post("/api/agent/presence", json=body, headers=_basic("ivanov", "pässword"))
    assert (response.status, _english(await response.json())) == (status, said)
    asked = [(e, a) for e, a, _ in backend.presences]
    assert asked == ([] if status == 400 else [("ivanov", body["action"])])


async def test_a_hotline_with_a_language_gets_its_page_in_it_whatever_the_browser_asks(
        client: TestClient) -> None:
    english = {hdrs.ACCEPT_LANGUAGE: "en-US,en;q=0.9"}
    body = await (await client.get("/call/russian", headers=english)).text()
    assert '<html lang="ru">' in body and "Позвонить по видео" in body
    plain = await (await client.get("/call/video-support", headers=english)).text()
    assert '<html lang="en">' in plain


async def test_a_page_carries_its_own_texts_only(client: TestClient) -> None:
    customer = await (await client.get("/call/video-support")).text()
    texts = json.loads(TEXTS_RE.search(customer).group(1))  # type: ignore[union-attr]
    assert texts and all(key.startswith(("customer.", "said.")) for key in texts)
    assert "bundle is missing" not in customer  # the agent page's message is not the customer's
def _english(answer: object) -> object:
    """An API answer without its code and fields: the English text existing clients read."""
    if isinstance(answer, dict):
        return {k: v for k, v in answer.items() if k not in ("code", "fields")}
    return answer


RU = {hdrs.ACCEPT_LANGUAGE: "ru-RU,ru;q=0.9"}


@pytest.mark.parametrize(("language", "said"), [
    ("en", "name the case the note is about"),
    ("ru", "укажите обращение, к которому относится заметка"),
])
async def test_a_refusal_carries_a_code_the_agent_page_says_in_its_language(
        client: TestClient, language: str, said: str) -> None:
    response = await client.post("/api/agent/note", json={"case": 0, "text": "x"},
                                 headers=_basic("ivanov", "pässword"))
    answer = await response.json()
    assert (response.status, answer) == (400, {"error": "name the case the note is about",
                                               "code": "note_no_case", "fields": {}})
    page = await (await client.get("/agent", headers={hdrs.ACCEPT_LANGUAGE: language})).text()
    match = TEXTS_RE.search(page)
    assert match is not None
    assert json.loads(match.group(1))["said." + answer["code"]] == said


async def test_a_refusal_with_fields_fills_them_in_both_languages(client: TestClient) -> None:
    response = await client.post("/api/agent/note", json={"case": 1}, headers={
        **_basic("ivanov", "pässword"), hdrs.CONTENT_TYPE: "text/plain"})
    answer = await response.json()
    assert (response.status, answer["code"]) == (415, "send_json")
    assert answer["fields"] == {"type": "application/json"}
    assert answer["error"] == i18n.text("en", "said.send_json", **answer["fields"])
    assert i18n.text("ru", "said.send_json", **answer["fields"]) == "Отправьте запрос как application/json"


async def test_a_switch_page_has_its_cases_hotlines_look_and_language(
        client: TestClient, backend: Backend) -> None:
    backend.switch_look = HotlinePage("Банк «Пример»", "Мы на связи", "", "#123456", "ru")
    response = await client.get(f"/switch/{VALID}", headers={hdrs.ACCEPT_LANGUAGE: "en"})
    body = await response.text()
    assert response.status == 200
    assert '<html lang="ru">' in body and '<h1 id="heading">Банк «Пример»</h1>' in body
    assert "Мы на связи" in body and page_config(body)["accentColor"] == "#123456"
    assert page_config(body)["switchToken"] == VALID


async def test_a_switch_page_with_several_nodes_sends_the_node_of_the_cases_bridge(
        client: TestClient, backend: Backend) -> None:
    """Kamailio steers the video leg by it to the node where the phone leg's bridge is."""
    backend.switch_look = HotlinePage(node="b")
    config = page_config(await (await client.get(f"/switch/{VALID}")).text())
    assert config["extraHeaders"] == [f"X-Hotline-Switch: {VALID}", "X-Hotline-Node: b"]
    backend.switch_look = HotlinePage()  # one node: no such header
    config = page_config(await (await client.get(f"/switch/{VALID}")).text())
    assert config["extraHeaders"] == [f"X-Hotline-Switch: {VALID}"]


async def test_a_switch_page_of_a_hotline_without_a_look_speaks_the_browsers_language(
        client: TestClient) -> None:
    body = await (await client.get(f"/switch/{VALID}", headers=RU)).text()
    assert '<html lang="ru">' in body and i18n.text("ru", "customer.switch_title") in body


async def test_the_index_speaks_the_browsers_language(client: TestClient) -> None:
    body = await (await client.get("/", headers=RU)).text()
    assert '<html lang="ru">' in body and "<h1>Видео горячие линии</h1>" in body
    assert "Операторам: вход здесь" in body and "Agents" not in body


async def test_a_refused_page_speaks_the_browsers_language() -> None:
    async with TestClient(TestServer(make_app(CONFIG, DownBackend()))) as test_client:
        response = await test_client.get(f"/switch/{VALID}", headers=RU)
        body = await response.text()
    assert response.status == 503
    assert "Сервис временно недоступен" in body and "Откройте ссылку ещё раз через минуту." in body


@pytest.mark.parametrize(("header", "lang", "heading", "column"), [
    ("ru-RU,ru;q=0.9", "ru", "Табло", "Отвечено сегодня"),
    ("en-US", "en", "Wallboard", "Answered today"),
])
async def test_the_wallboard_speaks_the_browsers_language(
        client: TestClient, header: str, lang: str, heading: str, column: str) -> None:
    body = await (await client.get("/wallboard", headers={hdrs.ACCEPT_LANGUAGE: header})).text()
    assert f'<html lang="{lang}">' in body and f"<h1>{heading}</h1>" in body and f"<th>{column}</th>" in body
    match = TEXTS_RE.search(body)
    assert match is not None
    texts = json.loads(match.group(1))
    assert texts["wallboard.status.reconnecting"] == i18n.text(lang, "wallboard.status.reconnecting")
    assert texts["said.wrong_supervisor_token"] == i18n.text(lang, "said.wrong_supervisor_token")


async def test_the_customer_page_carries_the_texts_of_the_daemons_answers(client: TestClient) -> None:
    body = await (await client.get("/call/video-support", headers=RU)).text()
    match = TEXTS_RE.search(body)
    assert match is not None
    texts = json.loads(match.group(1))
    assert texts["said.customer_calling"] == (
        "Звоним на {number}: ответьте на телефоне, и этот видеозвонок завершится")
    assert texts["said.customer_not_a_number"] == i18n.text("ru", "said.customer_not_a_number")
