"""Keep-alive HTTP/1.1 for ARI's REST calls (hotline.asterisk.http11), against a small local
server that answers the way Asterisk's HTTP server does, or misbehaves on purpose."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from hotline.asterisk.http11 import Http11Pool
from hotline.errors import HttpError

Answer = Callable[[bytes, bytes], bytes | None]  # (request head, body) -> raw answer; None: close


class Server:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                raw = self.answer(head, body)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if b"connection: close" in raw.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    def drop_idle_connections(self) -> None:
        """What Asterisk does to a keep-alive connection idle past session_keep_alive."""
        for writer in self._writers:
            writer.close()


def ok(body: bytes = b'{"ok": true}') -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def started(answer: Answer) -> tuple[Server, Http11Pool, asyncio.Server]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = Http11Pool("127.0.0.1", port, headers={"Authorization": "Basic eDp5"}, timeout=1.0)
    return server, pool, listener


async def test_requests_share_one_kept_alive_connection_and_carry_method_target_and_body() -> None:
    server, pool, listener = await started(lambda head, body: ok(b'{"echo": "' + body + b'"}'))
    async with listener:
        answer = await pool.request("POST", "/ari/channels?endpoint=PJSIP%2Fanna", b"hi")
        assert answer == (200, b'{"echo": "hi"}')
        assert await pool.request("GET", "/ari/asterisk/ping") == (200, b'{"echo": ""}')
        await pool.close()
    assert server.connections == 1
    first_head = server.requests[0][0].decode()
    assert first_head.startswith("POST /ari/channels?endpoint=PJSIP%2Fanna HTTP/1.1\r\n")
    assert "Authorization: Basic eDp5\r\n" in first_head and "Content-Length: 2\r\n" in first_head


async def test_concurrent_requests_each_get_their_own_answer() -> None:
    server, pool, listener = await started(lambda head, body: ok(body))
    async with listener:
        answers = await asyncio.gather(*(pool.request("POST", "/x", str(n).encode()) for n in range(20)))
        await pool.close()
    assert [body for _, body in answers] == [str(n).encode() for n in range(20)]


async def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_request_sent_once() -> None:
    server, pool, listener = await started(lambda head, body: ok())
    async with listener:
        await pool.request("GET", "/a")
        server.drop_idle_connections()
        await asyncio.sleep(0.05)
        assert await pool.request("POST", "/b") == (200, b'{"ok": true}')
        await pool.close()
    assert [head.split(b" ")[1] for head, _ in server.requests] == [b"/a", b"/b"]
    assert server.connections == 2


async def test_a_connection_closed_without_answer_on_a_fresh_connection_is_an_error_not_a_retry() -> None:
    server, pool, listener = await started(lambda head, body: None)
    async with listener:
        with pytest.raises(HttpError, match="without an answer"):
            await pool.request("POST", "/channels")
        await pool.close()
    assert len(server.requests) == 1


async def test_chunked_answers_are_joined_and_connection_close_is_honoured() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"4\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n")
    server, pool, listener = await started(lambda head, body: chunked)
    async with listener:
        assert await pool.request("GET", "/a") == (200, b'{"a": 1}')
        assert await pool.request("GET", "/b") == (200, b'{"a": 1}')
        await pool.close()
    assert server.connections == 2  # the first was closed as the server said


async def test_204_and_error_statuses_come_back_as_they_are() -> None:
    answers = iter([b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                    ok(b'{"message": "Channel not found"}').replace(b"200 OK", b"404 Not Found")])
    _, pool, listener = await started(lambda head, body: next(answers))
    async with listener:
        assert await pool.request("DELETE", "/moh") == (204, b"")
        assert await pool.request("GET", "/channels/x") == (404, b'{"message": "Channel not found"}')
        await pool.close()


async def test_unreachable_garbled_and_silent_servers_are_clear_errors() -> None:
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))
    port = closed_port.getsockname()[1]
    closed_port.close()
    with pytest.raises(HttpError, match="cannot connect"):
        await Http11Pool("127.0.0.1", port).request("GET", "/")
    _, pool, listener = await started(lambda head, body: b"SSH-2.0-OpenSSH\r\n\r\n")
    async with listener:
        with pytest.raises(HttpError, match="not an HTTP"):
            await pool.request("GET", "/")
        await pool.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with listener:
        pool = Http11Pool("127.0.0.1", listener.sockets[0].getsockname()[1], timeout=0.2)
        with pytest.raises(HttpError, match="no answer within"):
            await pool.request("GET", "/")
        await pool.close()
