"""AMI session: login, actions with timeouts, typed events, ping, reconnect with backoff.

panoramisk does the wire work (framing, parsing, matching replies to actions: AMIProtocol,
Action, Message). The lifecycle is ours, because panoramisk's Manager (manager.py, 1.4):
- reconnects through `loop.call_later` timers that nothing keeps, so nothing can cancel them
  (`connection_lost`, `connection_made`), at a fixed 2 s, for ever;
- never notices a refused login (`login` only sets a flag) and so retries a wrong secret for ever;
- sends Ping without reading the answer (`ping`), so a silent peer goes unnoticed;
- fires handler coroutines and forgets them (`dispatch`);
- replays unanswered actions on the next FullyBooted (`send_awaiting_actions`), possibly long
  after the caller gave up;
- lets an action wait for ever (`send_action` returns a bare Future).

Every value headed for Asterisk goes through `check_ami_value` (panoramisk writes values as they
are, so a CR/LF in a caller-supplied value would inject AMI headers or whole actions).
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential, wait_random

from hotline.asterisk.ami_events import AnyAmiEvent, flatten_fields, parse_event
from hotline.config import Endpoint
from hotline.errors import AmiAuthError, AmiError, InvalidEvent, UnsafeAmiValue

log = logging.getLogger(__name__)

AmiValue: TypeAlias = str | int | Mapping[str, str | int]
AmiReply: TypeAlias = dict[str, str]
EventHandler: TypeAlias = Callable[[AnyAmiEvent], Awaitable[None] | None]
StateHandler: TypeAlias = Callable[[bool], Awaitable[None] | None]
_T = TypeVar("_T")

RECONNECT_FIRST_DELAY = 0.5  # seconds; doubles per failed attempt ...
RECONNECT_MAX_DELAY = 30.0  # ... up to this, then retries at this pace until close()
LOGOFF_TIMEOUT = 1.0

# panoramisk's list detection (actions.py Action.multi) reads "Added interface to queue" as the
# start of an event list, so QueueAdd would never complete; these are single replies, always.
_SINGLE_REPLY_ACTIONS = frozenset({"queueadd"})
# Set by the session itself; a caller's ActionID would also collide with panoramisk's matching.
_RESERVED_FIELDS = frozenset({"action", "actionid"})
_ERROR_RESPONSES = frozenset({"error", "fail", "failure"})
_TRUE = frozenset({"true", "yes", "1"})  # the spellings of Async: that make Originate asynchronous


def check_ami_value(field: str, value: object) -> str:
    """The value as AMI text; UnsafeAmiValue if it carries CR or LF (header injection).

    The error names the field but never shows the value: it may be a secret.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int):
        text = str(value)
    else:
        raise TypeError(f"AMI field {field!r} must be str or int, got {type(value).__name__}")
    if "\r" in text or "\n" in text:
        raise UnsafeAmiValue(f"AMI field {field!r} contains CR or LF: refused (AMI header injection)")
    return text


def check_ami_name(name: str) -> str:
    """A header name as AMI text; refuses CR, LF, ':' and blanks, which would forge headers."""
    if not name or any(ch in name for ch in "\r\n:") or name != name.strip() or " " in name:
        raise UnsafeAmiValue(f"AMI field name {name!r} is not a plain header name: refused")
    return name


