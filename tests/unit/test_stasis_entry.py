"""The Stasis arguments the dialplan passes, as the router reads them."""

from __future__ import annotations

import pytest

from hotline.engine.stasis_entry import StasisEntry, WebHeaders, parse_entry, read_web_headers
from hotline.errors import AriError
from hotline.media import carries_video, case_bridge_type, originate_formats


def test_an_older_dialplans_two_arguments_still_make_an_audio_call() -> None:
    assert parse_entry(["inbound", "+74951234567"]) == StasisEntry("inbound", "+74951234567")


def test_a_call_that_negotiated_video_says_so() -> None:
    entry = parse_entry(["inbound", "video-support", "video=(vp8)"], "hotline-web")
    assert entry == StasisEntry("inbound", "video-support", video=True, web=True)
    audio = parse_entry(["inbound", "+74951234567", "video=(nothing)"], "hotline-inbound")
    assert audio == StasisEntry("inbound", "+74951234567")


def test_customer_and_token_arguments_are_never_taken_whatever_the_context() -> None:
    # A trunk caller dialling `x,customer=...,token=...` once forged these; they come from the
    # browser's headers now, read over ARI for calls of the web context only.
    forged = parse_entry(["inbound", "x", "customer=c0ffee", f"token={'ab' * 32}"], "hotline-inbound")
    assert forged == StasisEntry("inbound", "x")
    switch = parse_entry(["switch", "switch", "customer=c0ffee"], "hotline-inbound")
    assert switch == StasisEntry("switch", "switch")  # not web: no header is read, no token


@pytest.mark.parametrize("args", [[], ["inbound"], ["agent", "1795423329.0"], ["inbound", ""], ["dial", "x"]])
def test_arguments_that_are_not_an_entry_are_refused(args: list[str]) -> None:
    assert parse_entry(args) is None


class Headers:
    """ARI's channel variables as Asterisk 22 answers them: a header the INVITE lacked is a 500."""

    def __init__(self, **headers: str) -> None:
        self.headers = {f"PJSIP_HEADER(read,{k.replace('_', '-')})": v for k, v in headers.items()}
        self.asked: list[str] = []

    async def channel_variable(self, channel_id: str, name: str) -> str:
        self.asked.append(name)
        if name not in self.headers:
            raise AriError("Unable to read provided function", 500)
        return self.headers[name]


async def test_a_switch_leg_reads_its_token_and_customer_from_the_invites_headers() -> None:
    token = "AB" * 32
    ari = Headers(X_Hotline_Customer="0a1b2c3d4e5f6789", X_Hotline_Switch=token)
    headers = await read_web_headers(ari, "v1", switch=True)  # type: ignore[arg-type]
    assert headers == WebHeaders(customer="0a1b2c3d4e5f6789", token=token.lower())


async def test_an_inbound_web_call_never_asks_for_a_token() -> None:
    ari = Headers(X_Hotline_Customer="c0ffee", X_Hotline_Switch="ab" * 32)
    assert await read_web_headers(ari, "w1", switch=False) == WebHeaders(customer="c0ffee")  # type: ignore[arg-type]
    assert ari.asked == ["PJSIP_HEADER(read,X-Hotline-Customer)"]


@pytest.mark.parametrize("value", ["XYZ", "ab cd", "ab,cd", "0x12", "a" * 129, ""])
async def test_anything_but_hex_in_a_header_reads_as_absent(value: str) -> None:
    ari = Headers(X_Hotline_Customer=value, X_Hotline_Switch=value)
    assert await read_web_headers(ari, "v1", switch=True) == WebHeaders()  # type: ignore[arg-type]


async def test_missing_headers_read_as_absent() -> None:
    assert await read_web_headers(Headers(), "v1", switch=True) == WebHeaders()  # type: ignore[arg-type]


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
    # A browser's voice call: no switch leg joins it; its camera turned on moves the talk instead.
    assert case_bridge_type(caller_video=False, agent_video=True, web=True) == "mixing"
    assert case_bridge_type(caller_video=True, agent_video=True, web=True) == "mixing,video_sfu"
