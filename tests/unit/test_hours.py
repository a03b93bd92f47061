from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.engine.routing.hours import is_open, next_opening
from hotline.provision.model import Holiday, Hotline, OpeningHours, Target

MIDNIGHT = time.max  # how the model stores a closing of 24:00
MON_FRI, SAT, SUN = range(1, 6), 6, 7


def hotline(*hours: OpeningHours, holidays: tuple[Holiday, ...] = (), zone: str = "Europe/Moscow") -> Hotline:
    return Hotline("support", Target("queue", "support"), time_zone=zone, hours=tuple(hours),
                   holidays=holidays)


def week(opens: time, closes: time, days: range = MON_FRI) -> tuple[OpeningHours, ...]:
    return tuple(OpeningHours(day, opens, closes) for day in days)


# The office of the examples: Moscow, weekdays 09:00-18:00, Saturday 10:00-16:00, Sunday closed.
OFFICE = hotline(*week(time(9), time(18)), OpeningHours(SAT, time(10), time(16)))


def wall(zone: str, y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0, us: int = 0,
         fold: int = 0) -> datetime:
    """A wall-clock reading in `zone`, as the UTC instant the daemon would pass."""
    return datetime(y, mo, d, h, mi, s, us, ZoneInfo(zone), fold=fold).astimezone(UTC)


