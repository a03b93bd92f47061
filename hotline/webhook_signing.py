"""How a webhook POST is signed, and how a receiver checks it (the README shows the same in ten
lines): HMAC-SHA256 with the webhook's secret over the timestamp, a dot and the raw body.

Signing the timestamp with the body lets a receiver refuse a replayed POST: it checks the
signature, then that the timestamp is recent (five minutes is usual), then the event id it has
seen (a retry after a lost reply brings the same id)."""

from __future__ import annotations

import hashlib
import hmac

EVENT_ID_HEADER = "X-Hotline-Event-Id"
TIMESTAMP_HEADER = "X-Hotline-Timestamp"
SIGNATURE_HEADER = "X-Hotline-Signature"
SCHEME = "sha256="


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Hotline-Signature value: sha256=HEX(HMAC-SHA256(secret, "<timestamp>." + body))."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def headers(secret: str, event_id: int, timestamp: int, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", EVENT_ID_HEADER: str(event_id),
            TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, timestamp: str, body: bytes, given: str, *, now: float,
           tolerance_s: float = 300.0) -> bool:
    """True when `given` is the signature of `body` at `timestamp` and that is within
    `tolerance_s` of `now` (what a receiver does; the tests use it as one)."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, stamp, body), given)
