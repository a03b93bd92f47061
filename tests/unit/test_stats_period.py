"""The period of a statistics command as a supervisor types it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.errors import StatsError
from hotline.stats.period import default_tz, period

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 22, 14, 30, tzinfo=MSK)


def test_the_default_is_today_from_midnight_to_midnight_in_the_given_zone() -> None:
    p = period(None, None, None, "Europe/Moscow", now=NOW)
    assert (p.since, p.until, p.bucket) == (datetime(2026, 11, 22, tzinfo=MSK),
                                            datetime(2026, 11, 23, tzinfo=MSK), None)


def test_today_is_the_zones_today_not_the_machines() -> None:
    # 23:30 in UTC is already the next day in Moscow
    p = period(None, None, None, "Europe/Moscow", now=datetime(2026, 11, 22, 23, 30, tzinfo=ZoneInfo("UTC")))
    assert p.since == datetime(2026, 11, 23, tzinfo=MSK)


@pytest.mark.parametrize(("since", "until", "expected"), [
    ("yesterday", None, (datetime(2026, 11, 21, tzinfo=MSK), datetime(2026, 11, 22, tzinfo=MSK))),
    ("2026-11-01", None, (datetime(2026, 11, 1, tzinfo=MSK), datetime(2026, 11, 2, tzinfo=MSK))),
    ("2026-11-01", "2026-11-08", (datetime(2026, 11, 1, tzinfo=MSK), datetime(2026, 11, 8, tzinfo=MSK))),
    ("yesterday", "today", (datetime(2026, 11, 21, tzinfo=MSK), datetime(2026, 11, 22, tzinfo=MSK))),
    ("2026-11-22T09:00", None, (datetime(2026, 11, 22, 9, tzinfo=MSK), NOW)),
    ("2026-11-22 09:00", "now", (datetime(2026, 11, 22, 9, tzinfo=MSK), NOW)),
    ("2026-11-22T06:00Z", "2026-11-22T12:00+03:00",
     (datetime(2026, 11, 22, 9, tzinfo=MSK), datetime(2026, 11, 22, 12, tzinfo=MSK))),
])
def test_dates_as_people_type_them(since: str, until: str | None,
                                   expected: tuple[datetime, datetime]) -> None:
    p = period(since, until, None, "Europe/Moscow", now=NOW)
    assert (p.since, p.until) == expected


@pytest.mark.parametrize(("text", "bucket"), [
    ("15m", timedelta(minutes=15)), ("hour", timedelta(hours=1)), ("1h", timedelta(hours=1)),
    ("day", timedelta(days=1)), ("DAY", timedelta(days=1)), ("total", None), (None, None)])
def test_intervals(text: str | None, bucket: timedelta | None) -> None:
    assert period(None, None, text, "UTC", now=NOW).bucket == bucket


@pytest.mark.parametrize(("since", "until", "interval", "tz", "message"), [
    ("2026-11-23", "2026-11-22", None, "UTC", "--since 2026-11-23 00:00 is not before --until"),
    ("today", "today", None, "UTC", "is not before --until"),
    (None, None, "5m", "UTC", "--interval '5m' is not one of 15m, 30m, hour, day"),
    ("last tuesday", None, None, "UTC", "--since 'last tuesday' is not a date"),
    (None, "2026-13-01", None, "UTC", "--until '2026-13-01' is not a date"),
    (None, None, None, "Mars/Olympus", "--tz 'Mars/Olympus' is not a time zone"),
])
def test_bad_input_is_one_clear_line(since: str | None, until: str | None, interval: str | None, tz: str,
                                     message: str) -> None:
    with pytest.raises(StatsError, match=message.replace("+", r"\+")) as err:
        period(since, until, interval, tz, now=NOW)
    assert "\n" not in str(err.value)


def test_the_default_zone_is_the_hotlines_when_they_share_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Novosibirsk")
    assert default_tz({"Europe/Moscow"}) == "Europe/Moscow"
    assert default_tz({"Europe/Moscow", "Asia/Novosibirsk"}) == "Asia/Novosibirsk"
    assert default_tz(set()) == "Asia/Novosibirsk"
