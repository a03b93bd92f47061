"""The call engine without Asterisk or PostgreSQL, for its fast unit tests: a recording fake ARI
client that answers requests the way Asterisk 22 did on the lab (tests/unit/transcripts), a record
sink that keeps what the calls submit, and a stand-in hop store. Events reach the calls through
the real Router, as the ARI session hands them over. The lab tests prove the whole path."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hotline.asterisk.ari_events import (
    AriEvent,
    Bridge,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from hotline.engine.call import InboundCall
from hotline.engine.context import CallContext
from hotline.engine.directory import Directory, Snapshot
from hotline.engine.queueing.queues import QueueManager
from hotline.engine.router import Router
from hotline.errors import AriError, AriNotFound, SwitchRefused
from hotline.provision.model import Provisioning
from hotline.store.agent_sessions import AgentPresence
from hotline.store.availability import StoreAvailability
from hotline.store.callbacks import CallbackRequest
from hotline.store.contacts import LinesBusy
from hotline.store.hops import Hop, NewHop
from hotline.store.recordings import OpenRecording
from hotline.store.records import Record
from hotline.store.switches import IssuedSwitch, SwitchUse, TokenState
from hotline.store.transfers import OpenConsult

APP = "hotline"


@pytest.fixture(autouse=True)
def every_move_allowed(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every move a test makes is one the state machine allows (the funnel logs an error if not).
    Autouse in every module that imports it."""
    with caplog.at_level(logging.DEBUG, logger="hotline"):
        yield
    refused = [r.getMessage() for r in caplog.get_records("call") if "is not a transition" in r.getMessage()]
    assert refused == []
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def channel(channel_id: str, caller: str = "89165551234", state: str = "Ring",
            name: str | None = None, context: str = "hotline-inbound") -> Channel:
    return Channel(id=channel_id, name=name or f"PJSIP/sipp-trunk-{channel_id}", state=state,
                   caller_num=caller, context=context, created_at=NOW)


def stasis_start(ch: Channel, *args: str) -> StasisStart:
    return StasisStart("StasisStart", APP, NOW, channel=ch, args=args)


def stasis_end(channel_id: str) -> StasisEnd:
    return StasisEnd("StasisEnd", APP, NOW, channel=channel(channel_id))


def destroyed(channel_id: str, cause: int = 16, text: str = "Normal Clearing") -> ChannelDestroyed:
    return ChannelDestroyed("ChannelDestroyed", APP, NOW, channel=channel(channel_id), cause=cause,
                            cause_txt=text)


def dtmf(channel_id: str, digit: str) -> ChannelDtmfReceived:
    return ChannelDtmfReceived("ChannelDtmfReceived", APP, NOW, channel=channel(channel_id), digit=digit)


@dataclass
class Request:
    name: str
    args: tuple[object, ...]