class _Action(actions.Action):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's Action with a list detection that cannot hang or crash.

    Upstream `Action.multi` (actions.py) waits for ever on an Error reply when as_list=True,
    treats QueueAdd's reply as a list, and raises KeyError inside data_received (which kills
    the connection) on "Originate successfully queued" without an Async header.
    """

    @property
    def multi(self) -> bool:
        first = self.responses[0]
        if first.get("Response", "").lower() in _ERROR_RESPONSES:
            return False
        if self.as_list is not None:
            return bool(self.as_list)
        if first.get("EventList", "").lower() == "start":
            return True
        message = first.get("Message", "").lower()
        if "will follow" in message:
            return True
        # An async Originate is answered twice: the ack, then OriginateResponse.
        return message.endswith("successfully queued") and self.get("Async", "").lower() in _TRUE

    @property
    def completed(self) -> bool:
        if self.responses[-1].get("EventList", "").lower() == "complete":
            return True
        return bool(super().completed)


def build_action(
    name: str, fields: Mapping[str, AmiValue] | None = None, as_list: bool | None = None
) -> _Action:
    """Validate every name and value and build the action; a Mapping value (Originate's
    Variable) becomes one `key=value` header line per item."""
    headers: dict[str, str | list[str]] = {"Action": check_ami_name(name)}
    for key, value in (fields or {}).items():
        check_ami_name(key)
        if key.lower() in _RESERVED_FIELDS:
            raise AmiError(f"AMI field {key!r} is set by the session; do not pass it")
        headers[key] = _variables(key, value) if isinstance(value, Mapping) else check_ami_value(key, value)
    if name.lower() in _SINGLE_REPLY_ACTIONS:
        as_list = False
    return _Action(headers, as_list=as_list)


def _variables(field: str, variables: Mapping[str, str | int]) -> list[str]:
    lines = []
    for var, value in variables.items():
        # A '=' in the name would move the split point: the variable set would not be the one named.
        if not var or "=" in var:
            raise UnsafeAmiValue(f"AMI field {field!r}: variable name {var!r} is empty or contains '='")
        label = f"{field}[{var!r}]"
        lines.append(f"{check_ami_value(label, var)}={check_ami_value(label, value)}")
    return lines


class _Protocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped
    """AMIProtocol bound to one _Link, decoding UTF-8 across TCP reads.

    Upstream decodes each read on its own with errors="ignore" (ami_protocol.py data_received):
    a Cyrillic caller name split between two reads silently loses a letter.
    """

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # resets factory and queues: attach after it
        self._link.attach(self)

    def data_received(self, data: bytes) -> None:
        super().data_received(self._decoder.decode(data).encode("utf-8"))


class _Link(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """One TCP connection: panoramisk's Manager reduced to the factory its protocol talks to."""

    def __init__(self, where: str, on_event: Callable[[Message], None]) -> None:
        super().__init__(encoding="utf-8")
        self.where = where
        self.ready = False  # logged in; events are held until then so on_state(True) comes first
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.pending: dict[asyncio.Future[Any], str] = {}  # awaited replies -> action name
        self._held: list[Message] = []
        self._on_event = on_event

    def attach(self, protocol: _Protocol) -> None:
        # What Manager.connection_made does, minus its login, pinger and reconnect timers.
        self.protocol = protocol
        protocol.factory = self
        protocol.log = self.log
        protocol.config = self.config
        protocol.encoding = self.encoding = "utf-8"
        self.responses = protocol.responses

    def logged_in(self) -> None:
        self.ready = True
        for message in self._held:
            self._on_event(message)
        self._held.clear()

    def send(self, action: _Action) -> asyncio.Future[Any]:
        if self.protocol is None or self.lost.is_set():
            raise AmiError(f"AMI action {action['Action']} not sent: not connected to {self.where}")
        future: asyncio.Future[Any] = self.protocol.send(action, as_list=action.as_list)
        self.pending[future] = action["Action"]
        return future

    def forget(self, action: _Action, future: asyncio.Future[Any]) -> None:
        # Upstream keeps an unanswered action in `responses` for the connection's lifetime.
        self.pending.pop(future, None)
        if self.protocol is not None:
            self.protocol.responses.pop(action.id, None)

    def dispatch(self, message: Message) -> list[str]:
        # Called by the protocol for every event; replaces Manager's pattern registry.
        if self.ready:
            self._on_event(message)
        else:
            self._held.append(message)
        return []

    def connection_lost(self, exc: object) -> None:
        # Called by the protocol on EOF, a socket error, or a Shutdown event; Manager would
        # schedule a reconnect timer here.
        self._mark_lost(_describe_loss(exc))

    def shut(self, reason: str) -> None:
        """Close the connection from our side (ping timeout, refused login, close())."""
        if self.protocol is not None:
            self.protocol.close()  # marks it closed, so its own connection_lost stays silent
        self._mark_lost(reason)

    def _mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        # Upstream parks unanswered actions here to replay them after FullyBooted: we fail them.
        self.awaiting_actions.clear()
        for future, name in self.pending.items():
            if not future.done():
                future.set_exception(
                    AmiError(f"AMI connection to {self.where} lost before {name} was answered: {reason}")
                )


