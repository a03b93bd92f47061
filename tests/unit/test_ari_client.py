"""The ARI client's request URLs: encoded once by hand, so check what Asterisk will receive."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hotline.asterisk.ari import AriClient
from hotline.config import Settings


def client() -> AriClient:
    return AriClient(Settings(ari_url="http://hotline:secret@127.0.0.1:8088").ari)


def test_query_values_survive_encoding_and_none_is_left_out() -> None:
    url = client()._encoded_url("channels", {
        "endpoint": "PJSIP/anna", "callerId": '"Иван & Co" <+7 916 123-45-67>', "timeout": 15,
        "formats": None, "early": True, "appArgs": "agent,1763.42"})
    parts = urlsplit(str(url))
    assert (parts.netloc, parts.path) == ("127.0.0.1:8088", "/ari/channels")
    assert parse_qs(parts.query) == {
        "endpoint": ["PJSIP/anna"], "callerId": ['"Иван & Co" <+7 916 123-45-67>'], "timeout": ["15"],
        "early": ["true"], "appArgs": ["agent,1763.42"]}


def test_a_path_segment_with_odd_characters_is_percent_encoded() -> None:
    url = client()._encoded_url("bridges/case 7#x/addChannel", None)
    assert url.raw_path == "/ari/bridges/case%207%23x/addChannel" and not url.raw_query_string
