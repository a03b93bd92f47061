"""The ARI client's request targets: encoded by hand, so check what Asterisk will receive."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hotline.asterisk.ari import AriClient


def test_query_values_survive_encoding_and_none_is_left_out() -> None:
    target = AriClient.target("channels", {
        "endpoint": "PJSIP/anna", "callerId": '"Иван & Co" <+7 916 123-45-67>', "timeout": 15,
        "formats": None, "early": True, "appArgs": "agent,1763.42"})
    parts = urlsplit(target)
    assert parts.path == "/ari/channels"
    assert parse_qs(parts.query) == {
        "endpoint": ["PJSIP/anna"], "callerId": ['"Иван & Co" <+7 916 123-45-67>'], "timeout": ["15"],
        "early": ["true"], "appArgs": ["agent,1763.42"]}


def test_a_path_segment_with_odd_characters_is_percent_encoded() -> None:
    assert AriClient.target("bridges/case 7#x/addChannel") == "/ari/bridges/case%207%23x/addChannel"
