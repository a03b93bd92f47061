"""Who a web request comes from: the peer, or the client a trusted proxy in front says it relays.

Limits per client and the log lines fail2ban reads need the browser's address, and behind a TLS
proxy every peer is the proxy. Its X-Forwarded-For is believed only from the addresses in
web_trusted_proxies, and only its last entry (the one the proxy itself appended; anything before
it is what the client claimed)."""

from __future__ import annotations

import ipaddress

from aiohttp import hdrs, web

UNKNOWN = "unknown"  # a peer aiohttp could not name (a Unix socket)


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The client's IP address as text."""
    peer = request.remote or UNKNOWN
    forwarded = request.headers.get(hdrs.X_FORWARDED_FOR, "")
    if peer not in trusted_proxies or not forwarded:
        return peer
    claimed = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(claimed))
    except ValueError:
        return peer  # a proxy that forwards garbage is not believed


def client_key(address: str) -> str:
    """What limits count per: the address, or an IPv6 client's /64 (one subscriber's network,
    where every address is theirs to take)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)  # an IPv4 client on a dual-stack socket
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
