"""What every call needs, passed in by the daemon (no module-level singletons), and the few
interfaces the engine relies on, as Protocols: the daemon passes the real ARI client, store and
write-behind; the engine's unit tests pass a recording fake ARI client and record sink."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from hotline.asterisk.ari_events import Bridge, Channel
from hotline.engine.built_in_prompts import NOT_IN_SERVICE, sound
from hotline.engine.directory import Directory
from hotline.engine.live_hub import LiveHub
from hotline.engine.queueing.queues import QueueManager
from hotline.store.availability import StoreAvailability
from hotline.store.callbacks import CallbackRequest
from hotline.store.hops import Hop, NewHop
from hotline.store.recordings import OpenRecording
from hotline.store.records import Record
from hotline.store.switches import IssuedSwitch, SwitchUse
from hotline.store.transfers import OpenConsult

if TYPE_CHECKING:
    from hotline.engine.messages import Message


class CallAri(Protocol):
    """The ARI requests calls make (hotline.asterisk.ari.AriClient)."""

    all_channels: bool

    async def subscribe(self, app: str, event_source: str) -> None: ...
    async def channels(self) -> list[Channel]: ...
    async def info(self) -> dict[str, Any]: ...
    async def channel(self, channel_id: str) -> Channel: ...
    async def channel_variable(self, channel_id: str, name: str) -> str: ...
    async def set_channel_variable(self, channel_id: str, name: str, value: str) -> None: ...
    async def answer(self, channel_id: str) -> None: ...
    async def ring(self, channel_id: str) -> None: ...
    async def play(self, channel_id: str, media: str | Sequence[str],
                   playback_id: str | None = None) -> str: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def originate(self, endpoint: str, app: str, app_args: str, channel_id: str, *,
                        timeout_s: int, caller_id: str = "", formats: str | None = None,
                        variables: Mapping[str, str] | None = None) -> None: ...
    async def transfer_progress(self, channel_id: str, state: str) -> None: ...
    async def snoop(self, channel_id: str, snoop_id: str, app: str, app_args: str, *, spy: str,
                    whisper: str) -> None: ...
    async def start_moh(self, channel_id: str, moh_class: str) -> None: ...
    async def stop_moh(self, channel_id: str) -> None: ...
    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None: ...
    async def bridges(self) -> list[Bridge]: ...
    async def bridge(self, bridge_id: str) -> Bridge: ...
    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None: ...
    async def remove_from_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None: ...
    async def pause_recording(self, name: str) -> None: ...
    async def resume_recording(self, name: str) -> None: ...
    async def stop_recording(self, name: str) -> None: ...
    async def live_recording(self, name: str) -> dict[str, Any] | None: ...
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...


class RecordSink(Protocol):
    """The ordered write-behind (hotline.store.write_behind.WriteBehind): every record of a call
    goes through it, in the order the call made it."""

    def submit(self, record: Record) -> None: ...


class HopStore(Protocol):
    """Opening a leg's hop is a question, not a record (is a line free? which case?), so it is
    asked at once (hotline.store.contacts.Contacts)."""

    async def open_case_with_hop(self, hop: NewHop, customer_key: str, *, line_limit: int | None = None,
                                 continue_within_s: int | None = None) -> Hop: ...
    async def add_hop(self, case_id: int, hop: NewHop) -> Hop: ...
    async def open_hops(self, node: str) -> list[Hop]: ...
    async def last_queue_event(self, hop_id: int) -> str | None: ...
    async def hop_by_channel(self, node: str, channel_id: str) -> Hop | None: ...
    async def joined_first_in_line(self, hop_id: int) -> bool: ...
    async def open_consult(self, hop: Hop) -> OpenConsult | None: ...
    async def open_recordings(self, hop_id: int) -> list[OpenRecording]: ...
    async def open_hop_in_case(self, case_id: int, hop: NewHop) -> Hop: ...


class SwitchStore(Protocol):
    """Spending a switch token (hotline.store.switches.Switches): one transaction with the video
    leg's hop, answered at once."""

    async def use(self, token: str, hop: NewHop) -> SwitchUse: ...
    async def issue(self, hop_id: int, requested_by: str, ttl_s: int, *,
                    to_number: str | None = None) -> IssuedSwitch: ...
    async def phone_not_answered(self, token: str, outcome: str, cause: int | None,
                                 cause_text: str) -> bool: ...


