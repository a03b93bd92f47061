"""How much one client may ask of the web pages: a token bucket per address for every request,
and a count of failed agent logins per address and per agent. Both live in memory, bounded: a
flood from many addresses evicts the least recently seen, it never grows the daemon."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

# Buckets and failure counts kept at most; the oldest is forgotten first.
MAX_KEYS = 4096


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`burst` requests at once per key, refilled at `rate_per_s`."""

    def __init__(self, burst: int, rate_per_s: float, *, max_keys: int = MAX_KEYS,
                 clock: Clock = time.monotonic) -> None:
        self.burst = burst
        self.rate = rate_per_s
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """0 when `key` may go on (one token spent); else the seconds until it may."""
        now = self.clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._keep(key, bucket)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _keep(self, key: str, bucket: _Bucket) -> None:
        self._buckets[key] = bucket  # last: the most recently seen
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class _Failures:
    count: int
    first_at: float
    locked_until: float = 0.0


class LoginThrottle:
    """After `max_failures` failed logins within `window_s` for one key (a source address, an
    agent's endpoint), that key is locked for `lockout_s`: no password is checked meanwhile."""

    def __init__(self, max_failures: int, window_s: float, lockout_s: float, *,
                 max_keys: int = MAX_KEYS, clock: Clock = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def locked(self, key: str) -> float:
        """Seconds `key` stays locked (0: not locked)."""
        entry = self._failures.get(key)
        return max(0.0, entry.locked_until - self.clock()) if entry is not None else 0.0

    def failed(self, key: str) -> bool:
        """Count a failure of `key`; True when it is locked by this one."""
        now = self.clock()
        entry = self._failures.pop(key, None)
        if entry is None or now - entry.first_at > self.window_s:
            entry = _Failures(0, now)
        entry.count += 1
        if entry.count >= self.max_failures:
            entry.locked_until = now + self.lockout_s
            entry.count, entry.first_at = 0, now
        self._failures[key] = entry
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        return entry.locked_until > now

    def succeeded(self, key: str) -> None:
        """A good login clears the key's failures (never a lock: it was not checked while locked)."""
        entry = self._failures.get(key)
        if entry is not None and entry.locked_until <= self.clock():
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