class RecordingAri:
    """ARI as the engine calls it: every request recorded in order; channels, bridges and
    playbacks kept as Asterisk would, and the events Asterisk would send emitted to `emit`
    (a hangup: StasisEnd, then ChannelDestroyed; a playback: PlaybackFinished, unless
    `hold_playbacks`). Agent legs answer only when the test says so (`answer_leg`)."""

    all_channels = True

    def __init__(self, emit: Callable[[AriEvent], object]) -> None:
        self.emit = emit
        self.requests: list[Request] = []
        self.live: set[str] = set()
        self.recordings: dict[str, str] = {}  # live recordings Asterisk kept (a test's), by name: state
        self.bridge_members: dict[str, list[str]] = {}
        self.hold_playbacks = False
        self.headers: dict[str, dict[str, str]] = {}  # channel -> the SIP headers of its INVITE
        self.variables: dict[str, dict[str, str]] = {}  # channel -> the variables it was placed with
        self.placed_as: dict[str, tuple[str, str | None]] = {}  # channel -> its caller id and formats
        # Channels a killed daemon left in Stasis: their Stasis arguments and channel names.
        self.left_in_stasis: dict[str, tuple[str, str]] = {}
        self.contexts: dict[str, str] = {}  # the dialplan context of a channel left in Stasis
        # Listed by `channels()` in Stasis, gone by the time they are fetched: hung up meanwhile.
        self.listed_but_gone: set[str] = set()
        self.started_at = NOW - timedelta(days=1)  # Asterisk's startup_time (asterisk/info)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()

    # -- what tests use ------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [r.name for r in self.requests]

    def of(self, name: str) -> list[Request]:
        return [r for r in self.requests if r.name == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 2.0) -> Request:
        """The `count`-th request called `name`, once it was made."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of(name)) >= count)
        return self.of(name)[count - 1]

    def answer_leg(self, channel_id: str, caller_channel: str) -> None:
        """The agent picks up: its leg enters Stasis with the arguments the engine gave it."""
        self.live.add(channel_id)
        self.send(stasis_start(channel(channel_id, state="Up", name=f"PJSIP/agent-{channel_id}"),
                               "agent", caller_channel))

    def caller_hangs_up(self, channel_id: str) -> None:
        self.live.discard(channel_id)
        self.send(stasis_end(channel_id))
        self.send(destroyed(channel_id, 0, "Unknown"))  # a BYE, as Asterisk 22 reports it

    def asterisk_shuts_down(self, channel_id: str) -> None:
        """`core stop now` or a restart, as the lab's Asterisk 22 sends it: a soft hang-up request
        whose cause is the softhangup flag AST_SOFTHANGUP_SHUTDOWN (4), then the channel's end,
        destroyed with cause 0 as after a BYE."""
        self.live.discard(channel_id)
        self.send(ChannelHangupRequest("ChannelHangupRequest", APP, NOW, channel=channel(channel_id),
                                       cause=4, soft=True))
        self.send(stasis_end(channel_id))
        self.send(destroyed(channel_id, 0, "Unknown"))

    def left_by_last_daemon(self, channel_id: str, args: str = "inbound,84951234567",
                            name: str | None = None, context: str = "hotline-inbound") -> None:
        """A channel in Stasis since before this daemon started (no StasisStart will come), from
        the dialplan `context`."""
        self.live.add(channel_id)
        self.left_in_stasis[channel_id] = (f"{APP},{args}", name or f"PJSIP/sipp-trunk-{channel_id}")
        self.contexts[channel_id] = context

    def send(self, event: AriEvent) -> None:
        self.emit(event)

    # -- the requests (hotline.engine.context.CallAri) ---------------------------------------------

    async def _record(self, name: str, *args: object) -> None:
        self.requests.append(Request(name, args))
        async with self._changed:
            self._changed.notify_all()
        await asyncio.sleep(0)  # a round trip: other tasks run meanwhile

    async def subscribe(self, app: str, event_source: str) -> None:
        await self._record("subscribe", event_source)
        if event_source.startswith("channel:") and event_source[len("channel:"):] not in self.live:
            raise AriError("ARI POST applications/hotline/subscription: HTTP 422 Event source does not exist")

    async def info(self) -> dict[str, Any]:
        await self._record("info")
        return {"status": {"startup_time": self.started_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"}}

    async def channels(self) -> list[Channel]:
        await self._record("channels")
        going = [replace(channel(c, state="Up"), app_name="Stasis", app_data=f"{APP},inbound")
                 for c in sorted(self.listed_but_gone)]
        return [self._channel(c) for c in sorted(self.live)] + going

    async def channel(self, channel_id: str) -> Channel:
        await self._record("channel", channel_id)
        if channel_id not in self.live:
            raise AriNotFound(f"channel {channel_id} not found", 404)
        return self._channel(channel_id)

    def _channel(self, channel_id: str) -> Channel:
        if channel_id not in self.left_in_stasis:
            return channel(channel_id, state="Up")
        args, name = self.left_in_stasis[channel_id]
        return replace(channel(channel_id, state="Up", name=name, context=self.contexts[channel_id]),
                       app_name="Stasis", app_data=args)

    async def channel_variable(self, channel_id: str, name: str) -> str:
        await self._record("channel_variable", channel_id, name)
        self._require(channel_id)
        if name in self.variables.get(channel_id, {}):
            return self.variables[channel_id][name]
        header = name.removeprefix("PJSIP_HEADER(read,").removesuffix(")")
        if header not in self.headers.get(channel_id, {}):
            raise AriError("Unable to read provided function", 500)  # as Asterisk answers
        return self.headers[channel_id][header]

    async def set_channel_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._record("set_channel_variable", channel_id, name, value)
        self._require(channel_id)
        self.variables.setdefault(channel_id, {})[name] = value

    async def answer(self, channel_id: str) -> None:
        await self._record("answer", channel_id)
        self._require(channel_id)

    async def ring(self, channel_id: str) -> None:
        await self._record("ring", channel_id)

    async def play(self, channel_id: str, media: str | Sequence[str], playback_id: str | None = None) -> str:
        playback = playback_id or f"pb-{next(self._ids)}"
        await self._record("play", channel_id, media)
        self._require(channel_id)
        if not self.hold_playbacks:
            self.finish_playback(playback, channel_id)
        return playback

    def finish_playback(self, playback_id: str, channel_id: str) -> None:
        asyncio.get_running_loop().call_soon(self.send, PlaybackFinished(
            "PlaybackFinished", APP, NOW, playback_id=playback_id, target_uri=f"channel:{channel_id}",
            state="done"))

    async def stop_playback(self, playback_id: str) -> None:
        await self._record("stop_playback", playback_id)

    async def originate(self, endpoint: str, app: str, app_args: str, channel_id: str, *,
                        timeout_s: int, caller_id: str = "", formats: str | None = None,
                        variables: Mapping[str, str] | None = None) -> None:
        self.variables[channel_id] = dict(variables or {})
        self.placed_as[channel_id] = (caller_id, formats)
        await self._record("originate", endpoint, app_args, channel_id)
        if endpoint.endswith("/unregistered"):
            raise AriError("Allocation failed", 500)

    async def snoop(self, channel_id: str, snoop_id: str, app: str, app_args: str, *, spy: str,
                    whisper: str) -> None:
        """As Asterisk does: the Snoop channel enters Stasis with the arguments given."""
        await self._record("snoop", channel_id, snoop_id, spy, whisper)
        self._require(channel_id)
        self.live.add(snoop_id)
        asyncio.get_running_loop().call_soon(self.send, stasis_start(
            channel(snoop_id, state="Up", name=f"Snoop/{channel_id}"), *app_args.split(",")))

    async def transfer_progress(self, channel_id: str, state: str) -> None:
        await self._record("transfer_progress", channel_id, state)
        self._require(channel_id)

    async def start_moh(self, channel_id: str, moh_class: str) -> None:
        await self._record("start_moh", channel_id)

    async def stop_moh(self, channel_id: str) -> None:
        await self._record("stop_moh", channel_id)

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None:
        await self._record("create_bridge", bridge_id, bridge_type)
        self.bridge_members.setdefault(bridge_id, [])

    async def bridges(self) -> list[Bridge]:
        await self._record("bridges")
        return [Bridge(b, tuple(m)) for b, m in self.bridge_members.items()]

    async def bridge(self, bridge_id: str) -> Bridge:
        await self._record("bridge", bridge_id)
        if bridge_id not in self.bridge_members:
            raise AriNotFound(f"bridge {bridge_id} not found", 404)
        return Bridge(bridge_id, tuple(self.bridge_members[bridge_id]))

    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self._record("add_to_bridge", bridge_id, tuple(channel_ids))
        for channel_id in channel_ids:
            self._require(channel_id)
        self.bridge_members.setdefault(bridge_id, []).extend(channel_ids)

    async def remove_from_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self._record("remove_from_bridge", bridge_id, tuple(channel_ids))
        members = self.bridge_members.get(bridge_id, [])
        for channel_id in channel_ids:
            if channel_id not in members:
                raise AriError(f"Channel not in bridge: {channel_id}", 422)
            members.remove(channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._record("destroy_bridge", bridge_id)
        self.bridge_members.pop(bridge_id, None)

    async def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None:
        await self._record("record_bridge", bridge_id, name, fmt)
        if bridge_id not in self.bridge_members:
            raise AriNotFound(f"Bridge not found: {bridge_id}", 404)

    async def pause_recording(self, name: str) -> None:
        await self._record("pause_recording", name)

    async def resume_recording(self, name: str) -> None:
        await self._record("resume_recording", name)

    async def stop_recording(self, name: str) -> None:
        await self._record("stop_recording", name)
        self.recordings.pop(name, None)

    async def live_recording(self, name: str) -> dict[str, Any] | None:
        """Asterisk's live recording: those a test put in `recordings` (name -> state)."""
        await self._record("live_recording", name)
        state = self.recordings.get(name)
        return None if state is None else {"name": name, "state": state}

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._record("hangup", channel_id, reason)
        self._require(channel_id)
        self.live.discard(channel_id)
        for members in self.bridge_members.values():
            if channel_id in members:
                members.remove(channel_id)
        loop = asyncio.get_running_loop()
        loop.call_soon(self.send, stasis_end(channel_id))
        loop.call_soon(self.send, destroyed(channel_id))

    def _require(self, channel_id: str) -> None:
        if channel_id not in self.live:
            raise AriNotFound(f"Channel not found: {channel_id}", 404)


