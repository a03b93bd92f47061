"""When a queued callback is tried again, and when it is given up: pure rules of a queue's retry
count, retry interval and expiry, so the daemon placing it and the tests agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class CallbackRules:
    retries: int = 2  # attempts after the first, when the customer does not answer
    retry_interval_s: int = 300
    expiry_s: int | None = 4 * 3600  # None: never expires


@dataclass(frozen=True)
class Retry:
    due_at: datetime


@dataclass(frozen=True)
class GiveUp:
    status: str  # 'failed' (no more retries) | 'expired'
    detail: str


def expires_at(rules: CallbackRules, requested_at: datetime) -> datetime | None:
    return None if rules.expiry_s is None else requested_at + timedelta(seconds=rules.expiry_s)


def after_unanswered(rules: CallbackRules, *, attempts: int, requested_at: datetime,
                     now: datetime) -> Retry | GiveUp:
    """The customer did not answer the `attempts`-th call: try again after the interval, unless
    the retries are spent or the retry would come after the request expired."""
    if attempts > rules.retries:
        return GiveUp("failed", f"not answered in {attempts} attempt{'s' if attempts != 1 else ''}")
    due = now + timedelta(seconds=rules.retry_interval_s)
    ends = expires_at(rules, requested_at)
    if ends is not None and due >= ends:
        return GiveUp("expired", f"expired after {attempts} unanswered attempt{'s' if attempts != 1 else ''}")
    return Retry(due)
