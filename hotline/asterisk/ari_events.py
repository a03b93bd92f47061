"""Typed ARI events: raw JSON from /ari/events becomes these dataclasses here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hotline.errors import InvalidEvent
from hotline.text import NAME_LIMIT, NUMBER_LIMIT, clean_text


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    caller_num: str = ""
    caller_name: str = ""
    exten: str = ""
    context: str = ""
    created_at: datetime | None = None
    language: str = ""
    app_name: str = ""  # the dialplan application the channel runs now (Stasis for ours)
    app_data: str = ""  # its arguments: "hotline,inbound,NUMBER,..."

    @property
    def endpoint(self) -> str:
        """PJSIP endpoint of the channel: 'PJSIP/sipp-trunk-00000001' -> 'sipp-trunk'."""
        tech, _, rest = self.name.partition("/")
        return rest.rsplit("-", 1)[0] if tech and rest else ""


@dataclass(frozen=True)
class Bridge:
    id: str
    channels: tuple[str, ...] = ()
    bridge_type: str = ""
    video_mode: str = ""  # talker, single, sfu; "" for a bridge without video


@dataclass(frozen=True)
class EndpointState:
    """A PJSIP endpoint as ARI lists it: its state (online, offline, unknown) and its channels."""

    resource: str
    state: str
    channel_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AriEvent:
    type: str
    application: str
    timestamp: datetime | None


@dataclass(frozen=True)
class ChannelEvent(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...] = ()
    replace_channel_id: str | None = None


@dataclass(frozen=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelDestroyed(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelHold(ChannelEvent):
    """The channel's far end put the call on hold (a SIP re-INVITE with sendonly or inactive);
    Asterisk plays music on hold to the rest of the bridge by itself."""

    musicclass: str = ""


@dataclass(frozen=True)
class ChannelUnhold(ChannelEvent):
    """The channel's far end took the call off hold (a re-INVITE back to sendrecv)."""


