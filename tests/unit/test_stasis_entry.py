"""The Stasis arguments the dialplan passes, as the router reads them."""

from __future__ import annotations

import pytest

from hotline.engine.stasis_entry import StasisEntry, parse_entry
from hotline.media import carries_video, case_bridge_type, originate_formats


def test_an_older_dialplans_two_arguments_still_make_an_audio_call() -> None:
    assert parse_entry(["inbound", "+74951234567"]) == StasisEntry("inbound", "+74951234567")


def test_a_call_that_negotiated_video_says_so() -> None:
    entry = parse_entry(["inbound", "video-support", "video=(vp8)", "customer=0a1b2c3d4e5f6789"])
    assert entry == StasisEntry("inbound", "video-support", video=True, customer="0a1b2c3d4e5f6789")
    audio = parse_entry(["inbound", "+74951234567", "video=(nothing)"])
    assert audio == StasisEntry("inbound", "+74951234567")


def test_a_switch_leg_brings_its_token_and_only_a_switch_leg_does() -> None:
    token = "ab" * 32
    entry = parse_entry(["switch", "switch", "video=(vp8|h264)", "customer=", f"token={token}"])
    assert entry == StasisEntry("switch", "switch", video=True, token=token)
    inbound = parse_entry(["inbound", "video-support", f"token={token}"])
    assert inbound == StasisEntry("inbound", "video-support")


@pytest.mark.parametrize("token", ["XYZ", "ab cd", "ab,cd", "0x12", "a" * 129, ""])
def test_anything_but_hex_is_dropped_from_what_the_caller_side_sent(token: str) -> None:
    entry = parse_entry(["switch", "switch", f"token={token}", f"customer={token}"])
    assert entry is not None and entry.token == "" and entry.customer == ""


@pytest.mark.parametrize("args", [[], ["inbound"], ["agent", "1795423329.0"], ["inbound", ""], ["dial", "x"]])
def test_arguments_that_are_not_an_entry_are_refused(args: list[str]) -> None:
    assert parse_entry(args) is None


@pytest.mark.parametrize("native, video", [("(vp8)", True), ("(h264|vp8)", True), ("(nothing)", False),
                                           ("", False), ("()", False)])
def test_video_is_read_from_the_channels_native_video_formats(native: str, video: bool) -> None:
    assert carries_video(native) is video


def test_video_agents_are_dialled_with_their_video_codecs_and_audio_agents_with_the_default() -> None:
    assert originate_formats({"audio", "video", "webrtc"}) == "opus,ulaw,alaw,vp8,h264"
    assert originate_formats({"audio", "video"}) == "ulaw,alaw,opus,vp8,h264"
    assert originate_formats({"audio"}) is None


def test_video_flows_through_an_sfu_bridge_and_audio_calls_get_a_plain_mixing_one() -> None:
    assert case_bridge_type(caller_video=True, agent_video=False) == "mixing,video_sfu"
    assert case_bridge_type(caller_video=False, agent_video=True) == "mixing,video_sfu"  # a switch may come
    assert case_bridge_type(caller_video=False, agent_video=False) == "mixing"
