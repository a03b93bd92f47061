import json
from pathlib import Path

import pytest

from hotline.asterisk.ari_events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    OtherEvent,
    PlaybackFinished,
    StasisStart,
    parse_event,
)
from hotline.errors import InvalidEvent

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (TRANSCRIPTS / name).read_text().splitlines() if line.strip()]


def test_recorded_call_parses_into_typed_events_in_order() -> None:
    events = [parse_event(raw) for raw in load("ari_inbound_call.jsonl")]
    start = events[0]
    assert isinstance(start, StasisStart)
    assert start.args[0] == "inbound"
    assert start.channel.endpoint == "sipp-trunk"
    assert any(isinstance(e, PlaybackFinished) and e.channel_id == start.channel.id for e in events)
    destroyed = [e for e in events if isinstance(e, ChannelDestroyed)]
    assert destroyed and destroyed[-1].channel.id == start.channel.id


def test_unknown_event_type_is_kept_whole() -> None:
    event = parse_event({"type": "ChannelVarset", "application": "hotline", "variable": "X"})
    assert isinstance(event, OtherEvent) and event.raw["variable"] == "X"


def test_event_without_type_is_invalid() -> None:
    with pytest.raises(InvalidEvent):
        parse_event({"application": "hotline"})


def test_stasis_start_without_channel_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="StasisStart"):
        parse_event({"type": "StasisStart", "application": "hotline", "args": []})


def test_dtmf_digit_outside_the_keypad_is_invalid() -> None:
    raw = {"type": "ChannelDtmfReceived", "application": "hotline", "digit": "12",
           "channel": {"id": "1", "name": "PJSIP/x-1", "state": "Up"}}
    with pytest.raises(InvalidEvent):
        parse_event(raw)
    raw["digit"] = "5"
    event = parse_event(raw)
    assert isinstance(event, ChannelDtmfReceived) and event.digit == "5"
