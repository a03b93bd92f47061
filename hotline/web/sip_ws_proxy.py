"""The pages' SIP WebSocket, relayed: browsers open `/ws` on the daemon's web port, and each socket
is relayed frame by frame to Asterisk's own `/ws` on loopback.

Asterisk's HTTP server also carries ARI (originate anywhere: toll fraud), and every WebSocket held
there counts against its `sessionlimit`, which ARI shares: a thousand idle upgrades would cut the
daemon off. So that server stays on loopback and only this relay faces browsers, with limits per
client address (sockets open at once, new ones per minute), a total well below `sessionlimit`,
and a deadline for a socket's first message. Asterisk sees every relayed socket as 127.0.0.1 on
a port of its own, so the client's address lives here, in the log lines of every refusal.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from hotline.config import SipWsLimits
from hotline.web.client_address import client_address, client_key

log = logging.getLogger(__name__)

SUBPROTOCOL = "sip"  # RFC 7118; JsSIP asks for it and Asterisk requires it
MAX_MESSAGE = 64 * 1024  # a SIP message with an SDP offer of several video streams is ~10 kB
HEARTBEAT_S = 30.0  # a browser that vanished without a close frees its place within this
UPSTREAM_TIMEOUT_S = 5.0
WINDOW_S = 60.0  # "new sockets per minute"
SWEEP_AT = 4096  # clients remembered before those with nothing open or recent are forgotten


@dataclass
class _Client:
    open: int = 0
    opened: collections.deque[float] = field(default_factory=collections.deque)  # monotonic times

    def forget_before(self, cutoff: float) -> None:
        while self.opened and self.opened[0] < cutoff:
            self.opened.popleft()


class SipWsProxy:
    """`handle` is the aiohttp handler of GET /ws; `close` ends every relayed socket."""

    def __init__(self, upstream: str, limits: SipWsLimits, trusted_proxies: frozenset[str]) -> None:
        self.upstream = upstream  # Asterisk's SIP WebSocket, e.g. "ws://127.0.0.1:8088/ws"
        self.limits = limits
        self.trusted_proxies = trusted_proxies
        self._clients: dict[str, _Client] = {}
        self._open = 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._http: aiohttp.ClientSession | None = None

    @property
    def open_sockets(self) -> int:
        return self._open

    def install(self, app: web.Application) -> None:
        app.router.add_get("/ws", self.handle)
        app.on_shutdown.append(lambda _: self.close())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        client = client_address(request, self.trusted_proxies)
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="a SIP WebSocket (subprotocol sip) is expected here\n")
        key = client_key(client)
        refusal = self._admit(key)
        if refusal is not None:
            status, why = refusal
            log.warning("SIP WebSocket from %s refused: %s", client, why)
            return web.Response(status=status, text=why + "\n", headers={"Retry-After": "60"})
        try:
            return await self._relay(request, ws, client)
        finally:
            self._release(key)

    def _admit(self, key: str) -> tuple[int, str] | None:
        """Count a new socket of client `key` in, or say why not: (HTTP status, reason)."""
        now = time.monotonic()
        if len(self._clients) >= SWEEP_AT:
            self._sweep(now)
        if self._open >= self.limits.total:
            return 503, f"{self._open} SIP WebSockets open in all (sip_ws_total)"
        client = self._clients.setdefault(key, _Client())
        client.forget_before(now - WINDOW_S)
        if client.open >= self.limits.per_client:
            return 429, f"{client.open} SIP WebSockets open from this address (sip_ws_per_client)"
        if len(client.opened) >= self.limits.new_per_minute:
            return 429, f"{len(client.opened)} new SIP WebSockets from this address in a minute " \
                        f"(sip_ws_new_per_minute)"
        client.open += 1
        client.opened.append(now)
        self._open += 1
        return None

    def _release(self, key: str) -> None:
        self._open -= 1
        client = self._clients.get(key)
        if client is not None:
            client.open -= 1

    def _sweep(self, now: float) -> None:
        for key, client in list(self._clients.items()):
            client.forget_before(now - WINDOW_S)
            if client.open == 0 and not client.opened:
                del self._clients[key]

    async def _relay(self, request: web.Request, ws: web.WebSocketResponse, client: str
                     ) -> web.StreamResponse:
        try:
            upstream = await self._session().ws_connect(
                self.upstream, protocols=(SUBPROTOCOL,), max_msg_size=MAX_MESSAGE,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=UPSTREAM_TIMEOUT_S))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("SIP WebSocket from %s: Asterisk's %s cannot be reached: %s", client, self.upstream,
                      str(exc) or type(exc).__name__)
            return web.Response(status=502, text="the SIP server cannot be reached\n")
        self._sockets.add(ws)
        try:
            await ws.prepare(request)
            await _first_of(self._browser_to_asterisk(ws, upstream, client),
                            _asterisk_to_browser(upstream, ws))
        finally:
            self._sockets.discard(ws)
            await upstream.close()
            await ws.close()
        return ws

    async def _browser_to_asterisk(self, ws: web.WebSocketResponse,
                                   upstream: aiohttp.ClientWebSocketResponse, client: str) -> None:
        """Frames from the browser on to Asterisk; a socket silent from the start is closed."""
        try:
            first = await ws.receive(timeout=self.limits.silent_s)
        except TimeoutError:
            log.warning("SIP WebSocket from %s closed: nothing sent in %.0f s (sip_ws_silent)", client,
                        self.limits.silent_s)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"silent")
            return
        message = first
        while await _forward(message, upstream):
            message = await ws.receive()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S))
        return self._http

    async def close(self) -> None:
        """Idempotent: every relayed socket ends (going away), and the upstream session closes."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._http is not None:
            await self._http.close()
            self._http = None


async def _asterisk_to_browser(upstream: aiohttp.ClientWebSocketResponse, ws: web.WebSocketResponse) -> None:
    while await _forward(await upstream.receive(), ws):
        pass


async def _forward(message: aiohttp.WSMessage, to: web.WebSocketResponse | aiohttp.ClientWebSocketResponse
                   ) -> bool:
    """Send a data frame on; False when `message` ends the relay (a close, an error)."""
    if to.closed:
        return False
    if message.type is WSMsgType.TEXT:
        await to.send_str(message.data)
    elif message.type is WSMsgType.BINARY:
        await to.send_bytes(message.data)
    else:
        return message.type not in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
    return True


async def _first_of(*coros: Coroutine[Any, Any, None]) -> None:
    """Run both directions until either ends; the other is cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError):
                await task