def _describe_loss(exc: object) -> str:
    if exc is None:
        return "closed by the peer"
    if isinstance(exc, Message):
        return "Asterisk is shutting down"
    return str(exc) or type(exc).__name__


class AmiSession:
    """One AMI login kept alive: actions, typed events, state changes, reconnects."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        action_timeout: float = 10.0,
        ping_interval: float = 20.0,
        connect_timeout: float = 10.0,
        only_events: Sequence[str] = (),
    ) -> None:
        self._endpoint = endpoint
        self._only_events = tuple(only_events)
        self._where = f"{endpoint.host}:{endpoint.port}"
        self._action_timeout = action_timeout
        self._ping_interval = ping_interval
        self._connect_timeout = connect_timeout
        self._event_handlers: list[EventHandler] = []
        self._state_handlers: list[StateHandler] = []
        # One inbox keeps events and state changes in arrival order for the one dispatcher.
        self._inbox: asyncio.Queue[Message | bool] = asyncio.Queue()
        self._link: _Link | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    def on_event(self, handler: EventHandler) -> None:
        """Every event, typed, goes to the handlers in registration order, one at a time."""
        self._event_handlers.append(handler)

    def on_state(self, handler: StateHandler) -> None:
        """Called with True after each login (first and re-), False when the connection is lost."""
        self._state_handlers.append(handler)

    @property
    def connected(self) -> bool:
        link = self._link
        return link is not None and link.ready and not link.lost.is_set() and not self._closed

    async def connect(self) -> None:
        """Connect and log in once; afterwards the session keeps itself connected until close()."""
        if self._closed:
            raise AmiError(f"AMI session to {self._where} is closed")
        if self._supervisor is not None:
            return
        await self._open()
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name=f"ami-dispatch {self._where}")
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ami-supervise {self._where}")

    async def action(
        self, name: str, fields: Mapping[str, AmiValue] | None = None, *, as_list: bool | None = None
    ) -> list[AmiReply] | AmiReply:
        """Send one action and return its reply (a list for list actions such as QueueStatus).

        Repeated reply headers (Output, ChanVariable) are joined with newlines. Raises
        UnsafeAmiValue before sending anything, AmiError on timeout, lost connection or an
        Error reply (with Asterisk's message).
        """
        action = build_action(name, fields, as_list)
        reply = await self._request(self._ready_link(name), action, self._action_timeout)
        return _checked(name, reply)

    async def command(self, cli: str) -> str:
        """Run a CLI command; its output text (Asterisk 22 sends it as `Output:` lines)."""
        return (await self._single("Command", {"Command": cli})).get("Output", "")

    async def asterisk_version(self) -> str:
        version = (await self._single("CoreSettings")).get("AsteriskVersion", "")
        if not version:
            raise AmiError(f"AMI at {self._where}: CoreSettings reply without AsteriskVersion")
        return version

    async def system_name(self) -> str:
        """asterisk.conf's systemname ("" when unset): a node's name, which prefixes its channel ids."""
        return str((await self._single("CoreSettings")).get("SystemName", ""))

    async def ping(self) -> float:
        """Round trip of a Ping action, in seconds."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._single("Ping")
        return loop.time() - started

    async def close(self) -> None:
        """Log off and stop every task this session owns; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await _stop(self._supervisor)
        link = self._link
        if link is not None:
            if link.ready and not link.lost.is_set():
                await self._logoff(link)
            link.shut("session closed")
        await _stop(self._dispatcher)
        log.info("AMI session to %s closed", self._where)

    # -- connection ---------------------------------------------------------------------------

    async def _open(self) -> None:
        """One TCP connect + Login within connect_timeout; the new link becomes current."""
        login = self._login_action()  # an unsafe secret is a config error, not "unreachable"
        link = _Link(self._where, self._inbox.put_nowait)
        self._link = link
        try:
            async with asyncio.timeout(self._connect_timeout):
                await asyncio.get_running_loop().create_connection(
                    lambda: _Protocol(link), self._endpoint.host, self._endpoint.port
                )
                reply = await self._request(link, login, None)
        except TimeoutError:
            link.shut("no login answer")
            raise AmiError(
                f"AMI at {self._where} unreachable: no answer within {self._connect_timeout:g}s"
            ) from None
        except OSError as exc:
            link.shut("connect failed")
            raise AmiError(f"AMI at {self._where} unreachable: {exc.strerror or exc}") from None
        except AmiError as exc:
            link.shut("login failed")
            raise AmiError(f"AMI at {self._where} unreachable: {exc}") from None
        self._check_login(link, reply)
        await self._filter_events(link)
        self._inbox.put_nowait(True)
        link.logged_in()
        log.info("AMI logged in to %s as %s", self._where, self._endpoint.user)

    async def _filter_events(self, link: _Link) -> None:
        """Ask Asterisk for the events this session handles only: at call-centre rates the rest
        (Newchannel, VarSet, Newexten ... dozens per call) cost Asterisk and us for nothing.
        Needs the `system` write class; without it every event keeps coming (and is ignored)."""
        for name in self._only_events:
            action = build_action("Filter", {"Operation": "Add", "Filter": f"Event: {name}"})
            reply = await self._request(link, action, self._action_timeout)
            first = reply[0] if isinstance(reply, list) else reply
            if first.get("Response") != "Success":
                log.warning("AMI at %s refused an event filter (%s): receiving every event",
                            self._where, first.get("Message", "?"))
                return

    def _login_action(self) -> _Action:
        fields = {"Username": self._endpoint.user, "Secret": self._endpoint.secret, "Events": "on"}
        return build_action("Login", fields)

    def _check_login(self, link: _Link, reply: Message | list[Message]) -> None:
        first = reply[0] if isinstance(reply, list) else reply
        if first.get("Response") == "Success":
            return
        if "shutting down" in str(first.get("Message", "")).lower():
            link.shut("Asterisk shutting down")  # not the secret's fault: try again later
            raise AmiError(f"AMI at {self._where}: Asterisk is shutting down")
        # Asterisk answers "Authentication failed" for a wrong user, secret or permit= ACL,
        # then drops the connection; we close first so nothing retries behind the caller.
        link.shut("login refused")
        raise AmiAuthError(
            f"AMI login refused for user {self._endpoint.user} at {self._where}: check the secret "
            f"(Asterisk said: {first.get('Message', first.get('Response', '?'))})"
        )

    async def _supervise(self) -> None:
        """Owns the connection after connect(): watches it, and reconnects when it goes."""
        while True:
            link = self._link
            assert link is not None
            await self._watch(link)
            log.warning("AMI connection to %s lost (%s): reconnecting", self._where, link.lost_reason)
            self._inbox.put_nowait(False)
            await self._reconnect()

    async def _watch(self, link: _Link) -> None:
        """Return when the link is lost, or shut it when Ping goes unanswered (a dead peer)."""
        while not link.lost.is_set():
            try:
                async with asyncio.timeout(self._ping_interval):
                    await link.lost.wait()
                return
            except TimeoutError:
                pass
            try:
                await self.ping()
            except AmiError as exc:
                if not link.lost.is_set():
                    link.shut(f"no answer to Ping: {exc}")

    async def _reconnect(self) -> None:
        # A short pause first, so a peer that accepts and drops at once is not hammered.
        await asyncio.sleep(RECONNECT_FIRST_DELAY)
        retrying = AsyncRetrying(
            # Jitter, so several daemons do not all knock at the same instant after a restart.
            wait=wait_exponential(multiplier=RECONNECT_FIRST_DELAY, max=RECONNECT_MAX_DELAY)
            + wait_random(0, RECONNECT_FIRST_DELAY),
            # Anything else is a bug in here, but giving up would leave the daemon deaf for good.
            retry=retry_if_exception_type(Exception),
            before_sleep=self._log_retry,
        )
        async for attempt in retrying:
            with attempt:
                await self._open()

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        level = logging.WARNING if type(exc) is AmiError else logging.ERROR
        log.log(
            level,
            "AMI reconnect attempt %d failed: %s; next attempt in %.1fs",
            state.attempt_number,
            exc,
            delay,
            exc_info=exc if not isinstance(exc, AmiError) else None,
        )

    async def _logoff(self, link: _Link) -> None:
        try:
            await self._request(link, build_action("Logoff"), LOGOFF_TIMEOUT)
        except AmiError as exc:
            log.debug("AMI Logoff at %s: %s", self._where, exc)

    # -- requests -----------------------------------------------------------------------------

    def _ready_link(self, name: str) -> _Link:
        if not self.connected:
            state = "closed" if self._closed else "not connected (reconnecting)"
            raise AmiError(f"AMI action {name} not sent: session to {self._where} is {state}")
        assert self._link is not None
        return self._link

    async def _request(self, link: _Link, action: _Action, within: float | None) -> Message | list[Message]:
        """Send and wait; panoramisk's futures never time out by themselves."""
        name = action["Action"]
        future = link.send(action)
        try:
            async with asyncio.timeout(within):
                reply: Message | list[Message] = await future
                return reply
        except TimeoutError:
            raise AmiError(f"AMI action {name} got no answer from {self._where} within {within:g}s") from None
        finally:
            link.forget(action, future)

    async def _single(self, name: str, fields: Mapping[str, AmiValue] | None = None) -> AmiReply:
        reply = await self.action(name, fields, as_list=False)
        assert isinstance(reply, dict)
        return reply

    # -- events -------------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, bool):
                await _notify(self._state_handlers, item, "state")
                continue
            event = _parse(item)
            if event is not None:
                await _notify(self._event_handlers, event, event.name)


def _checked(name: str, reply: Message | list[Message]) -> list[AmiReply] | AmiReply:
    """Plain dicts; an Error reply becomes AmiError carrying Asterisk's own words."""
    replies = [flatten_fields(m) for m in (reply if isinstance(reply, list) else [reply])]
    first = replies[0]
    if first.get("Response", "").lower() in _ERROR_RESPONSES:
        # A failed Command explains itself in Output; other actions in Message.
        detail = first.get("Output") or first.get("Message") or str(first)
        raise AmiError(f"AMI action {name} failed: {detail}")
    return replies if isinstance(reply, list) else first


def _parse(message: Message) -> AnyAmiEvent | None:
    try:
        return parse_event(message)
    except InvalidEvent as exc:
        log.warning("%s: dropped", exc)
        return None


async def _notify(handlers: list[Callable[[_T], Awaitable[None] | None]], arg: _T, what: str) -> None:
    for handler in list(handlers):
        try:
            result = handler(arg)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # A broken handler must not stop the events for everybody else.
            log.exception("AMI %s handler %s failed", what, getattr(handler, "__qualname__", handler))


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    if task is asyncio.current_task():
        return  # close() called from a handler: the dispatcher ends at its next await
    await asyncio.wait([task])