@dataclass(frozen=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str = ""
    duration_ms: int = 0


@dataclass(frozen=True)
class ChannelUserevent(ChannelEvent):
    """A user event sent to the app about a channel (POST /events/user/NAME?source=channel:ID):
    how the CLI asks the daemon that runs the call for something (a transfer)."""

    eventname: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelTransfer(AriEvent):
    """A REFER on a channel whose PJSIP_TRANSFER_HANDLING() is ari-only: Asterisk answered it 202
    and does nothing more; the app does the transfer and reports how it goes (transfer_progress).
    `destination`: the Refer-To user of a blind transfer; `protocol_id`: the SIP Call-ID of the
    call an attended one replaces, and `destination_channel_id` the channel of that dialog when
    Asterisk found it among its own (refer_to.destination_channel; None for a dialog it does not
    have). Each report is echoed as another of these, with its `state`."""

    source_channel_id: str = ""  # the channel the REFER came on
    connected_channel_id: str | None = None  # the channel bridged with it
    destination: str = ""
    protocol_id: str | None = None
    state: str | None = None
    destination_channel_id: str | None = None


@dataclass(frozen=True)
class PlaybackEvent(AriEvent):
    playback_id: str
    target_uri: str
    state: str

    @property
    def channel_id(self) -> str | None:
        kind, _, ident = self.target_uri.partition(":")
        return ident if kind == "channel" else None


@dataclass(frozen=True)
class PlaybackStarted(PlaybackEvent):
    pass


@dataclass(frozen=True)
class PlaybackFinished(PlaybackEvent):
    pass


@dataclass(frozen=True)
class OtherEvent(AriEvent):
    """An event hotline does not handle (yet): kept whole for logging."""

    raw: Mapping[str, Any] = field(default_factory=dict)


def parse_channel(raw: Mapping[str, Any]) -> Channel:
    try:
        caller = raw.get("caller") or {}
        dialplan = raw.get("dialplan") or {}
        return Channel(
            id=_text(raw["id"]),
            name=_text(raw["name"]),
            state=_text(raw.get("state", "")),
            # The caller's own choice, bytes and all: cleaned here, before anything logs it, stores
            # it or passes it on (as the caller id of the agent's INVITE).
            caller_num=clean_text(_text(caller.get("number", "")), NUMBER_LIMIT),
            caller_name=clean_text(_text(caller.get("name", "")), NAME_LIMIT),
            exten=_text(dialplan.get("exten", "")),
            context=_text(dialplan.get("context", "")),
            created_at=_time(raw.get("creationtime")),
            language=_text(raw.get("language", "")),
            app_name=_text(dialplan.get("app_name", "")),
            app_data=_text(dialplan.get("app_data", "")),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidEvent(f"malformed channel in ARI event: {exc!r}") from None


def parse_bridge(raw: Mapping[str, Any]) -> Bridge:
    try:
        return Bridge(id=_text(raw["id"]), channels=tuple(_text(c) for c in raw.get("channels", [])),
                      bridge_type=_text(raw.get("bridge_type", "")),
                      video_mode=_text(raw.get("video_mode", "")))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidEvent(f"malformed bridge from ARI: {exc!r}") from None


def parse_endpoint(raw: Mapping[str, Any]) -> EndpointState:
    try:
        return EndpointState(resource=_text(raw["resource"]), state=_text(raw.get("state", "unknown")),
                        channel_ids=tuple(_text(c) for c in raw.get("channel_ids", [])))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidEvent(f"malformed endpoint from ARI: {exc!r}") from None


def parse_event(raw: Mapping[str, Any]) -> AriEvent:
    """One ARI event dict -> its dataclass; InvalidEvent when a field hotline needs is missing."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise InvalidEvent(f"ARI event without a type: {str(raw)[:200]}")
    kind = raw["type"]
    base = {"type": kind, "application": _text(raw.get("application", "")),
            "timestamp": _time(raw.get("timestamp"))}
    parser = _PARSERS.get(kind)
    if parser is None:
        return OtherEvent(**base, raw=raw)
    try:
        return parser(base, raw)
    except InvalidEvent:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidEvent(f"malformed {kind} event: {exc!r}") from None


def _stasis_start(base: dict[str, Any], raw: Mapping[str, Any]) -> StasisStart:
    replaced = raw.get("replace_channel")
    return StasisStart(**base, channel=parse_channel(raw["channel"]),
                       args=tuple(_text(a) for a in raw.get("args", [])),
                       replace_channel_id=_text(replaced["id"]) if replaced else None)


def _channel_destroyed(base: dict[str, Any], raw: Mapping[str, Any]) -> ChannelDestroyed:
    return ChannelDestroyed(**base, channel=parse_channel(raw["channel"]),
                            cause=int(raw.get("cause", 0)), cause_txt=_text(raw.get("cause_txt", "")))


def _hangup_request(base: dict[str, Any], raw: Mapping[str, Any]) -> ChannelHangupRequest:
    cause = raw.get("cause")
    return ChannelHangupRequest(**base, channel=parse_channel(raw["channel"]),
                                cause=int(cause) if cause is not None else None,
                                soft=bool(raw.get("soft", False)))


def _dtmf(base: dict[str, Any], raw: Mapping[str, Any]) -> ChannelDtmfReceived:
    digit = _text(raw["digit"])
    if len(digit) != 1 or digit not in "0123456789*#ABCD":
        raise InvalidEvent(f"ChannelDtmfReceived with digit {digit!r}")
    return ChannelDtmfReceived(**base, channel=parse_channel(raw["channel"]), digit=digit,
                               duration_ms=int(raw.get("duration_ms", 0)))


def _user_event(base: dict[str, Any], raw: Mapping[str, Any]) -> ChannelUserevent:
    values = raw.get("userevent") or {}
    if not isinstance(values, Mapping):
        raise InvalidEvent(f"ChannelUserevent with userevent {values!r}")
    return ChannelUserevent(**base, channel=parse_channel(raw["channel"]), eventname=_text(raw["eventname"]),
                            variables={str(k): str(v) for k, v in values.items()})


def _channel_transfer(base: dict[str, Any], raw: Mapping[str, Any]) -> ChannelTransfer:
    referred, refer_to = raw["referred_by"], raw["refer_to"]
    wanted = refer_to["requested_destination"]
    connected, replaced = referred.get("connected_channel"), refer_to.get("destination_channel")
    protocol_id, state = wanted.get("protocol_id"), raw.get("state")
    return ChannelTransfer(**base, source_channel_id=_text(referred["source_channel"]["id"]),
                           connected_channel_id=_text(connected["id"]) if connected else None,
                           destination=_text(wanted.get("destination") or ""),
                           protocol_id=_text(protocol_id) if protocol_id else None,
                           state=_text(state) if state else None,
                           destination_channel_id=_text(replaced["id"]) if replaced else None)


def _hold(base: dict[str, Any], raw: Mapping[str, Any]) -> ChannelHold:
    return ChannelHold(**base, channel=parse_channel(raw["channel"]),
                       musicclass=_text(raw.get("musicclass", "")))


def _channel_only(cls: type[ChannelEvent]) -> Callable[[dict[str, Any], Mapping[str, Any]], AriEvent]:
    def parse(base: dict[str, Any], raw: Mapping[str, Any]) -> AriEvent:
        return cls(**base, channel=parse_channel(raw["channel"]))
    return parse


def _playback(cls: type[PlaybackEvent]) -> Callable[[dict[str, Any], Mapping[str, Any]], AriEvent]:
    def parse(base: dict[str, Any], raw: Mapping[str, Any]) -> AriEvent:
        pb = raw["playback"]
        return cls(**base, playback_id=_text(pb["id"]), target_uri=_text(pb.get("target_uri", "")),
                   state=_text(pb.get("state", "")))
    return parse


_PARSERS: dict[str, Callable[[dict[str, Any], Mapping[str, Any]], AriEvent]] = {
    "StasisStart": _stasis_start,
    "StasisEnd": _channel_only(StasisEnd),
    "ChannelDestroyed": _channel_destroyed,
    "ChannelHangupRequest": _hangup_request,
    "ChannelStateChange": _channel_only(ChannelStateChange),
    "ChannelDtmfReceived": _dtmf,
    "ChannelUserevent": _user_event,
    "ChannelTransfer": _channel_transfer,
    "ChannelHold": _hold,
    "ChannelUnhold": _channel_only(ChannelUnhold),
    "PlaybackStarted": _playback(PlaybackStarted),
    "PlaybackFinished": _playback(PlaybackFinished),
}

# What the daemon asks Asterisk to send (PUT /applications/{app}/eventFilter): the events the engine
# acts on, nothing else. Every other event costs Asterisk a JSON serialisation and us a parse, per
# call (DESIGN: 36 ChannelVarset per call; a bridged call also brings Dial, ChannelStateChange,
# ChannelEnteredBridge/LeftBridge and BridgeDestroyed events nobody reads). ChannelHangupRequest
# is the one event in it that StasisEnd and ChannelDestroyed do not repeat: only its `soft` and
# `cause` tell a channel Asterisk hung up shutting down (a failure) from a caller's BYE (an
# abandon), since both are destroyed with cause 0.
HANDLED_EVENT_TYPES: tuple[str, ...] = (
    "StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelHangupRequest", "ChannelDtmfReceived",
    "PlaybackFinished", "ApplicationReplaced", "ChannelUserevent",
    "ChannelTransfer", "ChannelHold", "ChannelUnhold",
)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _time(value: Any) -> datetime | None:
    """ARI timestamps look like '2026-11-22T21:30:01.123+0000'."""
    if not value:
        return None
    return datetime.fromisoformat(value)  # a tenth of strptime's cost, on every event