class RecordSink:
    """The write-behind as the calls see it: what they submitted, in order."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def submit(self, record: Record) -> None:
        self.records.append(record)

    def of_hop(self, hop_id: int) -> list[Record]:
        return [r for r in self.records if r.get("hop") == hop_id]

    def summary(self) -> list[tuple[object, ...]]:
        """(kind, hop, what) per record: the event, the key, the end reason. A hop written late
        (and the records naming it) shows as its channel."""
        return [(r["k"], r.get("hop") or r.get("channel_id"),
                 r.get("event") or r.get("digit") or r.get("reason") or "") for r in self.records]


class StandInHops:
    """The hop store: opens cases and hops with increasing ids; `down` raises the outage a
    PostgreSQL restart gives; `lines_busy` refuses as every line held."""

    def __init__(self) -> None:
        self.opened: list[Hop] = []
        self.down = False
        self.asked = 0  # how many times a hop was asked for (the database was queried)
        self.lines_busy = False
        self.last_agent_id: int | None = None
        self.left_open: list[Hop] = []  # hops a killed daemon left open
        self.first_in_line: set[int] = set()  # hops whose visit a transfer not answered put first
        self.consults: dict[int, OpenConsult] = {}  # a hop's consult a killed daemon left under way
        self.recordings: dict[int, list[OpenRecording]] = {}  # a hop's a killed daemon left open
        self._ids = itertools.count(1)

    async def open_case_with_hop(self, hop: NewHop, customer_key: str, *, line_limit: int | None = None,
                                 continue_within_s: int | None = None) -> Hop:
        await asyncio.sleep(0)
        self.asked += 1
        if self.down:
            raise psycopg.OperationalError("connection refused")
        if self.lines_busy and line_limit is not None:
            raise LinesBusy("all lines held")
        ident = next(self._ids)
        opened = Hop(id=ident, case_id=100 + ident, seq=1, node=hop.node, channel_id=hop.channel_id,
                     channel_kind=hop.channel_kind, dialled=hop.dialled, dialled_e164=hop.dialled_e164,
                     caller_num=hop.caller_num, entered_at=hop.entered_at or NOW, ended_at=None,
                     end_reason=None, hangup_cause=None, number_id=hop.number_id, hotline_id=hop.hotline_id,
                     media=hop.media, case_last_agent_id=self.last_agent_id)
        self.opened.append(opened)
        return opened

    async def add_hop(self, case_id: int, hop: NewHop) -> Hop:
        await asyncio.sleep(0)
        if self.down:
            raise psycopg.OperationalError("connection refused")
        ident = next(self._ids)
        added = Hop(id=ident, case_id=case_id, seq=2, node=hop.node, channel_id=hop.channel_id,
                    channel_kind=hop.channel_kind, dialled=hop.dialled, dialled_e164=hop.dialled_e164,
                    caller_num=hop.caller_num, entered_at=hop.entered_at or NOW, ended_at=None,
                    end_reason=None, hangup_cause=None, hotline_id=hop.hotline_id, media=hop.media)
        self.opened.append(added)
        return added

    async def open_hop_in_case(self, case_id: int, hop: NewHop) -> Hop:
        """A customer's page come back: the next hop of their live case."""
        return await self.add_hop(case_id, hop)

    def leave_open(self, hop_id: int, channel_id: str, **fields: Any) -> Hop:
        """A hop a daemon killed under load left open, its call entered a moment before."""
        hop = Hop(id=hop_id, case_id=100 + hop_id, seq=1, node="test", channel_id=channel_id,
                  channel_kind="pstn", dialled="84951234567", dialled_e164="+74951234567",
                  caller_num="89165550000", entered_at=NOW, ended_at=None, end_reason=None,
                  hangup_cause=None, **fields)
        self.left_open.append(hop)
        return hop

    async def open_hops(self, node: str) -> list[Hop]:
        """Every hop it opened, closed or not (a close may still wait in the write-behind), read
        as a real query is: other tasks run meanwhile."""
        await asyncio.sleep(0.01)
        return [*self.left_open, *self.opened]

    async def joined_first_in_line(self, hop_id: int) -> bool:
        return hop_id in self.first_in_line

    async def last_queue_event(self, hop_id: int) -> str | None:
        return None  # the fake keeps no queue events of a daemon before it

    async def hop_by_channel(self, node: str, channel_id: str) -> Hop | None:
        return next((h for h in [*self.left_open, *self.opened] if h.channel_id == channel_id), None)

    async def open_recordings(self, hop_id: int) -> list[OpenRecording]:
        await asyncio.sleep(0)
        if self.down:
            raise psycopg.OperationalError("connection refused")
        return self.recordings.get(hop_id, [])

    async def open_consult(self, hop: Hop) -> OpenConsult | None:
        await asyncio.sleep(0)
        if self.down:
            raise psycopg.OperationalError("connection refused")
        return self.consults.get(hop.id)


