"""The daemon's web port as the one public surface, against the lab's real Asterisk: SIP over the
daemon's /ws reaches Asterisk's SIP WebSocket and its answers come back; one address gets no more
than sip_ws_per_client sockets (the next is refused, and the log names the address); and ARI,
which shares Asterisk's HTTP server, cannot be reached through the web port."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientSession, WSServerHandshakeError

from support.checks import wait_until
from support.daemon import DaemonProcess, ari_get

pytestmark = pytest.mark.lab

PER_CLIENT = 3


@pytest.fixture
def daemon_env(daemon_env: dict[str, str]) -> dict[str, str]:
    return {**daemon_env, "HOTLINE_SIP_WS_PER_CLIENT": str(PER_CLIENT)}


def options(call_id: str) -> str:
    """An out-of-dialog OPTIONS as a browser's SIP client would send it over a WebSocket."""
    return ("OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/WS {call_id}.invalid;branch=z9hG4bK{call_id}\r\n"
            "Max-Forwards: 70\r\n"
            "To: <sip:127.0.0.1>\r\n"
            f"From: <sip:probe@{call_id}.invalid>;tag={call_id}\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n")


async def test_sip_through_the_web_port_reaches_asterisk_and_one_address_gets_its_cap_of_sockets(
        daemon: DaemonProcess, daemon_env: dict[str, str]) -> None:
    relay = f"ws://{daemon_env['HOTLINE_WEB_LISTEN']}/ws"
    async with ClientSession() as http:
        sockets = [await http.ws_connect(relay, protocols=("sip",)) for _ in range(PER_CLIENT)]
        for ws in sockets:
            call_id = uuid.uuid4().hex
            await ws.send_str(options(call_id))
            answer = await ws.receive_str(timeout=10)
            assert answer.startswith("SIP/2.0 ") and f"Call-ID: {call_id}" in answer, answer  # Asterisk's
        with pytest.raises(WSServerHandshakeError) as refused:
            await http.ws_connect(relay, protocols=("sip",))
        assert refused.value.status == 429
        for ws in sockets:
            await ws.close()
        again = await http.ws_connect(relay, protocols=("sip",))  # the closed ones freed their places
        await again.close()
    wait_until(lambda: "SIP WebSocket from 127.0.0.1 refused: 3 SIP WebSockets open from this address"
               in daemon.log(), what="the refusal logged with the client's address")


async def test_ari_is_not_reachable_through_the_web_port(daemon: DaemonProcess,
                                                          daemon_env: dict[str, str]) -> None:
    ari = urlsplit(daemon_env["HOTLINE_ARI_URL"])
    auth = {"Authorization": "Basic " + base64.b64encode(f"{ari.username}:{ari.password}".encode()).decode()}
    assert ari_get(daemon_env, "asterisk/info")[0] == 200  # with these credentials, on Asterisk's port
    web = f"http://{daemon_env['HOTLINE_WEB_LISTEN']}"
    async with ClientSession() as http:
        for path in ("/ari/asterisk/info", "/ari/channels", "/ari/applications/hotline", "/httpstatus",
                     "/ws/../ari/asterisk/info"):
            async with http.get(web + path, headers=auth) as response:
                assert response.status == 404, path
        async with http.post(web + "/ari/channels?endpoint=PJSIP/100&app=hotline", headers=auth) as response:
            assert response.status in (404, 405)
