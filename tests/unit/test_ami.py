"""AMI session: unsafe values, typed events from recorded Asterisk 22 transcripts, timeouts,
refused logins and reconnects, against a tiny in-process AMI server.

The transcripts in tests/unit/transcripts/ are bytes Asterisk 22.10.1 sent on the wire (CRLF
line ends); the fake server replays them, rewriting only the ActionID.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hotline.asterisk import ami
from hotline.asterisk.ami import AmiSession, build_action, check_ami_value
from hotline.asterisk.ami_events import (
    AmiEvent,
    AnyAmiEvent,
    ContactStatus,
    DeviceStateChange,
    FullyBooted,
    Reload,
    Shutdown,
    parse_event,
)
from hotline.config import Endpoint
from hotline.errors import AmiAuthError, AmiError, InvalidEvent, UnsafeAmiValue

TRANSCRIPTS = Path(__file__).parent / "transcripts"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
SECRET = "s3cret"
WAIT = 5.0  # upper bound for anything a test waits for; the tests finish far below it


def transcript(name: str) -> bytes:
    data = (TRANSCRIPTS / f"{name}.ami").read_bytes()
    return data[len(BANNER) :] if data.startswith(BANNER) else data


def answered(recorded: bytes, action_id: str) -> bytes:
    return re.sub(rb"ActionID: [^\r]*", b"ActionID: " + action_id.encode(), recorded)


def parse_block(block: bytes) -> dict[str, str]:
    lines = block.decode().split("\r\n")
    return dict(line.split(": ", 1) for line in lines if ": " in line)


class FakeAsterisk:
    """Banner, Login against one secret, recorded replies; an action without one is never answered."""

    def __init__(self) -> None:
        self.secret = SECRET
        self.answer_login = True
        # Lower-case action name -> recorded reply.
        self.replies = {
            "ping": transcript("ping"),
            "logoff": transcript("logoff"),
            "coresettings": transcript("core_settings"),
        }
        self.logins = 0
        self.actions: list[dict[str, str]] = []
        self.received = bytearray()
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection (Asterisk going down)."""
        if self._server is not None:
            self._server.close()
        self.drop()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def endpoint(self, secret: str = SECRET) -> Endpoint:
        return Endpoint("ami", "127.0.0.1", self.port, "hotline", secret)

    def push(self, data: bytes) -> None:
        """Send unsolicited bytes (events) to every logged-in client."""
        for writer in self.writers:
            writer.write(data)

    def drop(self) -> None:
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()

    def sent(self, action: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action", "").lower() == action.lower()]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        buffer = b""
        try:
            while data := await reader.read(65536):
                self.received += data
                buffer += data
                while b"\r\n\r\n" in buffer:
                    block, buffer = buffer.split(b"\r\n\r\n", 1)
                    self._answer(parse_block(block), writer)
        except ConnectionError:
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        self.actions.append(action)
        name, action_id = action.get("Action", "").lower(), action.get("ActionID", "")
        if name == "login":
            self._login(action, writer)
        elif name in self.replies:
            writer.write(answered(self.replies[name], action_id))
            if name == "logoff":
                writer.close()

    def _login(self, action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        self.logins += 1
        if not self.answer_login:
            return
        if action.get("Secret") != self.secret:
            # Asterisk answers, then hangs up on the client.
            writer.write(answered(transcript("login_refused"), action["ActionID"]))
            writer.close()
            return
        writer.write(answered(transcript("login_accepted"), action["ActionID"]))
        self.writers.add(writer)


class Recorder:
    """Collects what the session delivers: events and state changes, in one ordered stream."""

    def __init__(self, session: AmiSession) -> None:
        self.items: asyncio.Queue[AnyAmiEvent | bool] = asyncio.Queue()
        session.on_state(self.items.put_nowait)
        session.on_event(self.items.put_nowait)

    async def next(self) -> AnyAmiEvent | bool:
        async with asyncio.timeout(WAIT):
            return await self.items.get()

    async def take(self, count: int) -> list[AnyAmiEvent | bool]:
        return [await self.next() for _ in range(count)]

    async def until(self, wanted: Callable[[AnyAmiEvent | bool], bool]) -> list[AnyAmiEvent | bool]:
        seen = [await self.next()]
        while not wanted(seen[-1]):
            seen.append(await self.next())
        return seen


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ami, "RECONNECT_FIRST_DELAY", 0.01)
    monkeypatch.setattr(ami, "RECONNECT_MAX_DELAY", 0.05)


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    server = FakeAsterisk()
    await server.start()
    yield server
    await server.stop()


SessionFactory = Callable[..., Awaitable[AmiSession]]


@pytest.fixture
async def open_session(asterisk: FakeAsterisk) -> AsyncIterator[SessionFactory]:
    sessions: list[AmiSession] = []

    async def factory(connect: bool = True, secret: str = SECRET, **options: Any) -> AmiSession:
        options = {"action_timeout": 1.0, "ping_interval": 30.0, "connect_timeout": 1.0, **options}
        session = AmiSession(asterisk.endpoint(secret), **options)
        sessions.append(session)
        if connect:
            await session.connect()
        return session

    yield factory
    for session in sessions:
        await session.close()


def is_state(value: bool) -> Callable[[AnyAmiEvent | bool], bool]:
    return lambda item: isinstance(item, bool) and item is value


# -- CR/LF refusal ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "PJSIP/1\r\nAction: Originate", "\n"])
def test_check_ami_value_refuses_cr_or_lf_and_names_the_field(value: str) -> None:
    with pytest.raises(UnsafeAmiValue, match="'Channel'") as caught:
        check_ami_value("Channel", value)
    assert value not in str(caught.value)  # the value may be a secret: never echoed


def test_check_ami_value_renders_plain_values_as_ami_text() -> None:
    assert check_ami_value("Queue", "поддержка") == "поддержка"
    assert check_ami_value("Penalty", 3) == "3"
    assert check_ami_value("Paused", True) == "true"
    assert check_ami_value("Paused", False) == "false"


def test_check_ami_value_refuses_values_that_are_neither_text_nor_numbers() -> None:
    with pytest.raises(TypeError, match="'Timeout'"):
        check_ami_value("Timeout", None)


@pytest.mark.parametrize(
    "name", ["Channel\r\nAction: Originate", "Chan\nnel", "Chan\rnel", "Channel: x", "", " Channel"]
)
def test_build_action_refuses_header_names_that_could_forge_headers(name: str) -> None:
    with pytest.raises(UnsafeAmiValue):
        build_action("Hangup", {name: "PJSIP/1"})


def test_build_action_refuses_an_action_name_with_a_line_break() -> None:
    with pytest.raises(UnsafeAmiValue):
        build_action("Ping\r\nAction: Originate")


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"CASE\r\nAction: Originate": "1"}, "Variable"),
        ({"CASE": "1\r\nAction: Originate"}, "Variable['CASE']"),
        ({"CASE": "1\n"}, "Variable['CASE']"),
    ],
)
def test_build_action_refuses_line_breaks_in_variable_names_and_values(
    variables: dict[str, str], field: str
) -> None:
    with pytest.raises(UnsafeAmiValue, match=re.escape(field)):
        build_action("Originate", {"Channel": "Local/s@test", "Variable": variables})


