"""Webhook POSTs are signed as the README tells a receiver to check: HMAC-SHA256 of the secret
over "<timestamp>.<body>", with the event id and the timestamp in headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest

from hotline.webhook_signing import headers, signature, verify

SECRET = "a-shared-secret-of-the-crm"
BODY = b'{"id":42,"kind":"answered"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, BODY) == f"sha256={expected}"


def test_headers_carry_event_id_timestamp_and_signature() -> None:
    sent = headers(SECRET, 42, 1700000000, BODY)
    assert sent["X-Hotline-Event-Id"] == "42"
    assert sent["X-Hotline-Timestamp"] == "1700000000"
    assert sent["X-Hotline-Signature"] == signature(SECRET, 1700000000, BODY)
    assert sent["Content-Type"] == "application/json"


def test_receiver_accepts_a_fresh_signed_body() -> None:
    sent = headers(SECRET, 42, 1700000000, BODY)
    assert verify(SECRET, sent["X-Hotline-Timestamp"], BODY, sent["X-Hotline-Signature"], now=1700000010)


def test_receiver_refuses_a_changed_body_another_secret_or_an_old_timestamp() -> None:
    sent = headers(SECRET, 42, 1700000000, BODY)
    stamp, mac = sent["X-Hotline-Timestamp"], sent["X-Hotline-Signature"]
    assert not verify(SECRET, stamp, BODY.replace(b"42", b"43"), mac, now=1700000010)
    assert not verify("another-secret-entirely", stamp, BODY, mac, now=1700000010)
    assert not verify(SECRET, stamp, BODY, mac, now=1700000000 + 301)
    assert not verify(SECRET, "1700000001", BODY, mac, now=1700000010)  # the timestamp is signed too
    assert not verify(SECRET, "soon", BODY, mac, now=1700000010)


def test_the_readmes_receiver_example_accepts_what_hotline_signs_and_drops_a_repeat() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("**What a receiver checks.**"):]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("\n```", start)]
    assert len(code.splitlines()) <= 12
    space: dict[str, Any] = {}
    exec(code, space)  # noqa: S102 - the README's own example, run as a receiver would
    stamp = int(time.time())
    sent = headers(SECRET, 42, stamp, BODY)
    assert space["hotline_event"](SECRET.encode(), sent, BODY, set()) == json.loads(BODY)
    assert space["hotline_event"](SECRET.encode(), sent, BODY, {42}) is None
    with pytest.raises(PermissionError):
        space["hotline_event"](SECRET.encode(), sent, BODY + b" ", set())
    with pytest.raises(PermissionError):
        old = headers(SECRET, 42, stamp - 600, BODY)
        space["hotline_event"](SECRET.encode(), old, BODY, set())
