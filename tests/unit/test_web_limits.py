"""The pure parts of the web pages' guard: token buckets, the failed-login throttle, origins."""

from __future__ import annotations

import pytest

from hotline.errors import ConfigError
from hotline.web.guard import loggable, origin_of, same_origin
from hotline.web.limits import LoginThrottle, RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_next_waits_for_one_token() -> None:
    clock = Clock()
    limiter = RateLimiter(burst=3, rate_per_s=2.0, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0.0


def test_each_address_has_a_bucket_of_its_own() -> None:
    limiter = RateLimiter(burst=1, rate_per_s=1.0, clock=Clock())
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(burst=2, rate_per_s=10.0, clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)][2] > 0


def test_a_flood_from_many_addresses_keeps_the_buckets_bounded_forgetting_the_oldest() -> None:
    limiter = RateLimiter(burst=1, rate_per_s=0.001, max_keys=100, clock=Clock())
    limiter.take("first")
    for n in range(10_000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    assert limiter.take("first") == 0.0  # forgotten: a full bucket again


def test_failed_logins_lock_the_key_after_the_limit_for_the_lockout_only() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_s=60, lockout_s=300, clock=clock)
    assert [throttle.failed("ivanov") for _ in range(3)] == [False, False, True]
    assert throttle.locked("ivanov") == pytest.approx(300)
    assert throttle.locked("petrova") == 0
    clock.now += 299
    assert throttle.locked("ivanov") == pytest.approx(1)
    clock.now += 1
    assert throttle.locked("ivanov") == 0


def test_failures_spread_wider_than_the_window_never_lock() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_s=60, lockout_s=300, clock=clock)
    for _ in range(10):
        assert not throttle.failed("ivanov")
        clock.now += 31  # two failures per window at most
        assert not throttle.failed("ivanov")
        clock.now += 61


def test_a_good_login_clears_failures_but_not_a_lock() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, window_s=60, lockout_s=300, clock=clock)
    throttle.failed("ivanov")
    throttle.succeeded("ivanov")
    assert not throttle.failed("ivanov")
    assert throttle.failed("ivanov")
    throttle.succeeded("ivanov")
    assert throttle.locked("ivanov") > 0


def test_the_failure_counts_stay_bounded() -> None:
    throttle = LoginThrottle(max_failures=5, window_s=60, lockout_s=60, max_keys=50, clock=Clock())
    for n in range(1000):
        throttle.failed(f"agent-{n}")
    assert len(throttle) == 50


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (299.5, "300")])
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: str) -> None:
    assert retry_after(seconds) == header


@pytest.mark.parametrize(("url", "origin"), [
    ("http://127.0.0.1:8089", "http://127.0.0.1:8089"),
    ("https://Video.Example.RU/", "https://video.example.ru"),
    ("https://video.example.ru:443/hotline", "https://video.example.ru"),
    ("http://video.example.ru:80", "http://video.example.ru"),
    ("http://[::1]:8089/", "http://[::1]:8089"),
])
def test_the_origin_of_a_url_is_as_a_browser_sends_it(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8088", "video.example.ru", "null", "", "http://"])
def test_a_url_without_an_http_origin_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="must be http://HOST"):
        origin_of(url)


@pytest.mark.parametrize(("header", "allowed"), [
    (None, True),  # not a browser: nothing to forge
    ("https://video.example.ru", True),
    ("https://VIDEO.example.ru:443", True),
    ("https://evil.example", False),
    ("http://video.example.ru", False),
    ("https://video.example.ru:8443", False),
    ("https://video.example.ru.evil.example", False),
    ("null", False),
    ("", False),
])
def test_only_the_pages_own_origin_may_post(header: str | None, allowed: bool) -> None:
    assert same_origin(header, "https://video.example.ru") is allowed


@pytest.mark.parametrize(("endpoint", "logged"), [
    ("ivanov", "ivanov"), ("agent-7.b_c", "agent-7.b_c"), ("x\nERROR forged line", "?"),
    ("a b", "?"), ("", "?"), ("a" * 64, "?"),
])
def test_an_endpoint_is_logged_only_when_it_is_a_plain_name(endpoint: str, logged: str) -> None:
    assert loggable(endpoint) == logged