class Inbox(Protocol):
    """Where a call (or a conference leg) takes its messages: the router and the queue manager
    post to it."""

    @property
    def channel_id(self) -> str: ...
    def post(self, message: Message) -> None: ...


class CallbackStore(Protocol):
    """Storing a caller's callback request is a question too (did it take? which one?), asked at
    once (hotline.store.callbacks.Callbacks)."""

    async def request(self, *, case_id: int, hop_id: int | None, queue_id: int, number: str,
                      joined_at: datetime, due_at: datetime,
                      expires_at: datetime | None) -> CallbackRequest: ...


@dataclass(frozen=True)
class CallContext:
    ari: CallAri
    contacts: HopStore
    records: RecordSink  # what calls record, written behind them in batches, in order
    directory: Directory
    queues: QueueManager
    watch: Callable[[str, Inbox], None]  # another channel's events (an agent leg) go to this inbox
    unwatch: Callable[[str], None]
    node: str
    app: str = "hotline"
    region: str = "RU"
    not_in_service: str = sound(NOT_IN_SERVICE)
    hangup_grace_s: float = 5.0     # how long to wait for ChannelDestroyed after our hangup
    # The caller is not kept waiting for the database: after this long the call is served anyway
    # and its hop, with everything it recorded, goes through the write-behind when it ends.
    store_open_patience_s: float = 2.0
    # Once one call found the database away, the next ones do not each wait for it.
    store: StoreAvailability = field(default_factory=lambda: StoreAvailability(_answers))
    switches: SwitchStore | None = None  # None: video legs with a switch token are refused
    callbacks: CallbackStore | None = None  # None: no queue offers callbacks
    continue_case_within_s: int | None = None  # a customer calling again continues their case
    # The live call whose own leg is hop N (a switch looks up the leg it replaces), or None.
    find_call: Callable[[int], LiveCall | None] = lambda hop_id: None
    # A key the caller presses while talking with an agent to be sent a link to move to video;
    # ask_switch(hop_id) sends it (in the background: a gateway may take seconds).
    switch_key: str = ""
    ask_switch: Callable[[int], None] | None = None
    # A waiting caller's queue video key (or a menu's `video:QUEUE` key): ask_video_link(hop_id)
    # sends the link to go on waiting by video, the same way and with the same limits.
    ask_video_link: Callable[[int], None] | None = None
    # The legs of parties brought into a case's talk (a conference): released when the talk ends.
    conference_legs: Callable[[int], list[str]] = lambda case_id: []
    # A customer's web leg that drops while talking (not hung up with the page's button) leaves
    # the agent in the bridge this long for the same page to come back (0: the talk ends at once);
    # find_dropped(customer) is that customer's call waiting so.
    rejoin_grace_s: float = 0.0
    # Recorded talks (engine.recording): the format Asterisk writes and where its files are.
    recording_format: str = "wav"
    recording_dir: str = "/var/spool/asterisk/recording"
    # A talk's recording finished: recording_finished(name, format) has its file moved
    # (engine.recording_mover, the recording_move_to setting; None: the files stay).
    recording_finished: Callable[[str, str], None] | None = None
    find_dropped: Callable[[str], LiveCall | None] = lambda customer: None
    # Asterisk's own ring timeout comes first; ours is this much later (a lost event never holds
    # a caller).
    ring_grace_s: float = 2.0
    # A survey question waits this long for its key after it was played (then it is asked again,
    # once, then skipped).
    survey_key_timeout_s: float = 6.0
    # What the pages' live streams read (the agent's screen pop): a call only puts events in.
    hub: LiveHub = field(default_factory=LiveHub)


async def _answers() -> None:
    """The probe of a context given no database to watch: it always answers."""


class LiveCall(Inbox, Protocol):
    """Another live call, as a switch leg sees the one it replaces: read-only, and a message."""

    @property
    def is_talking(self) -> bool: ...
    @property
    def is_waiting(self) -> bool: ...
    @property
    def bridge_id(self) -> str: ...
    @property
    def case_id(self) -> int | None: ...
