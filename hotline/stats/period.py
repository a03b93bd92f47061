"""The period a statistics command covers: `--since`, `--until`, `--interval`, `--tz` as a supervisor
types them, checked into one Period (or a StatsError that says what was wrong, in one line).

Days are the contact centre's days: midnight in the time zone given with --tz, else the one time
zone every hotline shares (a server running in UTC still reports a Moscow centre's Moscow day),
else the machine's own time zone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotline.errors import StatsError

INTERVALS = {"15m": timedelta(minutes=15), "30m": timedelta(minutes=30), "hour": timedelta(hours=1),
             "day": timedelta(days=1)}
# What people type for the same intervals.
_ALIASES = {"15min": "15m", "30min": "30m", "1h": "hour", "60m": "hour", "hourly": "hour", "1d": "day",
            "daily": "day", "total": "total", "none": "total"}
_DAY_WORDS = {"today": 0, "yesterday": -1, "tomorrow": 1}


@dataclass(frozen=True)
class Period:
    """[since, until) in `tz`, cut into buckets of `bucket` (None: one bucket for the whole period)."""

    since: datetime
    until: datetime
    bucket: timedelta | None
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def period(since: str | None, until: str | None, interval: str | None, tz: str,
           now: datetime | None = None, *, check_order: bool = True) -> Period:
    """The period the options describe: by default today, from midnight to the next midnight.
    `check_order=False` checks the syntax only (before the zone the days are in is known)."""
    zone = zone_of(tz)
    now = (now or datetime.now(zone)).astimezone(zone)
    start = moment("--since", since or "today", zone, now)
    end = moment("--until", until, zone, now) if until else _default_until(since, start, zone, now)
    if check_order and start >= end:
        raise StatsError(f"--since {_show(start)} is not before --until {_show(end)}")
    return Period(start, end, bucket_of(interval), tz)


def _default_until(since: str | None, start: datetime, zone: ZoneInfo, now: datetime) -> datetime:
    """A day given alone (`--since yesterday`, `--since 2026-11-20`) means that whole day;
    a moment given alone means from then until now."""
    if since is None or _is_day(since):
        return _midnight(start.date() + timedelta(days=1), zone)
    return now


def bucket_of(interval: str | None) -> timedelta | None:
    if interval is None:
        return None
    key = interval.strip().lower()
    key = _ALIASES.get(key, key)
    if key == "total":
        return None
    if key not in INTERVALS:
        raise StatsError(f"--interval {interval!r} is not one of {', '.join(INTERVALS)}")
    return INTERVALS[key]


def moment(option: str, text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """`today`, `yesterday`, `now`, an ISO 8601 date (its midnight) or date and time (in `zone`
    unless it carries an offset)."""
    word = text.strip().lower()
    if word == "now":
        return now
    if word in _DAY_WORDS:
        return _midnight(now.date() + timedelta(days=_DAY_WORDS[word]), zone)
    try:
        if _is_day(word):
            return _midnight(date.fromisoformat(word), zone)
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise StatsError(f"{option} {text!r} is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM[+03:00],"
                         f" today or yesterday") from None
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise StatsError(f"--tz {name!r} is not a time zone (an IANA name such as Europe/Moscow)") from None


def default_tz(hotline_zones: set[str]) -> str:
    """The hotlines' time zone when they all share one, else the machine's."""
    if len(hotline_zones) == 1:
        return next(iter(hotline_zones))
    return machine_tz()


def machine_tz() -> str:
    """The IANA name of this machine's time zone ($TZ, /etc/timezone, /etc/localtime), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        candidates.append(timezone_file.read_text(encoding="utf-8").strip())
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        candidates.append(target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "")
    for name in candidates:
        if name and _valid_zone(name):
            return name
    return "UTC"


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_day(text: str) -> bool:
    return text.strip().lower() in _DAY_WORDS or re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()) is not None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _show(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