def test_build_action_refuses_a_variable_name_with_an_equals_sign() -> None:
    with pytest.raises(UnsafeAmiValue, match="contains '='"):
        build_action("Originate", {"Variable": {"A=B": "1"}})


async def test_build_action_writes_each_variable_on_its_own_header_line() -> None:
    wire = str(build_action("Originate", {"Channel": "Local/s@test", "Variable": {"CASE": "42", "HOP": 1}}))
    assert "Variable: CASE=42\r\nVariable: HOP=1\r\n" in wire
    assert wire.endswith("\r\n\r\n")


def test_build_action_refuses_an_action_id_from_the_caller() -> None:
    with pytest.raises(AmiError, match="ActionID"):
        build_action("Ping", {"ActionID": "mine"})


async def test_unsafe_value_is_refused_before_anything_reaches_asterisk(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    session = await open_session()
    before = bytes(asterisk.received)
    with pytest.raises(UnsafeAmiValue, match="'Channel'"):
        await session.action("Hangup", {"Channel": "PJSIP/1\r\nAction: Originate"})
    with pytest.raises(UnsafeAmiValue, match="Variable"):
        await session.action("Originate", {"Channel": "Local/s@test", "Variable": {"X": "\n"}})
    await session.ping()  # a round trip, so anything wrongly sent would have arrived by now
    assert b"Hangup" not in asterisk.received[len(before) :]
    assert b"Originate" not in asterisk.received[len(before) :]


async def test_secret_with_a_line_break_is_refused_without_connecting(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    session = await open_session(connect=False, secret="s3cret\r\nAction: Originate")
    with pytest.raises(UnsafeAmiValue, match="'Secret'"):
        await session.connect()
    assert asterisk.logins == 0


# -- typed events from recorded transcripts ---------------------------------------------------


async def test_login_delivers_state_true_before_the_fully_booted_of_that_connection(
    open_session: SessionFactory,
) -> None:
    recorder = Recorder(session := await open_session())
    assert session.connected
    first, booted, auth = await recorder.take(3)
    assert first is True
    assert booted == FullyBooted(status="Fully Booted", uptime=31, last_reload=31)
    assert isinstance(auth, AmiEvent) and auth.name == "SuccessfulAuth"
    assert auth.fields["AccountID"] == "hotline"


async def test_supervision_transcript_arrives_as_typed_events(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    recorder = Recorder(await open_session())
    await recorder.take(3)  # True, FullyBooted, SuccessfulAuth
    asterisk.push(transcript("supervision_events"))
    events = [e for e in await recorder.take(14) if not (isinstance(e, AmiEvent) and e.name == "TestEvent")]
    assert events[:4] == [
        DeviceStateChange(device="Custom:agent1", state="INUSE"),
        DeviceStateChange(device="Custom:agent1", state="NOT_INUSE"),
        AmiEvent("PeerStatus", events[2].fields),  # type: ignore[union-attr]
        ContactStatus(
            aor="agent1",
            contact_status="Reachable",
            endpoint_name="agent1",
            uri="sip:agent1@127.0.0.1:15099",
            roundtrip_usec=737,
        ),
    ]
    assert events[4:7] == [
        DeviceStateChange(device="PJSIP/agent1", state="INVALID"),
        Reload(module="app_queue.so", status="0"),
        Reload(module="All", status="0"),
    ]
    assert all(isinstance(e, Reload) and e.succeeded for e in events[5:7])
    assert events[-1] == ContactStatus("agent1", "Unreachable", "agent1", "sip:agent1@127.0.0.1:15099", 0)


async def test_shutdown_event_is_typed_and_followed_by_state_false(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    recorder = Recorder(await open_session())
    await recorder.take(3)
    asterisk.push(transcript("shutdown_for_restart"))
    assert await recorder.take(2) == [Shutdown(shutdown="Cleanly", restart=True), False]


async def test_events_that_follow_an_action_reply_are_dispatched(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["queueadd"] = transcript("queue_add")
    recorder = Recorder(session := await open_session())
    await recorder.take(3)
    await session.action(
        "QueueAdd", {"Queue": "support", "Interface": "Local/100@default", "MemberName": "Агент"}
    )
    state, added = await recorder.take(2)
    assert state == DeviceStateChange("Queue:support_pause_Local/100@default", "NOT_INUSE")
    assert isinstance(added, AmiEvent) and added.fields["MemberName"] == "Агент"
    assert added.fields["PausedReason"] == ""


def test_utf8_split_between_tcp_reads_keeps_every_letter() -> None:
    """panoramisk decodes each read alone with errors='ignore'; a split letter would vanish."""
    received: list[Any] = []
    link = ami._Link("test", received.append)
    link.ready = True
    protocol = ami._Protocol(link)
    protocol.connection_made(_NullTransport())
    for byte in transcript("queue_add"):  # one byte per read: every Cyrillic letter is split
        protocol.data_received(bytes([byte]))
    member_added = parse_event(received[-1])
    assert isinstance(member_added, AmiEvent) and member_added.fields["MemberName"] == "Агент"


class _NullTransport(asyncio.Transport):
    def write(self, data: Any) -> None:
        pass


def test_device_state_change_without_device_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="DeviceStateChange event without Device"):
        parse_event({"Event": "DeviceStateChange", "Privilege": "call,all", "State": "INUSE"})


def test_contact_status_without_endpoint_name_still_parses() -> None:
    event = parse_event({"Event": "ContactStatus", "URI": "sip:a@h", "ContactStatus": "Removed", "AOR": "a"})
    assert event == ContactStatus(aor="a", contact_status="Removed", uri="sip:a@h")


def test_shutdown_with_a_restart_flag_that_is_not_true_or_false_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="Restart"):
        parse_event({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "maybe"})


def test_fully_booted_with_a_non_numeric_uptime_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="Uptime"):
        parse_event({"Event": "FullyBooted", "Status": "Fully Booted", "Uptime": "soon"})


def test_message_without_event_header_is_invalid() -> None:
    with pytest.raises(InvalidEvent):
        parse_event({"Privilege": "call,all"})


def test_unknown_event_keeps_every_field_and_joins_repeated_headers() -> None:
    event = parse_event({"Event": "VarSet", "Channel": "PJSIP/1-0001", "ChanVariable": ["A=1", "B=2"]})
    assert event == AmiEvent(
        "VarSet", {"Event": "VarSet", "Channel": "PJSIP/1-0001", "ChanVariable": "A=1\nB=2"}
    )


async def test_malformed_known_event_is_logged_once_and_dropped(
    asterisk: FakeAsterisk, open_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(await open_session())
    await recorder.take(3)
    asterisk.push(b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nState: INUSE\r\n\r\n")
    asterisk.push(
        b"Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/2\r\nState: INUSE\r\n\r\n"
    )
    assert await recorder.next() == DeviceStateChange("PJSIP/2", "INUSE")
    dropped = [r for r in caplog.records if "without Device" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].levelno == logging.WARNING


# -- handlers ---------------------------------------------------------------------------------


async def test_failing_handler_is_logged_and_the_next_handlers_still_run(
    asterisk: FakeAsterisk, open_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    session = await open_session(connect=False)
    calls: list[str] = []

    def broken(event: AnyAmiEvent) -> None:
        calls.append("broken")
        raise RuntimeError("handler bug")

    async def slow(event: AnyAmiEvent) -> None:
        await asyncio.sleep(0.01)
        calls.append(f"slow {event.name}")

    session.on_event(broken)
    session.on_event(slow)
    recorder = Recorder(session)
    await session.connect()
    await recorder.take(3)
    assert calls == ["broken", "slow FullyBooted", "broken", "slow SuccessfulAuth"]
    assert "handler bug" in caplog.text
    assert session.connected


async def test_handler_may_send_an_action_without_deadlocking(open_session: SessionFactory) -> None:
    session = await open_session(connect=False)
    round_trips: asyncio.Queue[float] = asyncio.Queue()

    async def ping_on_boot(event: AnyAmiEvent) -> None:
        if isinstance(event, FullyBooted):
            round_trips.put_nowait(await session.ping())

    session.on_event(ping_on_boot)
    await session.connect()
    async with asyncio.timeout(WAIT):
        assert await round_trips.get() >= 0


# -- actions ----------------------------------------------------------------------------------


async def test_command_returns_the_cli_output_text(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["command"] = transcript("command_queue_show")
    output = await (await open_session()).command("queue show support")
    assert output.splitlines() == [
        "support has 0 calls (max unlimited) in 'rrmemory' strategy (0s holdtime, 0s talktime), "
        "W:0, C:0, A:0, SL:0.0%, SL2:0.0% within 0s",
        "   No Members",
        "   No Callers",
    ]
    assert asterisk.sent("Command")[-1]["Command"] == "queue show support"


async def test_failed_command_raises_with_asterisks_output(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["command"] = transcript("command_no_such_command")
    with pytest.raises(AmiError, match="AMI action Command failed: No such command 'no such thing'"):
        await (await open_session()).command("no such thing")


async def test_asterisk_version_comes_from_core_settings(open_session: SessionFactory) -> None:
    assert await (await open_session()).asterisk_version() == "22.10.1+dfsg+~cs6.17.60671434-1"


async def test_queue_add_returns_even_when_the_caller_asks_for_a_list(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["queueadd"] = transcript("queue_add")
    session = await open_session()
    for as_list in (None, True):
        reply = await session.action(
            "QueueAdd", {"Queue": "support", "Interface": "Local/100@default"}, as_list=as_list
        )
        assert isinstance(reply, dict) and reply["Message"] == "Added interface to queue"


async def test_error_reply_raises_with_asterisks_message(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["queueadd"] = transcript("queue_add_already_there")
    with pytest.raises(AmiError, match="QueueAdd failed: Unable to add interface: Already there"):
        await (await open_session()).action(
            "QueueAdd", {"Queue": "support", "Interface": "Local/100@default"}
        )


async def test_error_reply_to_a_list_request_raises_instead_of_hanging(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["nosuch"] = transcript("unknown_action")
    with pytest.raises(AmiError, match="Invalid/unknown command: Nosuch"):
        await (await open_session(action_timeout=WAIT)).action("Nosuch", as_list=True)


async def test_list_action_returns_every_event_of_the_list(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["queuestatus"] = transcript("queue_status")
    replies = await (await open_session()).action("QueueStatus", {"Queue": "support"})
    assert isinstance(replies, list)
    assert [r.get("Event", r.get("Response")) for r in replies] == [
        "Success",
        "QueueParams",
        "QueueMember",
        "QueueStatusComplete",
    ]
    assert replies[2]["Name"] == "Агент"


async def test_synchronous_originate_reply_keeps_the_connection_alive(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    """Upstream raises KeyError('async') inside data_received on this reply and the transport dies."""
    asterisk.replies["originate"] = transcript("originate_sync")
    session = await open_session()
    reply = await session.action("Originate", {"Channel": "Local/s@test", "Application": "Wait", "Data": 1})
    assert reply == {"Response": "Success", "ActionID": asterisk.sent("Originate")[0]["ActionID"],
                     "Message": "Originate successfully queued"}  # fmt: skip
    assert session.connected
    await session.ping()


async def test_async_originate_returns_the_ack_and_its_originate_response(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.replies["originate"] = transcript("originate_async")
    session = await open_session()
    replies = await session.action(
        "Originate", {"Channel": "Local/s@test", "Application": "Wait", "Async": True}
    )
    assert isinstance(replies, list)
    assert [r.get("Event", "ack") for r in replies] == ["ack", "OriginateResponse"]
    assert replies[1]["Reason"] == "4"


# -- timeouts, refused logins, reconnects ------------------------------------------------------


async def test_unanswered_action_times_out_naming_the_action(open_session: SessionFactory) -> None:
    session = await open_session(action_timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiError, match=r"AMI action CoreShowChannels got no answer .* within 0.2s"):
        await session.action("CoreShowChannels")
    assert loop.time() - started < 1.0
    assert session.connected
    await session.ping()
    assert session._link is not None and not session._link.protocol.responses  # nothing left waiting


async def test_login_that_is_never_answered_times_out_as_unreachable(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    asterisk.answer_login = False
    session = await open_session(connect=False, connect_timeout=0.2)
    with pytest.raises(AmiError, match=r"unreachable: no answer within 0.2s"):
        await session.connect()
    assert not session.connected


async def test_closed_port_is_reported_as_unreachable(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    await asterisk.stop()
    session = await open_session(connect=False)
    with pytest.raises(AmiError, match=f"AMI at 127.0.0.1:{asterisk.port} unreachable"):
        await session.connect()


async def test_wrong_secret_raises_auth_error_and_is_never_retried(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    session = await open_session(connect=False, secret="wrong")
    with pytest.raises(
        AmiAuthError,
        match=f"AMI login refused for user hotline at 127.0.0.1:{asterisk.port}: check the secret",
    ):
        await session.connect()
    await asyncio.sleep(0.2)  # panoramisk alone would have reconnected by now, and for ever
    assert asterisk.logins == 1
    assert not session.connected
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-")]


async def test_session_logs_in_again_after_the_server_drops_the_connection(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    recorder = Recorder(session := await open_session())
    await recorder.take(3)
    asterisk.drop()
    assert await recorder.take(3) == [False, True, FullyBooted("Fully Booted", 31, 31)]
    assert asterisk.logins == 2
    assert session.connected
    assert await session.asterisk_version()


async def test_session_waits_for_asterisk_to_come_back(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    recorder = Recorder(session := await open_session())
    await recorder.take(3)
    await asterisk.stop()
    assert await recorder.next() is False
    await asyncio.sleep(0.2)  # several refused attempts
    assert not session.connected
    await asterisk.start()  # same port
    await recorder.until(is_state(True))
    assert session.connected


async def test_pending_action_fails_at_once_when_the_connection_drops(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    session = await open_session(action_timeout=WAIT)
    waiting = asyncio.create_task(session.action("CoreShowChannels"))
    await asyncio.sleep(0.05)
    asterisk.drop()
    with pytest.raises(AmiError, match="lost before CoreShowChannels was answered"):
        async with asyncio.timeout(1.0):
            await waiting


async def test_action_while_disconnected_fails_fast(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    recorder = Recorder(session := await open_session())
    await recorder.take(3)
    await asterisk.stop()
    await recorder.until(is_state(False))
    with pytest.raises(AmiError, match="not connected"):
        await session.ping()


async def test_unanswered_ping_forces_a_reconnect(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    recorder = Recorder(await open_session(ping_interval=0.05, action_timeout=0.1))
    await recorder.take(3)
    ping = asterisk.replies.pop("ping")  # the peer is up but no longer answers
    await recorder.until(is_state(False))
    asterisk.replies["ping"] = ping
    await recorder.until(is_state(True))
    assert asterisk.logins >= 2


async def test_wrong_secret_on_reconnect_is_logged_as_an_error_and_retried(
    asterisk: FakeAsterisk, open_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(await open_session())
    await recorder.take(3)
    asterisk.secret = "rotated"
    asterisk.drop()
    await recorder.until(is_state(False))
    async with asyncio.timeout(WAIT):
        while asterisk.logins < 3:
            await asyncio.sleep(0.01)
    refused = [r for r in caplog.records if "check the secret" in r.getMessage()]
    assert refused and all(r.levelno == logging.ERROR for r in refused)
    asterisk.secret = SECRET
    await recorder.until(is_state(True))


# -- close ------------------------------------------------------------------------------------


async def test_close_logs_off_is_idempotent_and_leaves_no_task(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    session = await open_session(ping_interval=0.05)
    await session.close()
    await session.close()
    assert asterisk.sent("Logoff")
    assert not session.connected
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-")]
    with pytest.raises(AmiError, match="closed"):
        await session.ping()
    with pytest.raises(AmiError, match="closed"):
        await session.connect()


async def test_close_while_reconnecting_stops_the_attempts(
    asterisk: FakeAsterisk, open_session: SessionFactory
) -> None:
    recorder = Recorder(session := await open_session())
    await recorder.take(3)
    await asterisk.stop()
    await recorder.until(is_state(False))
    await session.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("ami-")]
