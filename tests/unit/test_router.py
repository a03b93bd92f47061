"""Which channels a restarted daemon adopts: those running Stasis for its app, read from each
channel's dialplan location (ARI's channel JSON, as Asterisk 22 sends it)."""

from __future__ import annotations

from hotline.asterisk.ari_events import Channel, parse_channel
from hotline.engine.router import _in_stasis_of


def channel(app_name: str, app_data: str) -> Channel:
    return parse_channel({"id": "1763.7", "name": "PJSIP/sipp-trunk-00000007", "state": "Up",
                          "dialplan": {"context": "hotline-inbound", "exten": "+74951234567", "priority": 3,
                                       "app_name": app_name, "app_data": app_data}})


def test_a_channel_in_this_apps_stasis_is_adopted_and_others_are_not() -> None:
    assert _in_stasis_of(channel("Stasis", "hotline,inbound,+74951234567"), "hotline")
    assert not _in_stasis_of(channel("Stasis", "other-app,inbound"), "hotline")
    assert not _in_stasis_of(channel("Stasis", "hotline-2,inbound"), "hotline")
    assert not _in_stasis_of(channel("Queue", "hotline"), "hotline")
    assert not _in_stasis_of(parse_channel({"id": "x", "name": "PJSIP/x-1", "state": "Up"}), "hotline")
