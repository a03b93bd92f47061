"""The web pages without Asterisk: aiohttp's test client against make_app with an in-test backend."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, hdrs
from aiohttp.test_utils import TestClient, TestServer

from hotline.errors import ConfigError, HotlineError, WebRefusal
from hotline.web.app import SwitchCheck, WebConfig, make_app, start_web

WS_URL = "ws://127.0.0.1:8088/ws"
CONFIG = WebConfig(sip_ws_url=WS_URL, sip_domain="127.0.0.1")
VALID = "valid-token-0123456789abcdef"
EXPIRED = "expired-token-0123456789abcdef"
USED = "used-token-0123456789abcdef"
UNKNOWN = "unknown-token-0123456789abcdef"
CONFIG_RE = re.compile(r'<script type="application/json" id="config">(.*?)</script>', re.S)


class Backend:
    """Knows one video address, three tokens and one agent; records what it was asked."""

    def __init__(self) -> None:
        self.tokens = {VALID: SwitchCheck.VALID, EXPIRED: SwitchCheck.EXPIRED, USED: SwitchCheck.USED}
        self.checked: list[str] = []

    def video_addresses(self) -> frozenset[str]:
        return frozenset({"video-support", "bad address"})

    async def check_switch_token(self, token: str) -> SwitchCheck:
        self.checked.append(token)
        return self.tokens.get(token, SwitchCheck.UNKNOWN)

    async def agent_invite(self, endpoint: str, password: str, invitee: str) -> str:
        if (endpoint, password) != ("ivanov", "pässword"):
            raise WebRefusal(403, "wrong endpoint or password")
        if invitee != "petrov":
            raise WebRefusal(404, f"There is no agent {invitee}")
        return "Ringing Petrov"

    async def agent_switch(self, endpoint: str, password: str) -> str:
        if (endpoint, password) == ("ivanov", "pässword"):
            return f"/switch/{VALID}"
        if endpoint == "petrov":
            raise WebRefusal(409, "you are not in a call")
        raise WebRefusal(403, "wrong endpoint or password")

    def live_queues(self) -> list[dict[str, object]]:
        return [{"queue": "support", "waiting": 2}]


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
    f"{VALID}%0A", "%3Cscript%3E0123456789abcdefghij",
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
        "target": "switch", "extraHeaders": [f"X-Hotline-Switch: {VALID}"]}
    assert "Join the video call" in body and 'id="call"' in body
    assert backend.checked == [VALID]


async def test_a_provisioned_video_address_gets_the_click_to_call_page(client: TestClient) -> None:
    response = await client.get("/call/video-support")
    assert response.status == 200
    body = await response.text()
    config = page_config(body)
    assert config["target"] == "video-support" and config["extraHeaders"] == []
    assert "Call by video" in body
    for element in ('id="call"', 'id="hangup"', 'id="status"', 'id="local"', 'id="remote"', 'id="error"',
                    'id="name"', 'src="/static/hotline-phone.js"'):
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
                                 "switchApi": "/api/agent/switch", "inviteApi": "/api/agent/invite"}
    for element in ("endpoint", "password", "login", "status", "incoming", "answer", "decline", "hangup",
                    "switch", "switch-link", "local", "remote"):
        assert f'id="{element}"' in body


# "OnBhc3M=" is ":pass" (no endpoint), "/w==" is one byte that is not UTF-8.
@pytest.mark.parametrize("authorization", [None, "Bearer abc", "Basic !!!not-base64", "Basic OnBhc3M=",
                                           "Basic /w=="])
async def test_agent_switch_without_usable_credentials_is_challenged(
        client: TestClient, authorization: str | None) -> None:
    headers = {hdrs.AUTHORIZATION: authorization} if authorization else {}
    response = await client.post("/api/agent/switch", headers=headers)
    assert response.status == 401
    assert response.headers[hdrs.WWW_AUTHENTICATE].startswith("Basic realm=")
    assert "error" in await response.json()


@pytest.mark.parametrize(("user", "password", "status", "error"), [
    ("ivanov", "wrong", 403, "wrong endpoint or password"),
    ("petrov", "any", 409, "you are not in a call"),
])
async def test_agent_switch_refused_by_the_backend_gets_its_status_and_message(
        client: TestClient, user: str, password: str, status: int, error: str) -> None:
    response = await client.post("/api/agent/switch", headers=_basic(user, password))
    assert response.status == status
    assert await response.json() == {"error": error}
    assert hdrs.WWW_AUTHENTICATE not in response.headers


async def test_agent_switch_returns_the_link_as_a_whole_url_on_this_server(client: TestClient) -> None:
    response = await client.post("/api/agent/switch", headers=_basic("ivanov", "pässword"))
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
    assert (response.status, await response.json()) == (status, answer)
    unauthenticated = await client.post("/api/agent/invite", json={"agent": "petrov"})
    assert unauthenticated.status == 401


async def test_live_queues_are_served_as_json(client: TestClient) -> None:
    response = await client.get("/api/queues")
    assert await response.json() == [{"queue": "support", "waiting": 2}]


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
    config = WebConfig(sip_ws_url=WS_URL, sip_domain='x</script><script>alert("x")</script>')
    async with TestClient(TestServer(make_app(config, backend))) as test_client:
        body = await (await test_client.get("/call/video-support")).text()
    assert "<script>alert" not in body
    assert page_config(body)["domain"] == config.sip_domain


async def test_without_the_bundle_pages_render_and_say_how_to_build_it(
        backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hotline.web.app"):
        app = make_app(CONFIG, backend, static_dir=tmp_path)
    assert "The SIP client bundle is not built" in caplog.text
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/call/video-support")
        body = await response.text()
    assert response.status == 200
    assert "The SIP client bundle is not built: run `make setup`" in body
    assert "jssip.min.js" not in body


def test_a_sip_websocket_url_that_is_not_ws_is_a_config_error(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="SIP WebSocket URL"):
        make_app(WebConfig(sip_ws_url="http://127.0.0.1:8088/ws", sip_domain="127.0.0.1"), backend)


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
