"""ARI session: REST calls and the /ari/events WebSocket, with reconnect and typed events.

A thin client of our own rather than aioari (DESIGN.md): aioari runs callbacks inside its read
loop (awaiting ARI there deadlocks), its run() returns silently when Asterisk stops, and it leaves
its HTTP session open on a wrong password. Here the read loop only parses and hands events on; the
supervisor reconnects with backoff and tells the daemon, which reconciles. The WebSocket is
aiohttp's; the REST calls go over keep-alive HTTP/1.1 connections (http11: half the CPU).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_never, wait_exponential

from hotline.asterisk.ari_events import (
    HANDLED_EVENT_TYPES,
    AriEvent,
    Bridge,
    Channel,
    EndpointState,
    parse_bridge,
    parse_channel,
    parse_endpoint,
    parse_event,
)
from hotline.asterisk.http11 import Http11Pool
from hotline.config import Endpoint
from hotline.errors import AriError, AriNotFound, AsteriskError, HttpError, InvalidEvent

log = logging.getLogger(__name__)

EventHandler = Callable[[AriEvent], Awaitable[None]]
ConnectHandler = Callable[[], Awaitable[None]]


class AriClient:
    """REST half: keep-alive HTTP/1.1 (http11), JSON in and out, errors mapped to AriError. The
    events WebSocket goes through `http`, an aiohttp session."""

    def __init__(self, endpoint: Endpoint, *, request_timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self._request_timeout = request_timeout
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._http: aiohttp.ClientSession | None = None
        self._rest: Http11Pool | None = None
        # The app follows every channel (set on each connect, see AriSession): a call need not
        # subscribe to its own, one REST call fewer per call. False: older Asterisk, per call.
        self.all_channels = False

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(headers={"Authorization": self._basic_auth()},
                                               timeout=self._timeout)
        return self._http

    @property
    def rest(self) -> Http11Pool:
        if self._rest is None:
            e = self.endpoint
            self._rest = Http11Pool(e.host, e.port, tls=e.scheme == "https",
                                    headers={"Authorization": self._basic_auth()},
                                    timeout=self._request_timeout)
        return self._rest

    def _basic_auth(self) -> str:
        # Built by hand: aiohttp 3.14 deprecates BasicAuth and older 3.x lack its replacement.
        pair = f"{self.endpoint.user}:{self.endpoint.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        if self._rest is not None:
            await self._rest.close()
            self._rest = None

    def url(self, path: str) -> str:
        return f"{self.endpoint.base_url}/ari/{path.lstrip('/')}"

    @staticmethod
    def target(path: str, params: Mapping[str, Any] | None = None) -> str:
        """The request target: /ari/ path and query, percent-encoded (None values left out)."""
        query = urlencode({k: _query_value(v) for k, v in params.items() if v is not None}) if params else ""
        target = "/ari/" + quote(path.lstrip("/"), safe="/,:@")
        return f"{target}?{query}" if query else target

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None) -> Any:
        """One REST call; returns the decoded JSON (None for 204)."""
        payload = json.dumps(body).encode() if body is not None else None
        try:
            status, data = await self.rest.request(method, self.target(path, params), payload)
        except HttpError as exc:
            raise AriError(f"ARI {method} {path}: Asterisk at {self.endpoint.host}:"
                           f"{self.endpoint.port} unreachable ({exc})") from None
        if status == 204:
            return None
        if status >= 400:
            raise _error(method, path, status, data.decode(errors="replace"))
        return json.loads(data) if data else None

    # The calls the engine makes; each is one REST round-trip.
    async def info(self) -> dict[str, Any]:
        return _object(await self.request("GET", "asterisk/info"))

    async def ping(self) -> dict[str, Any]:
        return _object(await self.request("GET", "asterisk/ping"))

    async def set_event_filter(self, app: str, allowed: Sequence[str]) -> None:
        await self.request("PUT", f"applications/{app}/eventFilter",
                           body={"allowed": [{"type": t} for t in allowed]})

    async def subscribe(self, app: str, event_source: str) -> None:
        """Keep receiving a resource's events after it leaves Stasis (ChannelDestroyed has the cause)."""
        await self.request("POST", f"applications/{app}/subscription", params={"eventSource": event_source})

    async def endpoints(self, tech: str) -> list[EndpointState]:
        """Every endpoint of `tech` with its state (online, offline, unknown) and channel ids."""
        return [parse_endpoint(e) for e in _objects(await self.request("GET", f"endpoints/{tech}"))]

    async def channels(self) -> list[Channel]:
        return [parse_channel(c) for c in _objects(await self.request("GET", "channels"))]

    async def channel(self, channel_id: str) -> Channel:
        """The channel now; AriNotFound when it is gone."""
        return parse_channel(_object(await self.request("GET", f"channels/{channel_id}")))

    async def channel_variable(self, channel_id: str, name: str) -> str:
        """A channel variable or dialplan function's value, e.g. PJSIP_HEADER(read,X-Name); a
        function that cannot be read (a header the INVITE lacked) is an AriError (500)."""
        reply = _object(await self.request("GET", f"channels/{channel_id}/variable",
                                           params={"variable": name}))
        return str(reply.get("value", ""))

    async def set_channel_variable(self, channel_id: str, name: str, value: str) -> None:
        """Kept on the channel in Asterisk, so a daemon started later can read it."""
        await self.request("POST", f"channels/{channel_id}/variable",
                           params={"variable": name, "value": value})

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"channels/{channel_id}/answer")

    async def ring(self, channel_id: str) -> None:
        """Indicate ringing to an unanswered caller (SIP 180)."""
        await self.request("POST", f"channels/{channel_id}/ring")

    async def play(self, channel_id: str, media: str | Sequence[str], playback_id: str | None = None) -> str:
        """Start a playback; returns its id (PlaybackFinished carries it)."""
        media_list = [media] if isinstance(media, str) else list(media)
        path = f"channels/{channel_id}/play" + (f"/{playback_id}" if playback_id else "")
        result = _object(await self.request("POST", path, params={"media": ",".join(media_list)}))
        return str(result["id"])

    async def originate(self, endpoint: str, app: str, app_args: str, channel_id: str, *,
                        timeout_s: int, caller_id: str = "", formats: str | None = None,
                        variables: Mapping[str, str] | None = None) -> None:
        """Dial `endpoint` into Stasis: the answered channel arrives as StasisStart with app_args;
        unanswered, Asterisk hangs it up after timeout_s (ChannelDestroyed with the cause).
        `variables` are set on the new channel (functions too: `PJSIP_TRANSFER_HANDLING()`)."""
        await self.request("POST", "channels", params={
            "endpoint": endpoint, "app": app, "appArgs": app_args, "channelId": channel_id,
            "timeout": timeout_s, "callerId": caller_id or None, "formats": formats},
            body={"variables": dict(variables)} if variables else None)

    async def snoop(self, channel_id: str, snoop_id: str, app: str, app_args: str, *, spy: str,
                    whisper: str) -> None:
        """A Snoop channel on `channel_id` into Stasis (StasisStart with app_args): it hears what
        `spy` says (in: what the channel's phone sends, out: what it is sent, both) and speaks
        toward `whisper` (out: heard by the channel's phone, in: by whoever it talks with)."""
        await self.request("POST", f"channels/{channel_id}/snoop", params={
            "spy": spy, "whisper": whisper, "app": app, "appArgs": app_args, "snoopId": snoop_id})

    async def transfer_progress(self, channel_id: str, state: str) -> None:
        """Tell the phone that sent a REFER on `channel_id` how its transfer goes (a NOTIFY):
        channel_progress, channel_answered, channel_declined or channel_unavailable."""
        await self.request("POST", f"channels/{channel_id}/transfer_progress", params={"states": state})

    async def user_event(self, app: str, name: str, channel_id: str, variables: Mapping[str, str]) -> None:
        """Send app `app` a ChannelUserevent `name` about `channel_id` (404 when the channel is gone)."""
        await self.request("POST", f"events/user/{name}",
                           params={"application": app, "source": f"channel:{channel_id}"},
                           body={"variables": dict(variables)})

    async def start_moh(self, channel_id: str, moh_class: str) -> None:
        await self.request("POST", f"channels/{channel_id}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"channels/{channel_id}/moh")

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None:
        """Create (or keep) the bridge `bridge_id`; a case's bridge outlives a single leg."""
        try:
            await self.request("POST", f"bridges/{bridge_id}", params={"type": bridge_type})
        except AriError as exc:
            if exc.status != 409:  # 409: it exists already, which is what we want
                raise

    async def bridges(self) -> list[Bridge]:
        return [parse_bridge(b) for b in _objects(await self.request("GET", "bridges"))]

    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self.request("POST", f"bridges/{bridge_id}/addChannel",
                           params={"channel": ",".join(channel_ids)})

    async def remove_from_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self.request("POST", f"bridges/{bridge_id}/removeChannel",
                           params={"channel": ",".join(channel_ids)})

    async def bridge(self, bridge_id: str) -> Bridge:
        return parse_bridge(_object(await self.request("GET", f"bridges/{bridge_id}")))

    async def destroy_bridge(self, bridge_id: str) -> None:
        try:
            await self.request("DELETE", f"bridges/{bridge_id}")
        except AriNotFound:
            pass

    async def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None:
        """Record the bridge's mixed audio into the recording directory as NAME.FMT (a name taken
        already is refused: ifExists=fail)."""
        await self.request("POST", f"bridges/{bridge_id}/record",
                           params={"name": name, "format": fmt, "ifExists": "fail"})

    async def pause_recording(self, name: str) -> None:
        """Pause a live recording: Asterisk writes nothing of the audio until it is resumed."""
        await self.request("POST", f"recordings/live/{name}/pause")

    async def resume_recording(self, name: str) -> None:
        await self.request("DELETE", f"recordings/live/{name}/pause")

    async def stop_recording(self, name: str) -> None:
        """Stop a live recording and keep its file; one that ended already (its bridge gone) is
        no error."""
        try:
            await self.request("POST", f"recordings/live/{name}/stop")
        except AriNotFound:
            pass

    async def live_recording(self, name: str) -> dict[str, Any] | None:
        """Asterisk's live recording `name` (its `state`: queued, recording, paused, ...), or None
        once it has none by that name: finished (its file closed) or never begun."""
        try:
            found = await self.request("GET", f"recordings/live/{name}")
        except AriNotFound:
            return None
        return found if isinstance(found, dict) else None

    async def stop_playback(self, playback_id: str) -> None:
        """Stop a playback; one that already ended is no error."""
        try:
            await self.request("DELETE", f"playbacks/{playback_id}")
        except AriNotFound:
            pass

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang up; `reason` is ARI's (normal, busy, congestion, no_answer, ...)."""
        await self.request("DELETE", f"channels/{channel_id}", params={"reason": reason})


class AriSession:
    """The events WebSocket with reconnect: registers the Stasis app, dispatches typed events.

    `on_connect` runs after every (re)connect, before any event of the new connection is handled,
    so the daemon can reconcile (adopt channels still in Stasis, close hops whose channels are gone).
    """

    def __init__(self, client: AriClient, app: str, *, on_event: EventHandler,
                 on_connect: ConnectHandler, ping_interval: float = 10.0,
                 max_backoff: float = 5.0, all_channels: bool = True) -> None:
        self.client = client
        self._all_channels = all_channels
        self.app = app
        self._on_event = on_event
        self._on_connect = on_connect
        self._ping_interval = ping_interval
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.connections = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"ari-session-{self.app}")

    async def close(self) -> None:
        """Idempotent: cancel the supervisor, close the socket and the HTTP session."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.connected.clear()
        await self.client.close()

    async def _supervise(self) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=self._max_backoff), stop=stop_never,
            retry=retry_if_exception_type(Exception),
            before_sleep=lambda state: log.warning(
                "ARI connection lost (%s); reconnecting",
                state.outcome.exception() if state.outcome else "?"),
            reraise=True)
        async for attempt in retrying:
            with attempt:
                await self._run_once()

    async def _run_once(self) -> None:
        url = self.client.url("events")
        params = {"app": self.app, "subscribeAll": "false"}
        try:
            ws = await self.client.http.ws_connect(url, params=params, heartbeat=self._ping_interval)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                # A wrong password does not heal by retrying fast; keep trying, but say it loudly.
                log.error("ARI refused user %r: check HOTLINE_ARI_URL", self.client.endpoint.user)
            raise AriError(f"ARI WebSocket handshake failed: HTTP {exc.status}", exc.status) from None
        async with ws:
            self.connections += 1
            await self._after_connect()
            pinger = asyncio.create_task(self._ping_until_dead(ws), name="ari-ping")
            try:
                await self._read(ws)
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)
        self.connected.clear()
        raise AriError("ARI WebSocket closed by Asterisk")

    async def _after_connect(self) -> None:
        try:
            await self.client.set_event_filter(self.app, HANDLED_EVENT_TYPES)
        except AriError as exc:  # an older Asterisk without filters still works, only slower
            log.warning("could not set the ARI event filter: %s", exc)
        if self._all_channels:
            await self._follow_every_channel()
        else:
            self.client.all_channels = False  # each call subscribes to its own channel
        try:
            await self._on_connect()
        except AsteriskError:
            raise  # Asterisk went again: reconnect
        except Exception:  # e.g. the database is down: calls are still served, reconcile later
            log.exception("reconcile after connect failed; it runs again on the next connect")
        self.connected.set()
        log.info("ARI connected, Stasis app %r registered", self.app)

    async def _follow_every_channel(self) -> None:
        """Subscribe the app to all channels ("channel:" with no id): a channel's events, the
        ChannelDestroyed with its hangup cause included, keep coming after it leaves Stasis.
        Channels outside the app add only the filtered event types, which the router drops."""
        try:
            await self.client.subscribe(self.app, "channel:")
            self.client.all_channels = True
        except AriError as exc:
            self.client.all_channels = False
            log.warning("could not subscribe to all channels (%s); each call subscribes to its own", exc)

    async def _ping_until_dead(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Application-level ping (GET /asterisk/ping): a hung Asterisk answers WebSocket pings
        from its HTTP thread but not REST; closing the socket sends us through reconnect."""
        while True:
            await asyncio.sleep(self._ping_interval)
            try:
                await asyncio.wait_for(self.client.ping(), timeout=self._ping_interval)
            except (TimeoutError, AsteriskError) as exc:
                log.warning("ARI ping failed (%s); reconnecting", exc)
                await ws.close()
                return

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type == aiohttp.WSMsgType.ERROR:
                    log.warning("ARI WebSocket error: %s", ws.exception())
                continue
            await self._dispatch(msg.data)

    async def _dispatch(self, data: str) -> None:
        try:
            event = parse_event(json.loads(data))
        except (InvalidEvent, ValueError) as exc:
            log.warning("dropped ARI event: %s", exc)
            return
        if event.type == "ApplicationReplaced":
            log.error("another client took over the Stasis app %r: two daemons on one app?", self.app)
        try:
            await self._on_event(event)
        except Exception:  # a bug in one handler must not take the session down
            log.exception("ARI event handler failed on %s", event.type)


def _object(value: Any) -> dict[str, Any]:
    """A JSON object from ARI, as the resource's parser takes it; AriError for anything else."""
    if not isinstance(value, dict):
        raise AriError(f"ARI answered {str(value)[:100]!r} where an object was expected")
    return value


def _objects(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise AriError(f"ARI answered {str(value)[:100]!r} where a list was expected")
    return [_object(item) for item in value]


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error(method: str, path: str, status: int, text: str) -> AriError:
    try:
        message = json.loads(text).get("message", text)
    except (ValueError, AttributeError):
        message = text
    if status == 401:
        return AriError(f"ARI refused the user or password (HTTP 401) on {method} {path}", status)
    cls = AriNotFound if status == 404 else AriError
    return cls(f"ARI {method} {path}: HTTP {status} {message}".strip(), status)
