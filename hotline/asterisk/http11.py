"""Keep-alive HTTP/1.1 for ARI's REST calls: small JSON requests to one Asterisk, many per call.

Why not aiohttp here (it still carries the events WebSocket): the engine makes about nine REST
calls per contact, and aiohttp's general machinery (URL objects, cookie jar, tracing, header
multidicts) costs twice the CPU of the request itself; at a hundred calls a second that was a
tenth of a core. This speaks only what Asterisk's HTTP server speaks: one request at a time
per connection, Content-Length or chunked bodies, `Connection: close`.

A connection Asterisk closed while idle (session_keep_alive in http.conf) is found out when the
request gets no answer at all; the request is then sent once more on a fresh connection
(Asterisk never read it, so nothing was done twice).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

from hotline.errors import HttpError


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = field(default=False)

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class Http11Pool:
    def __init__(self, host: str, port: int, *, tls: bool = False, headers: Mapping[str, str] | None = None,
                 timeout: float = 10.0, max_connections: int = 100) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._ssl = ssl.create_default_context() if tls else None
        fixed = {"Host": f"{host}:{port}", **(headers or {})}
        self._fixed_headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def request(self, method: str, target: str, body: bytes | None = None,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """(status, body) of one request; `target` is the encoded path and query. HttpError when
        the server is unreachable, times out or answers something that is not HTTP/1.1."""
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed_headers}"
        if body:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        else:
            head += "Content-Length: 0\r\n\r\n"
        message = head.encode() + (body or b"")
        async with self._slots:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._send(message)
            except TimeoutError:
                raise HttpError(f"no answer within {self.timeout:.0f} s") from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise HttpError(f"connection lost ({exc.__class__.__name__})") from None

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _send(self, message: bytes) -> tuple[int, bytes]:
        conn = await self._connection()
        try:
            try:
                status, body, keep = await self._exchange(conn, message)
            except _NoAnswerSignal:
                if not conn.reused:
                    raise HttpError("connection closed without an answer") from None
                conn.close()  # closed by the server while idle: it never read the request
                conn = await self._connect()
                status, body, keep = await self._exchange(conn, message)
        except BaseException:
            conn.close()  # in an unknown state: never reused
            raise
        if keep:
            conn.reused = True
            self._idle.append(conn)
        else:
            conn.close()
        return status, body

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return await self._connect()

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl)
        except OSError as exc:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, message: bytes) -> tuple[int, bytes, bool]:
        try:
            conn.writer.write(message)
            head = await conn.reader.readuntil(b"\r\n\r\n")  # one await for the whole head
        except ConnectionError:
            raise _NoAnswerSignal() from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _NoAnswerSignal() from None
            raise HttpError("connection closed in the middle of the headers") from None
        except asyncio.LimitOverrunError:
            raise HttpError("answer headers too long") from None
        status_line, _, header_block = head.partition(b"\r\n")
        status = _status_of(status_line)
        headers = _parse_headers(header_block)
        keep = headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, await _chunked(conn.reader), keep
        length = headers.get("content-length")
        if length is None:  # the body runs to the end of the connection
            return status, await conn.reader.read(), False
        try:
            return status, await conn.reader.readexactly(int(length)), keep
        except (ValueError, asyncio.IncompleteReadError):
            raise HttpError("answer cut short or malformed Content-Length") from None


class _NoAnswerSignal(Exception):
    """Control flow, not an error: the connection was closed before any answer, so the request
    was never read and may be sent again on a fresh connection."""


def _status_of(line: bytes) -> int:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP/1.x answer: {line[:80]!r}")
    return int(parts[1])


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


async def _trailers(reader: asyncio.StreamReader) -> None:
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    try:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                await _trailers(reader)  # ended by an empty line
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)  # CRLF after each chunk
    except (ValueError, asyncio.IncompleteReadError):
        raise HttpError("malformed chunked answer") from None
