"""A queued callback's retries and expiry: the rules alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hotline.engine.queueing.callback_rules import CallbackRules, GiveUp, Retry, after_unanswered, expires_at

ASKED = datetime(2027, 3, 1, 10, 0, tzinfo=UTC)
RULES = CallbackRules(retries=2, retry_interval_s=300, expiry_s=3600)


def test_an_unanswered_callback_is_tried_again_after_the_interval() -> None:
    now = ASKED + timedelta(minutes=5)
    for attempts in (1, 2):
        outcome = after_unanswered(RULES, attempts=attempts, requested_at=ASKED, now=now)
        assert outcome == Retry(now + timedelta(minutes=5))


def test_it_is_given_up_once_the_retries_are_spent() -> None:
    outcome = after_unanswered(RULES, attempts=3, requested_at=ASKED, now=ASKED + timedelta(minutes=20))
    assert outcome == GiveUp("failed", "not answered in 3 attempts")
    assert after_unanswered(CallbackRules(retries=0), attempts=1, requested_at=ASKED, now=ASKED) == GiveUp(
        "failed", "not answered in 1 attempt")


def test_a_retry_that_would_come_after_the_expiry_is_an_expiry() -> None:
    outcome = after_unanswered(RULES, attempts=1, requested_at=ASKED, now=ASKED + timedelta(minutes=56))
    assert outcome == GiveUp("expired", "expired after 1 unanswered attempt")


def test_without_an_expiry_only_the_retries_end_it() -> None:
    rules = CallbackRules(retries=5, retry_interval_s=60, expiry_s=None)
    late = ASKED + timedelta(days=3)
    outcome = after_unanswered(rules, attempts=5, requested_at=ASKED, now=late)
    assert outcome == Retry(late + timedelta(minutes=1))
    assert expires_at(rules, ASKED) is None
    assert expires_at(RULES, ASKED) == ASKED + timedelta(hours=1)


@given(st.integers(0, 10), st.integers(1, 7200), st.integers(1, 86400) | st.none(), st.integers(1, 20),
       st.integers(0, 200_000))
def test_a_retry_is_always_due_later_within_the_expiry_and_never_beyond_the_retries(
        retries: int, interval: int, expiry: int | None, attempts: int, elapsed: int) -> None:
    rules = CallbackRules(retries, interval, expiry)
    now = ASKED + timedelta(seconds=elapsed)
    outcome = after_unanswered(rules, attempts=attempts, requested_at=ASKED, now=now)
    if isinstance(outcome, Retry):
        assert attempts <= retries and outcome.due_at > now
        assert expiry is None or outcome.due_at < ASKED + timedelta(seconds=expiry)
    else:
        assert outcome.status in ("failed", "expired")