class StandInSwitches:
    """Switch tokens: `token` is the one that opens a video hop (id `hop_id`) in the case of the
    leg it replaces (`replaces()` says which, once that leg's hop exists)."""

    def __init__(self, token: str, hop_id: int = 900) -> None:
        self.token = token
        self.hop_id = hop_id
        self.from_hop: Hop | None = None
        self.queue_id: int | None = None
        self.agent_id: int | None = None
        self.issued: list[tuple[int, str]] = []  # (hop, who asked) of the tokens issued
        self.to_numbers: list[str | None] = []  # the phone each was issued to dial (None: a link)
        self.not_answered: list[tuple[str, str, int | None, str]] = []  # (token, outcome, cause, text)

    def replaces(self, hop: Hop, queue_id: int, agent_id: int | None) -> None:
        self.from_hop, self.queue_id, self.agent_id = hop, queue_id, agent_id

    async def use(self, token: str, hop: NewHop) -> SwitchUse:
        if token != self.token or self.from_hop is None:
            raise SwitchRefused(TokenState.UNKNOWN)
        video = replace(self.from_hop, id=self.hop_id, seq=2, channel_id=hop.channel_id, media=hop.media,
                        channel_kind=hop.channel_kind)
        return SwitchUse(video, self.from_hop.id, True, self.from_hop.hotline_id, self.queue_id,
                         self.agent_id, self.from_hop.priority)

    async def issue(self, hop_id: int, requested_by: str, ttl_s: int, *,
                    to_number: str | None = None) -> IssuedSwitch:
        """`token`, for leg `hop_id` (the phone leg dialled for a video leg brings it back)."""
        self.issued.append((hop_id, requested_by))
        self.to_numbers.append(to_number)
        return IssuedSwitch(self.token, 101, hop_id, "", NOW)

    async def phone_not_answered(self, token: str, outcome: str, cause: int | None, cause_text: str) -> bool:
        self.not_answered.append((token, outcome, cause, cause_text))
        return True


