"""The SIP WebSocket relay without Asterisk: the daemon's app (make_app with the relay) on a real
port, relaying to an aiohttp WebSocket server in the test that stands where Asterisk's /ws would
(tests/e2e/test_sip_ws_relay.py and the browser tests relay to the lab's real Asterisk)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import ClientSession, WSMsgType, WSServerHandshakeError, web

from hotline.config import SipWsLimits
from hotline.web.app import SwitchCheck, WebConfig, make_app, start_web
from hotline.web.client_address import client_key
from hotline.web.sip_ws_proxy import SipWsProxy


class Backend:
    """The pages' backend, with nothing in it: these tests are about /ws."""

    def video_addresses(self) -> frozenset[str]:
        return frozenset()

    async def check_switch_token(self, token: str) -> SwitchCheck:
        return SwitchCheck.UNKNOWN

    def authenticate(self, endpoint: str, password: str) -> bool:
        return False

    async def agent_switch(self, endpoint: str) -> str:
        raise AssertionError("not asked here")

    async def agent_invite(self, endpoint: str, invitee: str) -> str:
        raise AssertionError("not asked here")

    def live_queues(self) -> list[dict[str, object]]:
        return []


@dataclass
class Upstream:
    """Stands for Asterisk's /ws: answers every text frame with "echo: " + it, and notes the
    subprotocol each socket agreed on."""

    protocols: list[str | None] = field(default_factory=list)
    open: int = 0

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("sip",))
        await ws.prepare(request)
        self.protocols.append(ws.ws_protocol)
        self.open += 1
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await ws.send_str("echo: " + message.data)
        finally:
            self.open -= 1
        return ws


@dataclass
class Relay:
    url: str  # the daemon's /ws
    base: str  # the daemon's web pages
    upstream: Upstream
    proxy: SipWsProxy


async def ari_info(request: web.Request) -> web.Response:
    return web.json_response({"system": "asterisk"})  # what the web port must never lead to


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = await start_web(app, "127.0.0.1", 0)
    return runner, f"127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[Relay]:
    limits = getattr(request, "param", SipWsLimits(per_client=2, new_per_minute=5, total=10, silent_s=1.0))
    upstream = Upstream()
    asterisk = web.Application()
    asterisk.router.add_get("/ws", upstream.socket)
    asterisk.router.add_get("/ari/asterisk/info", ari_info)
    up_runner, up_host = await serve(asterisk)
    proxy = SipWsProxy(f"ws://{up_host}/ws", limits, frozenset({"127.0.0.1"}))
    config = WebConfig(sip_ws_url="ws://127.0.0.1:1/ws", sip_domain="127.0.0.1", origin="http://127.0.0.1")
    runner, host = await serve(make_app(config, Backend(), sip_proxy=proxy))
    try:
        yield Relay(f"ws://{host}/ws", f"http://{host}", upstream, proxy)
    finally:
        await runner.cleanup()
        await up_runner.cleanup()


async def test_frames_are_relayed_both_ways_with_the_sip_subprotocol(relay: Relay) -> None:
    async with ClientSession() as http, http.ws_connect(relay.url, protocols=("sip",)) as ws:
        assert ws.protocol == "sip"
        await ws.send_str("OPTIONS sip:x SIP/2.0\r\n\r\n")
        assert (await ws.receive_str(timeout=5)) == "echo: OPTIONS sip:x SIP/2.0\r\n\r\n"
    assert relay.upstream.protocols == ["sip"]


async def test_the_n_plus_first_socket_from_one_address_is_refused_and_logged_with_it(
        relay: Relay, caplog: pytest.LogCaptureFixture) -> None:
    async with ClientSession() as http:
        first = await http.ws_connect(relay.url, protocols=("sip",))
        second = await http.ws_connect(relay.url, protocols=("sip",))
        with pytest.raises(WSServerHandshakeError) as refused:
            await http.ws_connect(relay.url, protocols=("sip",))
        assert refused.value.status == 429
        assert "SIP WebSocket from 127.0.0.1 refused: 2 SIP WebSockets open from this address" in caplog.text
        await first.close()
        await asyncio.sleep(0.1)
        third = await http.ws_connect(relay.url, protocols=("sip",))  # a place was freed
        await third.send_str("REGISTER")
        assert (await third.receive_str(timeout=5)) == "echo: REGISTER"
        await second.close()
        await third.close()
    assert await _eventually(lambda: relay.upstream.open == 0)  # Asterisk's sockets closed with them


