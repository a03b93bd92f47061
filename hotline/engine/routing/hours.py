"""Business hours: is a hotline open at an instant, and when does it next open.

Hours are wall-clock times in the hotline's own time zone, as a supervisor writes them: on the
Sunday the clocks go forward, 09:00-18:00 still means nine to six by the clock on the wall. A
holiday replaces that local date's weekday hours (closed all day, or its own range). Every span
is [opens, closes): closing is exclusive, and a closing of 24:00 (`time.max`) means midnight.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hotline.provision.model import Hotline

LOOKAHEAD_DAYS = 400  # a year of holidays and then some: past it, "never opens"
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)

Span = tuple[timedelta, timedelta]  # [opens, closes) as time since local midnight


def is_open(hotline: Hotline, at: datetime) -> bool:
    """True when `at` (timezone-aware, any zone) falls in one of the hotline's spans."""
    _require_aware(at)
    if _always_open(hotline):
        return True
    local = _local(at, ZoneInfo(hotline.time_zone))
    if local is None:
        return True  # beyond the calendar (year 1 or 9999): nothing to refuse a caller for
    now = _since_midnight(local.time())
    return any(opens <= now < closes for opens, closes in _spans(hotline, local.date()))


def next_opening(hotline: Hotline, at: datetime) -> datetime | None:
    """The first instant at or after `at` when the hotline is open, in UTC: `at` itself when it
    is open then. None when it has no hours or holidays at all (always open: nothing to wait
    for) or does not open within LOOKAHEAD_DAYS."""
    _require_aware(at)
    if _always_open(hotline):
        return None
    try:
        if is_open(hotline, at):
            return at.astimezone(UTC)
        return _first_opening(hotline, at, ZoneInfo(hotline.time_zone))
    except OverflowError:  # past year 9999 in UTC or on the way: not in this calendar
        return None


def _first_opening(hotline: Hotline, at: datetime, zone: ZoneInfo) -> datetime | None:
    # A candidate of one day can land on the next (a jump of the clocks around midnight), so
    # the best of a day is only final once the day after it has been looked at too.
    best: datetime | None = None
    start = at.astimezone(zone).date() - _DAY
    for day in (start + timedelta(days=n) for n in range(LOOKAHEAD_DAYS + 2)):
        if best is not None and _utc(day, time.min, zone, 0) > best + _DAY:
            break
        found = [c for c in _candidates(hotline, day, zone) if c >= at and is_open(hotline, c)]
        best = min([*found, best] if best else found, default=None)
    return best


def _require_aware(at: datetime) -> None:
    # A naive datetime would silently be read in the server's own zone: refuse it.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} has no time zone; pass an aware datetime (UTC from the daemon)")


def _always_open(hotline: Hotline) -> bool:
    # No hours means every day 00:00-24:00; holidays still close it (a 24/7 line shut on Jan 1).
    return not hotline.hours and not hotline.holidays


def _spans(hotline: Hotline, day: date) -> list[Span]:
    """The open spans of one local date: its holiday's, else its weekday's."""
    for holiday in hotline.holidays:
        if holiday.day == day:
            if holiday.opens is None or holiday.closes is None:
                return []
            return [(_clock(holiday.opens), _clock(holiday.closes))]
    if not hotline.hours:
        return [(timedelta(0), _DAY)]
    return [(_clock(h.opens), _clock(h.closes)) for h in hotline.hours if h.weekday == day.isoweekday()]


def _clock(value: time) -> timedelta:
    """A provisioned time as time since midnight; `time.max` is how 24:00 is stored."""
    return _DAY if value == time.max else _since_midnight(value)


def _since_midnight(value: time) -> timedelta:
    return timedelta(hours=value.hour, minutes=value.minute, seconds=value.second,
                     microseconds=value.microsecond)


def _local(at: datetime, zone: ZoneInfo) -> datetime | None:
    try:
        return at.astimezone(zone)
    except OverflowError:  # the wall clock there would be before year 1 or after 9999
        return None


def _candidates(hotline: Hotline, day: date, zone: ZoneInfo) -> Iterator[datetime]:
    """Every instant of `day` at which the hotline may go from closed to open: a span opening
    by the wall clock (both readings of a repeated hour), or a jump of the clocks (an opening
    time skipped by the spring-forward gap opens when the gap ends)."""
    for opens, _ in _spans(hotline, day):
        if opens < _DAY:  # a span opening at 24:00 is empty
            wall = (datetime.min + opens).time()
            yield from (_utc(day, wall, zone, fold) for fold in (0, 1))
    yield from _clock_change(day, zone)


def _utc(day: date, wall: time, zone: ZoneInfo, fold: int) -> datetime:
    return datetime.combine(day, wall, zone).replace(fold=fold).astimezone(UTC)


def _clock_change(day: date, zone: ZoneInfo) -> Iterator[datetime]:
    """The instant the zone's UTC offset changes during `day`, if it does (bisection: zoneinfo
    does not expose its transitions)."""
    lo = _utc(day, time.min, zone, 0)
    hi = lo + _DAY + timedelta(hours=1)  # the whole of a 25-hour day too
    before = lo.astimezone(zone).utcoffset()
    if hi.astimezone(zone).utcoffset() == before:
        return
    while hi - lo > _TICK:
        mid = lo + (hi - lo) / 2
        lo, hi = (mid, hi) if mid.astimezone(zone).utcoffset() == before else (lo, mid)
    yield hi