def moscow(d: int, h: int, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    """June 2025 in Moscow: the 2nd is a Monday, the 7th a Saturday, the 8th a Sunday."""
    return wall("Europe/Moscow", 2025, 6, d, h, mi, s, us)


def test_the_office_is_open_at_nine_on_a_monday_in_moscow() -> None:
    assert is_open(OFFICE, moscow(2, 9, 0))


def test_the_office_is_closed_a_minute_before_nine() -> None:
    assert not is_open(OFFICE, moscow(2, 8, 59))
    assert not is_open(OFFICE, moscow(2, 8, 59, 59, 999_999))


def test_the_office_is_closed_at_six_exactly_because_closing_is_exclusive() -> None:
    assert is_open(OFFICE, moscow(2, 17, 59, 59, 999_999))
    assert not is_open(OFFICE, moscow(2, 18, 0))


def test_a_closing_of_24_00_keeps_the_hotline_open_until_midnight() -> None:
    late = hotline(*week(time(20), MIDNIGHT))
    assert is_open(late, moscow(2, 23, 59))
    assert is_open(late, moscow(2, 23, 59, 59, 999_999))
    assert not is_open(late, moscow(3, 0, 0))  # Tuesday's hours start at 20:00, not at midnight


def test_saturday_has_its_own_hours() -> None:
    assert not is_open(OFFICE, moscow(7, 9, 30))
    assert is_open(OFFICE, moscow(7, 10, 0))
    assert is_open(OFFICE, moscow(7, 15, 59))
    assert not is_open(OFFICE, moscow(7, 16, 0))


def test_sunday_without_hours_is_closed_all_day() -> None:
    assert not any(is_open(OFFICE, moscow(8, h, m)) for h in range(24) for m in (0, 30, 59))


def test_a_holiday_closes_a_weekday_all_day() -> None:
    office = hotline(*OFFICE.hours, holidays=(Holiday(date(2025, 6, 12), note="Russia Day"),))
    assert is_open(office, moscow(11, 12))
    assert not any(is_open(office, moscow(12, h)) for h in range(24))
    assert is_open(office, moscow(13, 12))


def test_a_holiday_with_short_hours_replaces_the_weekday_hours() -> None:
    office = hotline(*OFFICE.hours, holidays=(Holiday(date(2025, 6, 11), time(10), time(15)),))
    assert not is_open(office, moscow(11, 9, 30))
    assert is_open(office, moscow(11, 10, 0))
    assert is_open(office, moscow(11, 14, 59))
    assert not is_open(office, moscow(11, 15, 0))
    assert not is_open(office, moscow(11, 17, 0))


def test_a_holiday_with_hours_opens_a_day_that_is_usually_closed() -> None:
    office = hotline(*OFFICE.hours, holidays=(Holiday(date(2025, 6, 8), time(12), time(14)),))
    assert is_open(office, moscow(8, 13))
    assert not is_open(office, moscow(8, 11))


def test_a_hotline_without_hours_is_always_open() -> None:
    always = hotline()
    assert all(is_open(always, moscow(d, h)) for d in range(2, 9) for h in range(24))


def test_a_holiday_still_closes_a_hotline_without_hours() -> None:
    always_but_new_year = hotline(holidays=(Holiday(date(2026, 1, 1)),))
    assert is_open(always_but_new_year, wall("Europe/Moscow", 2025, 12, 31, 23, 59))
    assert not is_open(always_but_new_year, wall("Europe/Moscow", 2026, 1, 1, 12))
    assert is_open(always_but_new_year, wall("Europe/Moscow", 2026, 1, 2, 0, 0))


def test_hours_follow_berlin_clocks_on_the_sunday_they_go_forward() -> None:
    # 30 March 2025: 02:00 CET becomes 03:00 CEST. 09:00 by the clock is 07:00 UTC that day.
    berlin = hotline(*week(time(9), time(18), range(1, 8)), zone="Europe/Berlin")
    assert is_open(berlin, datetime(2025, 3, 29, 8, 0, tzinfo=UTC))  # Saturday 09:00 CET
    assert not is_open(berlin, datetime(2025, 3, 29, 7, 59, tzinfo=UTC))
    assert is_open(berlin, datetime(2025, 3, 30, 7, 0, tzinfo=UTC))  # Sunday 09:00 CEST
    assert not is_open(berlin, datetime(2025, 3, 30, 6, 59, tzinfo=UTC))
    assert not is_open(berlin, datetime(2025, 3, 30, 16, 0, tzinfo=UTC))  # 18:00 CEST


def test_hours_follow_berlin_clocks_on_the_sunday_they_go_back() -> None:
    # 26 October 2025: 03:00 CEST becomes 02:00 CET. 18:00 by the clock is 17:00 UTC that day.
    berlin = hotline(*week(time(9), time(18), range(1, 8)), zone="Europe/Berlin")
    assert is_open(berlin, datetime(2025, 10, 25, 15, 59, tzinfo=UTC))  # Saturday 17:59 CEST
    assert not is_open(berlin, datetime(2025, 10, 25, 16, 0, tzinfo=UTC))
    assert is_open(berlin, datetime(2025, 10, 26, 16, 59, tzinfo=UTC))  # Sunday 17:59 CET
    assert not is_open(berlin, datetime(2025, 10, 26, 17, 0, tzinfo=UTC))


def test_an_hour_the_clocks_skip_never_opens_and_an_hour_they_repeat_opens_twice() -> None:
    night = hotline(OpeningHours(SUN, time(2), time(3)), zone="Europe/Berlin")
    spring = [datetime(2025, 3, 30, 0, 0, tzinfo=UTC) + timedelta(minutes=m) for m in range(0, 24 * 60, 5)]
    assert not any(is_open(night, t) for t in spring)
    autumn = [datetime(2025, 10, 25, 22, 0, tzinfo=UTC) + timedelta(minutes=m) for m in range(0, 24 * 60, 5)]
    open_minutes = 5 * sum(is_open(night, t) for t in autumn)
    assert open_minutes == 120  # 02:00-03:00 CEST, then 02:00-03:00 CET
    assert is_open(night, wall("Europe/Berlin", 2025, 10, 26, 2, 30, fold=0))
    assert is_open(night, wall("Europe/Berlin", 2025, 10, 26, 2, 30, fold=1))


def test_the_same_instant_is_open_in_moscow_and_closed_in_vladivostok() -> None:
    noon_in_moscow = moscow(2, 12)  # 19:00 in Vladivostok
    assert is_open(OFFICE, noon_in_moscow)
    assert not is_open(hotline(*OFFICE.hours, zone="Asia/Vladivostok"), noon_in_moscow)


def test_an_instant_in_any_zone_is_read_in_the_hotline_zone() -> None:
    nine_in_moscow_as_seen_in_tokyo = datetime(2025, 6, 2, 15, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert is_open(OFFICE, nine_in_moscow_as_seen_in_tokyo)


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_open(OFFICE, datetime(2025, 6, 2, 9, 0))
    with pytest.raises(ValueError, match="no time zone"):
        next_opening(OFFICE, datetime(2025, 6, 2, 9, 0))


def test_instants_at_the_ends_of_the_calendar_do_not_raise() -> None:
    last = datetime.max.replace(tzinfo=timezone(-timedelta(hours=11)))  # past 9999 in UTC
    first = datetime.min.replace(tzinfo=timezone(timedelta(hours=14)))  # before year 1 in UTC
    for at in (last, first):
        assert is_open(OFFICE, at) in (True, False)
        assert next_opening(OFFICE, at) is None or next_opening(OFFICE, at) == at


# next_opening


def test_after_friday_closing_the_office_next_opens_on_saturday_morning() -> None:
    assert next_opening(OFFICE, moscow(6, 18, 0)) == moscow(7, 10, 0)


def test_after_saturday_closing_the_office_next_opens_on_monday_morning() -> None:
    assert next_opening(OFFICE, moscow(7, 16, 0)) == moscow(9, 9, 0)
    assert next_opening(OFFICE, moscow(8, 23, 59)) == moscow(9, 9, 0)


def test_a_monday_holiday_moves_the_next_opening_to_tuesday() -> None:
    office = hotline(*OFFICE.hours, holidays=(Holiday(date(2025, 6, 9)),))
    assert next_opening(office, moscow(7, 16, 0)) == moscow(10, 9, 0)


def test_a_holiday_with_short_hours_opens_at_its_own_time() -> None:
    office = hotline(*OFFICE.hours, holidays=(Holiday(date(2025, 6, 9), time(11), time(14)),))
    assert next_opening(office, moscow(9, 9, 0)) == moscow(9, 11, 0)


def test_an_open_hotline_opens_now_and_answers_in_utc() -> None:
    now = datetime(2025, 6, 2, 15, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    opening = next_opening(OFFICE, now)
    assert opening == now and opening is not None and opening.tzinfo is UTC


def test_a_hotline_without_hours_has_no_next_opening() -> None:
    assert next_opening(hotline(), moscow(2, 3)) is None


def test_a_hotline_that_does_not_open_within_400_days_has_no_next_opening() -> None:
    mondays = tuple(Holiday(date(2025, 6, 2) + timedelta(weeks=n)) for n in range(60))
    mondays_only = hotline(*week(time(9), time(18), range(1, 2)), holidays=mondays)
    assert next_opening(mondays_only, moscow(2, 8)) is None


def test_across_the_spring_forward_weekend_monday_nine_is_seven_utc() -> None:
    berlin = hotline(*week(time(9), time(18)), zone="Europe/Berlin")
    friday_evening = datetime(2025, 3, 28, 18, 0, tzinfo=UTC)  # 19:00 CET
    assert next_opening(berlin, friday_evening) == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)


def test_an_opening_time_the_clocks_skip_opens_when_the_skip_ends() -> None:
    # 02:30 does not exist in Berlin on 30 March 2025: the line opens at 03:00 CEST (01:00 UTC).
    night = hotline(OpeningHours(SUN, time(2, 30), time(4)), zone="Europe/Berlin")
    saturday_noon = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)
    assert next_opening(night, saturday_noon) == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)