async def test_a_client_behind_a_trusted_proxy_is_counted_by_its_forwarded_address(relay: Relay) -> None:
    async with ClientSession() as http:  # three clients, one socket each, all through one proxy
        held = [await http.ws_connect(relay.url, protocols=("sip",),
                                      headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(1, 4)]
        with pytest.raises(WSServerHandshakeError):
            for _ in range(2):
                held.append(await http.ws_connect(relay.url, protocols=("sip",),
                                                  headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.1"}))
        assert len(held) == 4  # 203.0.113.1 had one; one more, then refused
        for ws in held:
            await ws.close()


@pytest.mark.parametrize("relay", [SipWsLimits(per_client=10, new_per_minute=3, total=10, silent_s=5)],
                         indirect=True)
async def test_new_sockets_per_address_per_minute_are_capped(relay: Relay,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    async with ClientSession() as http:
        for _ in range(3):
            await (await http.ws_connect(relay.url, protocols=("sip",))).close()
        with pytest.raises(WSServerHandshakeError) as refused:
            await http.ws_connect(relay.url, protocols=("sip",))
    assert refused.value.status == 429
    assert "3 new SIP WebSockets from this address in a minute (sip_ws_new_per_minute)" in caplog.text


@pytest.mark.parametrize("relay", [SipWsLimits(per_client=10, new_per_minute=50, total=3, silent_s=5)],
                         indirect=True)
async def test_the_total_is_capped_for_everyone(relay: Relay) -> None:
    async with ClientSession() as http:
        held = [await http.ws_connect(relay.url, protocols=("sip",),
                                      headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(3)]
        with pytest.raises(WSServerHandshakeError) as refused:
            await http.ws_connect(relay.url, protocols=("sip",), headers={"X-Forwarded-For": "198.51.100.99"})
        assert refused.value.status == 503
        assert relay.proxy.open_sockets == 3
        for ws in held:
            await ws.close()


async def test_a_socket_that_never_sends_is_closed_after_the_silent_time(
        relay: Relay, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with ClientSession() as http, http.ws_connect(relay.url, protocols=("sip",)) as ws:
        message = await ws.receive(timeout=5)
        assert message.type is WSMsgType.CLOSE
    assert "SIP WebSocket from 127.0.0.1 closed: nothing sent in 1 s (sip_ws_silent)" in caplog.text
    assert await _eventually(lambda: relay.upstream.open == 0 and relay.proxy.open_sockets == 0)


async def test_asterisks_http_server_is_not_reachable_through_the_web_port(relay: Relay) -> None:
    async with ClientSession() as http:
        for path in ("/ari/asterisk/info", "/ari/channels", "/ari/events?app=hotline", "/httpstatus"):
            async with http.get(relay.base + path) as response:
                assert response.status == 404, path
        async with http.get(relay.base + "/ws") as response:  # no upgrade asked
            assert response.status == 400


async def test_an_unreachable_asterisk_is_a_502_and_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    proxy = SipWsProxy("ws://127.0.0.1:9/ws", SipWsLimits(), frozenset())
    config = WebConfig("ws://127.0.0.1:1/ws", "127.0.0.1", origin="http://127.0.0.1")
    runner, host = await serve(make_app(config, Backend(), sip_proxy=proxy))
    try:
        async with ClientSession() as http:
            with pytest.raises(WSServerHandshakeError) as refused:
                await http.ws_connect(f"ws://{host}/ws", protocols=("sip",))
        assert refused.value.status == 502
        assert "SIP WebSocket from 127.0.0.1: Asterisk's ws://127.0.0.1:9/ws cannot be reached" in caplog.text
        assert proxy.open_sockets == 0
    finally:
        await runner.cleanup()


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64"
    assert client_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert client_key("198.51.100.7") == "198.51.100.7"


async def _eventually(check: object, timeout_s: float = 5.0) -> bool:
    assert callable(check)
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)
    return True