class StandInCallbacks:
    """The callback store: requests kept in a list, ids from 1; `down` raises an outage."""

    def __init__(self) -> None:
        self.requests: list[CallbackRequest] = []
        self.down = False

    async def request(self, *, case_id: int, hop_id: int | None, queue_id: int, number: str,
                      joined_at: datetime, due_at: datetime, expires_at: datetime | None) -> CallbackRequest:
        await asyncio.sleep(0)
        if self.down:
            raise psycopg.OperationalError("connection refused")
        made = CallbackRequest(id=len(self.requests) + 1, case_id=case_id, hop_id=hop_id, queue_id=queue_id,
                               number=number, joined_at=joined_at, requested_at=due_at, due_at=due_at,
                               expires_at=expires_at, attempts=0, status="pending", placed_by=None,
                               lease_until=None, ended_at=None, detail="")
        self.requests.append(made)
        return made


def ids_of(prov: Provisioning) -> dict[str, dict[str, int]]:
    """Row ids as the directory would read them: 1, 2, ... per kind, in name order."""
    return {kind: {name: n for n, name in enumerate(sorted(prov.section(kind)), start=1)}
            for kind in Provisioning.KINDS}


@dataclass
class Engine:
    """One daemon's engine, wired as hotline.daemon wires it, around the fakes."""

    prov: Provisioning
    logged_in: tuple[str, ...] = ()
    node: str = "test"
    ari: RecordingAri = field(init=False)
    records: RecordSink = field(default_factory=RecordSink)
    hops: StandInHops = field(default_factory=StandInHops)
    queues: QueueManager = field(default_factory=QueueManager)
    switches: StandInSwitches | None = None
    video_links: list[int] = field(default_factory=list)  # hops whose caller asked for a video link
    callbacks: StandInCallbacks | None = None
    rejoin_grace_s: float = 0.0  # web_rejoin_grace
    ctx: CallContext = field(init=False)
    router: Router = field(init=False)

    def __post_init__(self) -> None:
        self.ari = RecordingAri(self._emit)
        directory = Directory("postgresql://unused")
        presence = {name: AgentPresence(name, logged_in_since=NOW) for name in self.logged_in}
        directory.snapshot = Snapshot(self.prov, ids_of(self.prov), presence)
        self.queues.provision(self.prov)
        self.queues.presence({n: True for n in self.logged_in}, {})
        for name in self.logged_in:
            self.queues.device(self.prov.agents[name].endpoint, "NOT_INUSE")
        self.ctx = CallContext(
            ari=self.ari, contacts=self.hops, records=self.records, directory=directory, queues=self.queues,
            watch=lambda c, inbox: self.router.watch(c, inbox), unwatch=lambda c: self.router.unwatch(c),
            node=self.node, app=APP, hangup_grace_s=1.0, store_open_patience_s=0.2,
            find_call=lambda hop_id: self.router.call_of_hop(hop_id), ring_grace_s=0.2,
            conference_legs=lambda case_id: self.router.conference_legs(case_id),
            switches=self.switches, callbacks=self.callbacks,
            store=StoreAvailability(self._database_answers, probe_every_s=0.05),
            ask_video_link=self.video_links.append, rejoin_grace_s=self.rejoin_grace_s,
            find_dropped=lambda customer: self.router.dropped_call_of(customer))
        self.router = Router(self.ctx)

    async def _database_answers(self) -> None:
        if self.hops.down:
            raise psycopg.OperationalError("connection refused")

    def _emit(self, event: AriEvent) -> None:
        asyncio.ensure_future(self.router.on_event(event))

    def call_in(self, channel_id: str, dialled: str, *, caller: str = "89165551234",
                extra: Sequence[str] = ()) -> str:
        """A call enters Stasis from the dialplan's inbound context."""
        self.ari.live.add(channel_id)
        self.ari.send(stasis_start(channel(channel_id, caller), "inbound", dialled, *extra))
        return channel_id

    def call(self, channel_id: str) -> InboundCall:
        return self.router.calls[channel_id]

    async def settle(self, seconds: float = 0.05) -> None:
        """Let the calls' tasks run until they wait on something."""
        await asyncio.sleep(seconds)

    async def ended(self, timeout: float = 3.0) -> None:
        """Until every call's task is done."""
        await self.settle(0.01)  # events emitted a moment ago start their calls first
        async with asyncio.timeout(timeout):
            while self.router._tasks:
                await asyncio.gather(*list(self.router._tasks), return_exceptions=True)
