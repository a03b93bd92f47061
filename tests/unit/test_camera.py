"""engine.camera without Asterisk: what a call records when its camera turns, and the move of a
talk into an SFU bridge against an in-test ARI that moves channels as Asterisk does (a channel
added to a bridge leaves the one it was in)."""

from __future__ import annotations

from collections.abc import Sequence

from hotline.asterisk.ari_events import Bridge
from hotline.engine.call_state import CallState
from hotline.engine.camera import note_camera, to_sfu
from hotline.engine.facts import Fact, MediaChanged
from hotline.engine.messages import CameraTurned
from hotline.errors import AriNotFound


class Call:
    def __init__(self, video: bool) -> None:
        self.video = video
        self.state = CallState.TALKING
        self.facts: list[Fact] = []

    @property
    def channel_id(self) -> str:
        return "c1"

    def move(self, new: CallState, *facts: Fact) -> None:
        assert new is self.state
        self.facts += facts


def test_a_camera_turned_on_records_video_and_asks_for_the_sfu_once() -> None:
    call = Call(video=False)
    assert note_camera(call, CameraTurned(video=True)) is True
    assert note_camera(call, CameraTurned(video=True)) is False  # a word repeated changes nothing
    assert note_camera(call, CameraTurned(video=False)) is False  # off: recorded, the bridge stays
    assert [f.media for f in call.facts if isinstance(f, MediaChanged)] == ["video", "audio"]
    assert call.video is False


class Ari:
    """Bridges as Asterisk keeps them: a channel is in one bridge at a time."""

    def __init__(self) -> None:
        self.bridges: dict[str, tuple[str, list[str]]] = {"case-7": ("talker", ["cust", "agent"])}
        self.log: list[str] = []

    async def bridge(self, bridge_id: str) -> Bridge:
        if bridge_id not in self.bridges:
            raise AriNotFound(f"bridge {bridge_id}", 404)
        mode, channels = self.bridges[bridge_id]
        return Bridge(bridge_id, tuple(channels), "mixing", mode)

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None:
        self.log.append(f"create {bridge_id} {bridge_type}")
        self.bridges.setdefault(bridge_id, ("sfu" if "video_sfu" in bridge_type else "talker", []))

    async def add_to_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        self.log.append(f"add {bridge_id} {','.join(channel_ids)}")
        for _, channels in self.bridges.values():
            channels[:] = [c for c in channels if c not in channel_ids]
        self.bridges[bridge_id][1].extend(channel_ids)

    async def destroy_bridge(self, bridge_id: str) -> None:
        assert not self.bridges[bridge_id][1], "a bridge destroyed with channels in it drops them"
        self.log.append(f"destroy {bridge_id}")
        del self.bridges[bridge_id]


async def test_a_talk_gaining_video_moves_every_channel_at_once_into_the_cases_sfu_bridge() -> None:
    ari = Ari()
    assert await to_sfu(ari, "case-7") == "case-7-video"  # type: ignore[arg-type]
    assert ari.log == ["create case-7-video mixing,video_sfu", "add case-7-video cust,agent",
                       "destroy case-7"]
    assert ari.bridges == {"case-7-video": ("sfu", ["cust", "agent"])}
    assert await to_sfu(ari, "case-7-video") is None  # type: ignore[arg-type]  # SFU already: nothing to do


async def test_a_talk_in_an_sfu_bridge_already_is_not_moved() -> None:
    ari = Ari()
    ari.bridges["case-7"] = ("sfu", ["cust", "agent"])
    assert await to_sfu(ari, "case-7") is None  # type: ignore[arg-type]
    assert ari.log == []
