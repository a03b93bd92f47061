"""A minimal SIP-over-WebSocket phone (RFC 7118) for the nodes lab: registers with digest at
Kamailio, receives requests and answers them. Enough to prove the WebSocket path; browsers
(JsSIP) speak the same frames."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field

import aiohttp


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class WsPhone:
    user: str
    password: str
    url: str  # ws://host:port
    domain: str
    host: str = field(default_factory=lambda: f"{uuid.uuid4().hex[:8]}.invalid")
    _dialog: tuple[str, str, str] = ("", "", "")  # Call-ID, From tag, extension of the call
    _session: aiohttp.ClientSession | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url, protocols=("sip",))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def register(self, expires: int = 120) -> str:
        """REGISTER, answering the digest challenge; the final status line."""
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        await self._send(self._register(call_id, tag, 1, expires, ""))
        reply = await self.receive()
        if not reply.startswith("SIP/2.0 401"):
            return reply.splitlines()[0]
        challenge = re.search(r'realm="([^"]+)".*?nonce="([^"]+)"', reply, re.S)
        assert challenge, reply
        realm, nonce = challenge[1], challenge[2]
        uri = f"sip:{self.domain}"
        response = _md5(f"{_md5(f'{self.user}:{realm}:{self.password}')}:{nonce}:"
                        f"{_md5(f'REGISTER:{uri}')}")
        auth = (f'Authorization: Digest username="{self.user}", realm="{realm}", '
                f'nonce="{nonce}", uri="{uri}", response="{response}", algorithm=MD5\r\n')
        await self._send(self._register(call_id, tag, 2, expires, auth))
        return (await self.receive()).splitlines()[0]

    def _register(self, call_id: str, tag: str, cseq: int, expires: int, auth: str) -> str:
        return (f"REGISTER sip:{self.domain} SIP/2.0\r\n"
                f"Via: SIP/2.0/WS {self.host};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"From: <sip:{self.user}@{self.domain}>;tag={tag}\r\n"
                f"To: <sip:{self.user}@{self.domain}>\r\nCall-ID: {call_id}\r\n"
                f"CSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{self.user}@{self.host};transport=ws>;expires={expires}\r\n"
                f"{auth}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")

    async def receive(self, timeout: float = 10) -> str:
        assert self._ws is not None
        msg = await self._ws.receive(timeout=timeout)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
        return msg.data if isinstance(msg.data, str) else msg.data.decode()

    async def reply(self, request: str, status: str) -> None:
        """Answer `request` with `status` (e.g. "486 Busy Here"), its Via, From, To (tagged),
        Call-ID and CSeq copied."""
        keep = [line for line in request.split("\r\n")
                if line.split(":", 1)[0].lower() in ("via", "from", "call-id", "cseq")]
        to = next(line for line in request.split("\r\n") if line.lower().startswith("to:"))
        await self._send(f"SIP/2.0 {status}\r\n" + "\r\n".join(keep) +
                         f"\r\n{to};tag={uuid.uuid4().hex[:8]}\r\nContent-Length: 0\r\n\r\n")

    async def _send(self, text: str) -> None:
        assert self._ws is not None
        await self._ws.send_str(text)

    async def call(self, extension: str, sdp: str) -> str:
        """INVITE `extension` with `sdp`; the final response (provisional ones skipped)."""
        self._dialog = (uuid.uuid4().hex, uuid.uuid4().hex[:8], extension)
        call_id, tag, _ = self._dialog
        await self._send(
            f"INVITE sip:{extension}@{self.domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/WS {self.host};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:{self.user}@{self.domain}>;tag={tag}\r\n"
            f"To: <sip:{extension}@{self.domain}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:{self.user}@{self.host};transport=ws>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp.encode())}\r\n\r\n{sdp}")
        while True:
            reply = await self.receive()
            if reply.startswith("SIP/2.0 1"):
                continue
            return reply

    async def ack_and_bye(self, answer: str) -> str:
        """ACK a 200 to our INVITE and hang up, both along its Record-Route set (reversed, as
        a caller uses it); the BYE's final status line."""
        call_id, tag, extension = self._dialog
        head = answer.split("\r\n\r\n", 1)[0].split("\r\n")
        routes = [line.split(":", 1)[1].strip() for line in head
                  if line.lower().startswith("record-route:")]
        to = next(line for line in head if line.lower().startswith("to:"))
        contact = re.search(r"<([^>]+)>", next(line for line in head
                                                if line.lower().startswith("contact:")))
        assert contact, answer
        route = "".join(f"Route: {r}\r\n" for r in reversed(routes))
        for cseq, method in ((1, "ACK"), (2, "BYE")):
            await self._send(
                f"{method} {contact[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/WS {self.host};branch=z9hG4bK{uuid.uuid4().hex}\r\n{route}"
                f"From: <sip:{self.user}@{self.domain}>;tag={tag}\r\n{to}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n")
        while True:
            reply = await self.receive()
            if reply.startswith("SIP/2.0") and "BYE" in reply.split("\r\nCSeq:", 1)[1][:20]:
                return reply.splitlines()[0]