def test_a_span_ending_in_the_repeated_hour_opens_again_when_the_clocks_go_back() -> None:
    # 26 October 2025: open until 02:30 CEST, closed until 03:00 CEST, which is 02:00 CET again.
    night = hotline(OpeningHours(SUN, time(1), time(2, 30)), zone="Europe/Berlin")
    half_past_two_cest = datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert not is_open(night, half_past_two_cest)
    assert next_opening(night, half_past_two_cest) == datetime(2025, 10, 26, 1, 0, tzinfo=UTC)


def test_an_opening_time_in_the_repeated_hour_comes_round_again_on_its_second_pass() -> None:
    # 26 October 2025: open from 02:30 CEST until the clocks go back to 02:00 CET, which is
    # before 02:30 by the clock again: closed, then open once more from 02:30 CET (01:30 UTC).
    night = hotline(OpeningHours(SUN, time(2, 30), time(4)), zone="Europe/Berlin")
    ten_past_two_cet = wall("Europe/Berlin", 2025, 10, 26, 2, 10, fold=1)
    assert not is_open(night, ten_past_two_cet)
    assert next_opening(night, ten_past_two_cet) == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)


# Properties: any instant, any valid hours.

MINUTES_A_DAY = 24 * 60


def clock(minute: int) -> time:
    return MIDNIGHT if minute == MINUTES_A_DAY else time(minute // 60, minute % 60)


@st.composite
def day_spans(draw: st.DrawFn, step: int = 1) -> list[tuple[int, int]]:
    """Non-overlapping [opens, closes) minute spans of one day, as provisioning accepts them."""
    edges = sorted(draw(st.sets(st.integers(0, MINUTES_A_DAY // step), max_size=6)))
    edges = [e * step for e in edges[: len(edges) // 2 * 2]]
    return list(zip(edges[::2], edges[1::2], strict=True))


@st.composite
def hotlines(draw: st.DrawFn, zone: str, around: date | None, step: int = 1) -> Hotline:
    week_spans = {day: draw(day_spans(step)) for day in range(1, 8)}
    hours = [OpeningHours(day, clock(o), clock(c)) for day, spans in week_spans.items() for o, c in spans]
    holidays: dict[date, Holiday] = {}
    if around is not None:  # near the instant under test, or they would never be seen
        for _ in range(draw(st.integers(0, 3))):
            day = around + timedelta(days=draw(st.integers(-2, 2)))
            spans = draw(day_spans(step).filter(lambda s: len(s) <= 1))
            holidays[day] = Holiday(day, clock(spans[0][0]), clock(spans[0][1])) if spans else Holiday(day)
    return hotline(*hours, holidays=tuple(holidays.values()), zone=zone)


def oracle_is_open(h: Hotline, at: datetime) -> bool:
    """Brute force: mark every open minute of the local day, then look up the local minute."""
    local = at.astimezone(ZoneInfo(h.time_zone))
    if not h.hours and not h.holidays:
        return True
    minutes = [False] * MINUTES_A_DAY
    holiday = next((d for d in h.holidays if d.day == local.date()), None)
    spans: list[tuple[time, time]]
    if holiday is not None:
        spans = []  # closed all day, unless it has short hours
        if holiday.opens is not None and holiday.closes is not None:
            spans = [(holiday.opens, holiday.closes)]
    elif h.hours:
        spans = [(s.opens, s.closes) for s in h.hours if s.weekday == local.isoweekday()]
    else:
        spans = [(time(0), MIDNIGHT)]
    for opens, closes in spans:
        end = MINUTES_A_DAY if closes == MIDNIGHT else closes.hour * 60 + closes.minute
        for minute in range(opens.hour * 60 + opens.minute, end):
            minutes[minute] = True
    return minutes[local.hour * 60 + local.minute]


@settings(deadline=None)
@given(st.data(), st.datetimes(timezones=st.timezones()), st.timezone_keys())
def test_is_open_and_next_opening_never_raise_for_any_aware_instant(data: st.DataObject, at: datetime,
                                                                     zone: str) -> None:
    h = data.draw(hotlines(zone, around=None))
    assert is_open(h, at) in (True, False)
    opening = next_opening(h, at)
    assert opening is None or opening >= at


@settings(max_examples=300, deadline=None)
@given(st.data(), st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                               timezones=st.timezones()), st.timezone_keys())
def test_open_exactly_when_a_span_of_the_local_day_holds_the_local_time(data: st.DataObject, at: datetime,
                                                                          zone: str) -> None:
    h = data.draw(hotlines(zone, around=at.astimezone(ZoneInfo(zone)).date()))
    assert is_open(h, at) == oracle_is_open(h, at)


# Zones whose offsets and clock changes fall on quarter hours, with the odd ones in: a clock
# change at midnight (Santiago, Havana), a half-hour change (Lord Howe), +05:45 (Kathmandu),
# +12:45/+13:45 (Chatham) and Samoa, which skipped 30 December 2011 altogether.
QUARTER_HOUR_ZONES = ["Europe/Moscow", "Europe/Berlin", "Asia/Vladivostok", "America/Santiago",
                      "America/Havana", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham",
                      "America/St_Johns", "Pacific/Apia", "UTC"]
QUARTER = timedelta(minutes=15)


@settings(max_examples=150, deadline=None)
@given(st.data(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1),
                               timezones=st.just(UTC)), st.sampled_from(QUARTER_HOUR_ZONES))
def test_next_opening_is_the_first_open_instant(data: st.DataObject, at: datetime, zone: str) -> None:
    h = data.draw(hotlines(zone, around=at.astimezone(ZoneInfo(zone)).date(), step=15))
    opening = next_opening(h, at)
    if not h.hours and not h.holidays:
        assert opening is None
        return
    if opening is None:  # only when no span exists at all, or the only ones are holidays gone by
        assert not any(is_open(h, at + QUARTER * n) for n in range(8 * 24 * 4))
        return
    assert opening >= at and opening.tzinfo is UTC and is_open(h, opening)
    assert opening == at or not is_open(h, opening - timedelta(microseconds=1))
    # Hours and clock changes fall on quarter hours: no quarter hour before it may be open.
    quarter = at + (datetime.min.replace(tzinfo=UTC) - at) % QUARTER
    while quarter < opening:
        assert not is_open(h, quarter), quarter
        quarter += QUARTER
