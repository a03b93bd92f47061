"""`hotline doctor`'s reading of where Asterisk's HTTP server (ARI) listens."""

from __future__ import annotations

import pytest

from hotline.cli.doctor import Check, http_bindings, is_loopback

# `http show status` from Asterisk 22, as the lab's Asterisk answers it.
STATUS = """HTTP Server Status:
Prefix:
Server: Asterisk
Server Enabled and Bound to 127.0.0.1:8088

HTTPS Server Enabled and Bound to [::]:8089

Enabled URI's:
/httpstatus => Asterisk HTTP General Status
"""


def test_both_servers_addresses_are_read() -> None:
    assert http_bindings(STATUS) == ["127.0.0.1:8088", "[::]:8089"]
    assert http_bindings("HTTP Server Status:\nServer Disabled\n") == []


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1:8088", True), ("127.0.0.53:8088", True), ("[::1]:8088", True), ("localhost:8088", True),
    ("0.0.0.0:8088", False), ("[::]:8088", False), ("192.0.2.10:8088", False), ("example.org:8088", False),
])
def test_only_loopback_addresses_are_private(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_a_warning_passes_but_says_warn() -> None:
    check = Check("ari exposure", True, "ARI is reachable beyond", warn=True)
    assert check.line().startswith("WARN ari exposure:")
