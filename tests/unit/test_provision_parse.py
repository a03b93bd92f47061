"""Parsing and cross-checking provisioning, as a telecom engineer types it into the TOML file."""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.errors import ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import (
    OPTION_ACTIONS,
    OVERFLOW_ACTIONS,
    STRATEGIES,
    Holiday,
    MenuOption,
    OpeningHours,
    Provisioning,
    RegionRoute,
    Target,
)
from hotline.provision.plan import diff, merge
from hotline.provision.validate import validate

T = TypeVar("T")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"


def example() -> dict[str, Any]:
    """The example contact centre as tomllib reads it, a fresh copy each time."""
    with EXAMPLE.open("rb") as f:
        return tomllib.load(f)


def refused(call: Callable[[], object], field: str, value: str) -> str:
    """The call raises ProvisionError whose message names `field` and `value`; returns the message."""
    with pytest.raises(ProvisionError) as info:
        call()
    message = str(info.value)
    assert field in message, f"{field!r} not named in {message!r}"
    assert value in message, f"{value!r} not named in {message!r}"
    return message


def checked(doc: dict[str, Any]) -> Provisioning:
    prov = parse.provisioning(doc)
    validate(prov)
    return prov


# -- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["8 (495) 123-45-67", "+7 495 1234567", "84951234567",
                                   "+7 (495) 123 45 67"])
def test_moscow_number_as_people_type_it_becomes_e164_city(typed: str) -> None:
    assert parse.number_key("numbers.x", typed, None) == ("+74951234567", "city")


@pytest.mark.parametrize("typed", ["8-800-555-35-35", "+7 800 555 35 35", "88005553535"])
def test_8_800_number_as_people_type_it_becomes_e164_tollfree(typed: str) -> None:
    assert parse.number_key("numbers.x", typed, None) == ("+78005553535", "tollfree")


def test_sip_address_is_a_video_number() -> None:
    assert parse.number_key("numbers.video-support", "video-support", None) == ("video-support", "video")


def test_stated_kind_that_fits_the_number_is_accepted() -> None:
    assert parse.number_key("numbers.x", "8-800-555-35-35", "tollfree") == ("+78005553535", "tollfree")
    assert parse.number_key("numbers.x", "8 (495) 123-45-67", "city") == ("+74951234567", "city")


@pytest.mark.parametrize(("typed", "kind"), [("8-800-555-35-35", "city"), ("8 (495) 123-45-67", "tollfree"),
                                             ("8 (495) 123-45-67", "video"), ("support", "city")])
def test_stated_kind_that_does_not_fit_the_number_is_refused(typed: str, kind: str) -> None:
    refused(lambda: parse.number(typed, {"hotline": "moscow", "kind": kind}), f"numbers.{typed}", typed)


def test_kind_that_is_no_kind_is_refused() -> None:
    refused(lambda: parse.number("8 (495) 123-45-67", {"hotline": "moscow", "kind": "mobile"}),
            "numbers.8 (495) 123-45-67.kind", "'mobile'")


@pytest.mark.parametrize("typed", ["8 (495) 123-45", "+7 495 12", "not a number!", "8 (495) 123-45-67-89-00"])
def test_what_is_not_a_number_is_refused_with_field_and_value(typed: str) -> None:
    refused(lambda: parse.number(typed, {"hotline": "moscow"}), f"numbers.{typed}", typed)


def test_city_number_has_one_line_unless_told() -> None:
    assert parse.number("8 (495) 123-45-67", {"hotline": "moscow"}).lines == 1
    assert parse.number("8 (495) 123-45-67", {"hotline": "moscow", "lines": 4}).lines == 4


def test_8_800_numbers_are_unlimited_and_video_addresses_have_ten_lines_unless_told() -> None:
    assert parse.number("8-800-555-35-35", {"hotline": "federal"}).lines is None
    assert parse.number("video-support", {"hotline": "federal"}).lines == 10
    assert parse.number("8-800-555-35-35", {"hotline": "federal", "lines": 30}).lines == 30
    assert parse.number("video-support", {"hotline": "federal", "lines": "unlimited"}).lines is None


def test_unlimited_lines_are_accepted_on_a_city_number() -> None:
    assert parse.number("8 (495) 123-45-67", {"hotline": "moscow", "lines": "unlimited"}).lines is None


@pytest.mark.parametrize("limit", [0, "0", -1, 1.5, "two", True])
def test_line_limit_that_is_no_positive_whole_number_is_refused(limit: object) -> None:
    refused(lambda: parse.number("8 (495) 123-45-67", {"hotline": "moscow", "lines": limit}),
            "numbers.8 (495) 123-45-67.lines", repr(limit))


def test_number_without_a_hotline_is_refused() -> None:
    refused(lambda: parse.number("8 (495) 123-45-67", {"lines": 2}), "numbers.8 (495) 123-45-67.hotline",
            "required")


def test_two_spellings_of_one_number_are_refused_as_a_duplicate() -> None:
    doc = example()
    doc["numbers"]["+7 495 123 45 67"] = {"hotline": "federal"}
    message = refused(lambda: parse.provisioning(doc), "numbers.", "+74951234567")
    assert "twice" in message


# -- queues -------------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_asterisk_strategy_is_accepted(strategy: str) -> None:
    assert parse.queue("support", {"strategy": strategy}).strategy == strategy


@pytest.mark.parametrize("typo", ["round-robin", "RingAll", "ringal", "rrmemory "])
def test_strategy_typo_is_refused_with_the_field_named(typo: str) -> None:
    message = refused(lambda: parse.queue("support", {"strategy": typo}), "queues.support.strategy",
                      repr(typo))
    assert "rrmemory" in message  # it says what would have been right


def test_queue_defaults_are_asterisks_usual_ones_but_nobody_waits_for_ever() -> None:
    q = parse.queue("support", {})
    assert (q.strategy, q.ring_timeout, q.max_wait, q.overflow) == ("ringall", 15, 900, Target("hangup"))


def test_max_wait_off_means_wait_for_ever() -> None:
    assert parse.queue("support", {"max_wait": "off"}).max_wait is None
    assert parse.queue("support", {"max_wait": 120}).max_wait == 120


@pytest.mark.parametrize(("key", "value"), [("ring_timeout", 0), ("retry", -1), ("wrapup", "ten"),
                                            ("join_empty", "maybe"), ("music", "My Music"),
                                            ("service_level", 99999)])
def test_queue_setting_out_of_range_is_refused(key: str, value: object) -> None:
    refused(lambda: parse.queue("support", {key: value}), f"queues.support.{key}", repr(value))


def test_unknown_setting_is_refused_and_the_known_ones_are_listed() -> None:
    message = refused(lambda: parse.queue("support", {"stratgy": "ringall"}), "queues.support.stratgy",
                      "'ringall'")
    assert "strategy" in message


@pytest.mark.parametrize(("section", "name", "table", "field"), [
    ("numbers", "8 (495) 123-45-67", {"hotline": "moscow", "line": 2}, "numbers.8 (495) 123-45-67.line"),
    ("agents", "ivanov", {"penalty": 2}, "agents.ivanov.penalty"),
    ("hotlines", "moscow", {"entry": "queue:support", "timezone": "UTC"}, "hotlines.moscow.timezone"),
    ("menus", "main", {"prompt": "hello-world", "option": {}}, "menus.main.option"),
])
def test_unknown_setting_of_any_object_is_refused(section: str, name: str, table: dict[str, Any],
                                                  field: str) -> None:
    refused(lambda: parse.provisioning({section: {name: table}}), field, "is not a setting")


def test_unknown_section_of_the_file_is_refused() -> None:
    refused(lambda: parse.provisioning({"queue": {"support": {}}}), "file.queue", "is not a setting")


@pytest.mark.parametrize("name", ["Support", "support desk", "", "-x", "support\n", "x" * 64])
def test_name_that_is_no_lower_case_slug_is_refused(name: str) -> None:
    refused(lambda: parse.provisioning({"queues": {name: {}}}), "queue", repr(name))


# -- targets ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("queue:support", Target("queue", "support")), ("menu:main", Target("menu", "main")),
    ("hotline:federal", Target("hotline", "federal")), ("hangup", Target("hangup")),
    ("video:support", Target("video", "support")), ("repeat", Target("repeat")),
    ("callback:support", Target("callback", "support")),
])
def test_target_names_an_action_and_what_it_leads_to(text: str, expected: Target) -> None:
    assert parse.target("menus.main.options.1", text, OPTION_ACTIONS) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["hangup:x", "hangup:", "menu:", "queue", "queue:Support", "ring:x",
                                  "queue:support:extra", "", "QUEUE:support"])
def test_malformed_target_is_refused(text: str) -> None:
    refused(lambda: parse.target("menus.main.options.1", text, OPTION_ACTIONS), "menus.main.options.1", text)


def test_target_not_allowed_in_its_place_is_refused() -> None:
    refused(lambda: parse.hotline("moscow", {"entry": "hangup"}), "hotlines.moscow.entry", "'hangup'")
    refused(lambda: parse.hotline("moscow", {"entry": "queue:support", "closed": "queue:support"}),
            "hotlines.moscow.closed", "'queue:support'")
    refused(lambda: parse.queue("support", {"overflow": "video"}), "queues.support.overflow", "'video'")


def test_hotline_with_no_route_is_refused() -> None:
    message = refused(lambda: parse.hotline("moscow", {"description": "city line"}), "hotlines.moscow.entry",
                      "None")
    assert "route" in message


# -- hours, holidays, time zone -----------------------------------------------------------------

def test_weekday_hours_and_a_saturday_until_midnight_parse() -> None:
    spans = parse.hours("hotlines.moscow.hours", ["mon-fri 09:00-18:00", "sat 10:00-24:00"])
    assert [(s.weekday, s.opens, s.closes) for s in spans] == (
        [(day, time(9), time(18)) for day in range(1, 6)] + [(6, time(10), parse.DAY_END)])


def test_days_may_be_listed_or_daily() -> None:
    assert [s.weekday for s in parse.hours("h", "mon,wed,fri 09:00-18:00")] == [1, 3, 5]
    assert [s.weekday for s in parse.hours("h", ["daily 00:00-24:00"])] == list(range(1, 8))


def test_two_spans_on_one_day_that_do_not_overlap_are_fine() -> None:
    assert parse.hours("h", ["mon 09:00-13:00", "mon 14:00-18:00", "mon 18:00-20:00"]) == (
        OpeningHours(1, time(9), time(13)), OpeningHours(1, time(14), time(18)),
        OpeningHours(1, time(18), time(20)))


@pytest.mark.parametrize(("spans", "day"), [
    (["mon-fri 09:00-18:00", "fri 17:00-20:00"], "fri"),
    (["daily 10:00-16:00", "sun 09:00-11:00"], "sun"),
    (["mon 09:00-18:00", "mon 09:00-18:00"], "mon"),
    (["wed 09:00-18:00", "wed 12:00-13:00"], "wed"),
])
def test_overlapping_hours_are_refused_naming_the_day_and_both_spans(spans: list[str], day: str) -> None:
    message = refused(lambda: parse.hotline("moscow", {"entry": "queue:support", "hours": spans}),
                      "hotlines.moscow.hours", day)
    assert "overlap" in message


@pytest.mark.parametrize(("entry", "bad"), [
    ("mon-fri 9-18", "'9'"), ("monday 09:00-18:00", "monday"), ("mon-fri", "mon-fri"),
    ("mon-fri 09:00", "mon-fri 09:00"), ("mon-fri 25:00-26:00", "'25:00'"),
    ("mon-fri 09:60-18:00", "'09:60'"),
    ("mon-fri 09:00–18:00", "09:00–18:00"), ("fri-mon 09:00-18:00", "fri-mon"), ("24/7", "24/7"),
    ("mon-fri 24:30-24:45", "24:30"),
])
def test_hours_that_do_not_parse_are_refused_naming_what_is_wrong(entry: str, bad: str) -> None:
    refused(lambda: parse.hotline("moscow", {"entry": "queue:support", "hours": [entry]}),
            "hotlines.moscow.hours", bad)


def test_hours_that_are_not_a_list_are_refused() -> None:
    refused(lambda: parse.hotline("moscow", {"entry": "queue:support", "hours": {"mon": "09:00-18:00"}}),
            "hotlines.moscow.hours", "{'mon': '09:00-18:00'}")


def test_night_shift_across_midnight_is_refused_saying_how_to_write_it() -> None:
    night_shift = {"entry": "queue:support", "hours": ["mon-fri 22:00-06:00"]}
    message = refused(lambda: parse.hotline("moscow", night_shift), "hotlines.moscow.hours",
                      "'mon-fri 22:00-06:00'")
    assert "24:00" in message  # split the shift: 'mon-fri 22:00-24:00', 'tue-sat 00:00-06:00'
    night = parse.hours("h", ["mon-fri 22:00-24:00", "tue-sat 00:00-06:00"])
    assert OpeningHours(2, time(0), time(6)) in night and OpeningHours(2, time(22), parse.DAY_END) in night


def test_hours_that_close_when_they_open_are_refused() -> None:
    refused(lambda: parse.hours("hotlines.moscow.hours", ["mon 09:00-09:00"]), "hotlines.moscow.hours",
            "'mon 09:00-09:00'")


def test_holidays_are_closed_days_or_short_days() -> None:
    days = parse.holidays("hotlines.moscow.holidays", {"2027-01-01": "closed", "2027-03-08": "10:00-16:00"})
    assert days == (Holiday(date(2027, 1, 1)), Holiday(date(2027, 3, 8), time(10), time(16)))


@pytest.mark.parametrize(("table", "field", "bad"), [
    ({"2027-13-01": "closed"}, "hotlines.moscow.holidays", "'2027-13-01'"),
    ({"1 January": "closed"}, "hotlines.moscow.holidays", "'1 January'"),
    ({"2027-01-01": "open"}, "hotlines.moscow.holidays.2027-01-01", "'open'"),
    ({"2027-01-01": "16:00-10:00"}, "hotlines.moscow.holidays.2027-01-01", "'16:00-10:00'"),
])
def test_holiday_that_does_not_parse_is_refused(table: dict[str, str], field: str, bad: str) -> None:
    refused(lambda: parse.hotline("moscow", {"entry": "queue:support", "holidays": table}), field, bad)


def test_one_day_listed_twice_as_a_holiday_is_refused() -> None:
    twice = {"2027-01-01": "closed", "20270101": "10:00-12:00"}
    refused(lambda: parse.holidays("hotlines.moscow.holidays", twice), "hotlines.moscow.holidays", "20270101")


def test_time_zone_is_checked_against_the_time_zone_database() -> None:
    assert parse.hotline("vlad", {"entry": "queue:support", "time_zone": "Asia/Vladivostok"}).time_zone == (
        "Asia/Vladivostok")
    assert parse.hotline("moscow", {"entry": "queue:support"}).time_zone == "Europe/Moscow"


@pytest.mark.parametrize("typo", ["Europe/Moskow", "europe/moscow", "MSK", "Europe", "", "Europe/Moscow\n",
                                  "../UTC"])
def test_time_zone_typo_is_refused(typo: str) -> None:
    refused(lambda: parse.hotline("moscow", {"entry": "queue:support", "time_zone": typo}),
            "hotlines.moscow.time_zone", repr(typo))


# -- region routes ------------------------------------------------------------------------------

def test_region_route_is_a_number_prefix_or_a_region_name() -> None:
    routes = parse.regions("hotlines.federal.regions", {"+7913": "siberia", "Novosibirsk": "siberia",
                                                        "Приморский край": "far-east"})
    assert routes == (RegionRoute("prefix", "+7913", "siberia"),
                      RegionRoute("region", "Novosibirsk", "siberia"),
                      RegionRoute("region", "Приморский край", "far-east"))


@pytest.mark.parametrize("key", ["7913", "+0913", "+", "", "+7 913", "+7913x"])
def test_region_key_that_is_neither_a_prefix_nor_a_region_is_refused(key: str) -> None:
    refused(lambda: parse.regions("hotlines.federal.regions", {key: "siberia"}), "hotlines.federal.regions",
            repr(key))


def test_one_prefix_listed_twice_is_refused() -> None:
    refused(lambda: parse.regions("hotlines.federal.regions", {"+7913": "siberia", " +7913": "far-east"}),
            "hotlines.federal.regions", "+7913")


def test_region_route_to_a_malformed_queue_name_is_refused() -> None:
    refused(lambda: parse.regions("hotlines.federal.regions", {"+7913": "Siberia"}),
            "hotlines.federal.regions.+7913", "'Siberia'")


# -- menus and agents ---------------------------------------------------------------------------

def test_menu_option_may_say_something_before_its_action() -> None:
    m = parse.menu("main", {"prompt": "hello-world", "options": {
        "1": {"action": "queue:support", "prompt": "transfer"}, "#": "hangup"}})
    assert [(o.digit, str(o.target), o.prompt) for o in m.options] == [
        ("#", "hangup", None), ("1", "queue:support", "transfer")]


@pytest.mark.parametrize(("options", "field", "bad"), [
    ({"12": "hangup"}, "menus.main.options", "'12'"),
    ({"a": "hangup"}, "menus.main.options", "'a'"),
    ({"1": "dial:100"}, "menus.main.options.1", "'dial:100'"),
    ({"1": {"prompt": "transfer"}}, "menus.main.options.1", "None"),
    ({"1": {"action": "hangup", "sound": "x"}}, "menus.main.options.1.sound", "'x'"),
])
def test_malformed_menu_option_is_refused(options: dict[str, Any], field: str, bad: str) -> None:
    refused(lambda: parse.menu("main", {"prompt": "hello-world", "options": options}), field, bad)


@pytest.mark.parametrize("prompt", ["hello world", "/etc/passwd", "../../secret", "hello-world.wav\n", ""])
def test_prompt_that_is_no_sound_name_is_refused(prompt: str) -> None:
    refused(lambda: parse.menu("main", {"prompt": prompt}), "menus.main.prompt", repr(prompt))


def test_a_queue_may_record_on_demand_and_announce_it_with_a_sound() -> None:
    q = parse.queue("desk", {"record": "on_demand", "record_announcement": "hotline/recorded"})
    assert (q.record, q.record_announcement) == ("on_demand", "hotline/recorded")
    off = parse.queue("desk", {"record": "always", "record_announcement": "none"})
    assert off.record_announcement is None
    refused(lambda: parse.queue("desk", {"record": "sometimes"}), "queues.desk.record", "'sometimes'")


@pytest.mark.parametrize("sound", ["hello world", "/etc/passwd", "../../secret", 3])
def test_a_record_announcement_that_is_no_sound_name_is_refused(sound: object) -> None:
    refused(lambda: parse.queue("desk", {"record": "always", "record_announcement": sound}),
            "queues.desk.record_announcement", repr(sound))


def test_a_record_announcement_of_a_queue_that_records_never_is_refused() -> None:
    doc = example()
    name = next(iter(doc["queues"]))
    doc["queues"][name] = {**doc["queues"][name], "record": "never", "record_announcement": "hello-world"}
    refused(lambda: checked(doc), f"queues.{name}.record_announcement", "records never")


def test_a_queue_without_a_record_inherits_its_hotlines_and_says_so_on_export() -> None:
    assert parse.queue("desk", {}).record is None
    assert parse.queue("desk", {"record": "inherit"}).record is None
    assert "record" not in export.queue_table(parse.queue("desk", {"record": "inherit"}))
    assert export.queue_table(parse.queue("desk", {"record": "never"}))["record"] == "never"
    refused(lambda: parse.queue("desk", {"record": "sometimes"}), "queues.desk.record", "inherit")


def test_a_hotline_records_never_by_default_and_may_record_and_announce() -> None:
    entry = {"entry": "queue:support"}
    assert (parse.hotline("city", entry).record, parse.hotline("city", entry).record_announcement) == (
        "never", None)
    h = parse.hotline("city", {**entry, "record": "on_demand", "record_announcement": "hotline/recorded"})
    assert (h.record, h.record_announcement) == ("on_demand", "hotline/recorded")
    assert parse.hotline("city", export.hotline_table(h)) == h
    assert "record" not in export.hotline_table(parse.hotline("city", entry))
    refused(lambda: parse.hotline("city", {**entry, "record": "inherit"}), "hotlines.city.record",
            "'inherit'")
    refused(lambda: parse.hotline("city", {**entry, "record": "always", "record_announcement": "a b"}),
            "hotlines.city.record_announcement", "'a b'")


def test_an_announcement_of_a_queue_that_inherits_needs_a_hotline_that_records() -> None:
    doc = example()
    name = next(iter(doc["queues"]))
    doc["queues"][name] = {**doc["queues"][name], "record_announcement": "hello-world"}
    doc["queues"][name].pop("record", None)
    refused(lambda: checked(doc), f"queues.{name}.record_announcement", "no hotline records")
    doc["hotlines"][next(iter(doc["hotlines"]))]["record"] = "on_demand"
    assert checked(doc).queues[name].record_announcement == "hello-world"


def test_a_hotline_announcement_nothing_could_ever_play_is_refused() -> None:
    doc = example()
    name = next(iter(doc["hotlines"]))
    for q in doc["queues"].values():
        q.pop("record", None)
    doc["hotlines"][name] = {**doc["hotlines"][name], "record_announcement": "hello-world"}
    refused(lambda: checked(doc), f"hotlines.{name}.record_announcement", "records never")
    doc["hotlines"][name]["record"] = "always"
    assert checked(doc).hotlines[name].record_announcement == "hello-world"
    doc["hotlines"][name]["record"] = "never"  # a queue recording of its own plays it
    doc["queues"][next(iter(doc["queues"]))]["record"] = "on_demand"
    assert checked(doc).hotlines[name].record == "never"


def test_menu_without_a_prompt_is_refused() -> None:
    refused(lambda: parse.menu("main", {"options": {"1": "hangup"}}), "menus.main.prompt", "required")


def test_agent_endpoint_defaults_to_the_agents_name() -> None:
    a = parse.agent("ivanov", {"queues": {"support": 0, "backoffice": 5}})
    assert (a.endpoint, a.capabilities) == ("ivanov", {"audio"})
    assert a.queues == (("backoffice", 5), ("support", 0))


@pytest.mark.parametrize(("table", "field", "bad"), [
    ({"endpoint": "ivanov\r\n[evil]"}, "agents.ivanov.endpoint", "'ivanov\\r\\n[evil]'"),
    ({"endpoint": "ivanov\n"}, "agents.ivanov.endpoint", "'ivanov\\n'"),
    ({"capabilities": ["webrtc"]}, "agents.ivanov.capabilities", "['webrtc']"),
    ({"capabilities": ["audio", "fax"]}, "agents.ivanov.capabilities", "'fax'"),
    ({"queues": {"support": -1}}, "agents.ivanov.queues.support", "-1"),
    ({"queues": ["support"]}, "agents.ivanov.queues", "['support']"),
])
def test_malformed_agent_is_refused(table: dict[str, Any], field: str, bad: str) -> None:
    refused(lambda: parse.agent("ivanov", table), field, bad)


def test_weak_password_is_refused_without_being_repeated() -> None:
    with pytest.raises(ProvisionError) as info:
        parse.agent("ivanov", {"password": "secret"})
    assert "agents.ivanov.password" in str(info.value) and "secret" not in str(info.value)


# -- cross-checks of the whole file -------------------------------------------------------------

def test_the_example_contact_centre_is_valid() -> None:
    prov = checked(example())
    assert sorted(prov.numbers) == ["+74951234567", "+74957654321", "+78005553535", "video-support"]
    assert prov.numbers["+74957654321"].lines == 4


def setting(section: str, name: str, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc[section][name].__setitem__(key, value)


def entry(section: str, name: str, table: str, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc[section][name][table].__setitem__(key, value)


@pytest.mark.parametrize(("edit", "field", "bad"), [
    (setting("hotlines", "federal", "entry", "queue:sales"), "hotlines.federal.entry", "'queue:sales'"),
    (setting("hotlines", "moscow", "entry", "menu:start"), "hotlines.moscow.entry", "'menu:start'"),
    (setting("hotlines", "moscow", "closed", "hotline:spb"), "hotlines.moscow.closed", "'hotline:spb'"),
    (entry("hotlines", "federal", "regions", "+7914", "far-east"), "hotlines.federal.regions.+7914",
     "'far-east'"),
    (setting("queues", "support", "overflow", "queue:sales"), "queues.support.overflow", "'queue:sales'"),
    (setting("queues", "support", "overflow", "menu:start"), "queues.support.overflow", "'menu:start'"),
    (setting("queues", "support", "overflow", "hotline:spb"), "queues.support.overflow", "'hotline:spb'"),
    (entry("menus", "main", "options", "3", "queue:sales"), "menus.main.options.3", "'queue:sales'"),
    (entry("menus", "main", "options", "3", "hotline:spb"), "menus.main.options.3", "'hotline:spb'"),
    (entry("menus", "main", "options", "3", "menu:start"), "menus.main.options.3", "'menu:start'"),
    (setting("numbers", "8-800-555-35-35", "hotline", "spb"), "numbers.+78005553535.hotline", "'spb'"),
    (entry("agents", "ivanov", "queues", "sales", 0), "agents.ivanov.queues", "'sales'"),
])
def test_reference_to_what_does_not_exist_is_refused(edit: Callable[[dict[str, Any]], None], field: str,
                                                      bad: str) -> None:
    doc = example()
    edit(doc)
    message = refused(lambda: checked(doc), field, bad)
    assert "does not exist" in message


def test_menus_that_only_lead_to_each_other_are_refused() -> None:
    doc = example()
    doc["menus"]["main"]["options"] = {"1": "menu:billing", "*": "repeat"}
    doc["menus"]["billing"]["options"] = {"0": "menu:main"}
    message = refused(lambda: checked(doc), "menus.billing.options", "'0=menu:main'")
    assert "never leads out" in message


def test_menu_that_only_repeats_itself_is_refused() -> None:
    doc = example()
    doc["menus"]["billing"]["options"] = {"*": "repeat", "0": "menu:billing"}
    refused(lambda: checked(doc), "menus.billing.options", "'*=repeat, 0=menu:billing'")


def test_menu_with_no_options_is_refused() -> None:
    doc = example()
    del doc["menus"]["billing"]["options"]
    refused(lambda: checked(doc), "menus.billing.options", "'no options'")


def test_chain_of_menus_with_one_way_out_at_its_end_is_fine() -> None:
    doc = example()
    del doc["queues"]["support"]["breakout_menu"]  # the menus below replace its menu
    doc["menus"] = {
        "main": {"prompt": "hello-world", "options": {"1": "menu:second", "*": "repeat"}},
        "second": {"prompt": "hello-world", "options": {"1": "menu:third", "0": "menu:main"}},
        "third": {"prompt": "hello-world", "options": {"0": "menu:main", "9": "hangup"}},
    }
    assert sorted(checked(doc).menus) == ["main", "second", "third"]


def test_queue_overflowing_into_itself_is_refused() -> None:
    doc = example()
    doc["queues"]["support"]["overflow"] = "queue:support"
    refused(lambda: checked(doc), "queues.support.overflow", "'queue:support'")


def test_queue_breaking_out_to_a_menu_that_does_not_exist_is_refused() -> None:
    doc = example()
    doc["queues"]["support"]["breakout_menu"] = "nowhere"
    refused(lambda: checked(doc), "queues.support.breakout_menu", "'nowhere' does not exist")


def test_queue_ringback_is_read_with_its_default_and_its_limits() -> None:
    doc = example()
    assert checked(doc).queues["support"].ringback == 3
    doc["queues"]["support"]["ringback"] = 0
    assert checked(doc).queues["support"].ringback == 0
    doc["queues"]["support"]["ringback"] = 90
    refused(lambda: checked(doc), "queues.support.ringback", "90")


def test_queue_transfer_no_answer_is_queue_or_agent_and_exports_back() -> None:
    doc = example()
    assert checked(doc).queues["support"].transfer_no_answer == "queue"
    doc["queues"]["support"]["transfer_no_answer"] = "agent"
    prov = checked(doc)
    assert prov.queues["support"].transfer_no_answer == "agent"
    assert export.queue_table(prov.queues["support"])["transfer_no_answer"] == "agent"
    doc["queues"]["support"]["transfer_no_answer"] = "hotline"
    refused(lambda: checked(doc), "queues.support.transfer_no_answer", "hotline")


def test_queue_video_fallback_is_seconds_or_never_and_zero_means_at_once() -> None:
    doc = example()
    assert checked(doc).queues["support"].video_fallback == 30
    for written, read in ((0, 0), ("45", 45), ("never", None), ("none", None)):
        doc["queues"]["support"]["video_fallback"] = written
        assert checked(doc).queues["support"].video_fallback == read
    for bad in (-1, 3601, "soon", True):
        doc["queues"]["support"]["video_fallback"] = bad
        refused(lambda: checked(doc), "queues.support.video_fallback", str(bad))


def test_queue_video_key_is_one_key_or_none_and_not_a_breakout_key() -> None:
    doc = example()
    assert checked(doc).queues["support"].video_key == "9"
    del doc["queues"]["support"]["video_key"]
    assert checked(doc).queues["support"].video_key is None
    for written, read in (("*", "*"), ("8", "8"), ("none", None)):
        doc["queues"]["support"]["video_key"] = written
        assert checked(doc).queues["support"].video_key == read
    for bad in ("99", "a", 9, True):
        doc["queues"]["support"]["video_key"] = bad
        refused(lambda: checked(doc), "queues.support.video_key", str(bad))
    doc["queues"]["support"]["video_key"] = "1"  # billing, its breakout menu, has 1 = backoffice
    refused(lambda: checked(doc), "queues.support.video_key", "breakout menu 'billing'")


def test_menu_video_key_names_the_queue_the_caller_waits_in() -> None:
    doc = example()
    assert checked(doc).menus["main"].options[-1] == MenuOption("9", Target("video", "support"))
    doc["menus"]["main"]["options"]["9"] = "video"
    refused(lambda: checked(doc), "menus.main.options.9", "'video:QUEUE'")
    doc["menus"]["main"]["options"]["9"] = "video:nowhere"
    refused(lambda: checked(doc), "menus.main.options.9", "'video:nowhere' does not exist")
    refused(lambda: parse.target("queues.support.overflow", "video:support", OVERFLOW_ACTIONS),
            "queues.support.overflow", "video:support")


def test_queue_callback_settings_are_read_with_their_defaults_and_limits() -> None:
    doc = example()
    support = checked(doc).queues["support"]
    assert (support.callback_key, support.callback_retries, support.callback_retry_interval,
            support.callback_expiry) == (None, 2, 300, 4 * 3600)
    doc["queues"]["support"].update(callback_key="5", callback_retries=0, callback_retry_interval=60,
                                    callback_expiry="never")
    support = checked(doc).queues["support"]
    assert (support.callback_key, support.callback_retries, support.callback_retry_interval,
            support.callback_expiry) == ("5", 0, 60, None)
    for key, bad in (("callback_key", "55"), ("callback_key", 5), ("callback_retries", 11),
                     ("callback_retry_interval", 9), ("callback_expiry", 59)):
        wrong = example()
        wrong["queues"]["support"][key] = bad
        refused(lambda doc=wrong: checked(doc), f"queues.support.{key}", str(bad))  # type: ignore[misc]


def test_a_callback_key_needs_a_trunk_and_a_key_the_breakout_menu_does_not_take() -> None:
    doc = example()
    doc["queues"]["support"]["callback_key"] = "1"  # billing's key to the backoffice
    refused(lambda: checked(doc), "queues.support.callback_key", "'billing'")
    doc["queues"]["support"]["callback_key"] = "5"
    del doc["trunks"]
    refused(lambda: checked(doc), "queues.support.callback_key", "no trunk")


def test_a_callback_menu_key_or_closed_action_names_an_existing_queue_and_needs_a_trunk() -> None:
    doc = example()
    doc["menus"]["main"]["options"]["8"] = "callback:support"
    doc["hotlines"]["moscow"]["closed"] = "callback:backoffice"
    prov = checked(doc)
    assert MenuOption("8", Target("callback", "support")) in prov.menus["main"].options
    assert prov.hotlines["moscow"].closed == Target("callback", "backoffice")
    again = parse.provisioning(tomllib.loads(export.to_toml(prov)))  # exported as written
    assert (again.menus, again.hotlines) == (prov.menus, prov.hotlines)
    doc["menus"]["main"]["options"]["8"] = "callback"
    message = refused(lambda: checked(doc), "menus.main.options.8", "'callback:QUEUE'")
    assert "\n" not in message
    doc["menus"]["main"]["options"]["8"] = "callback:nowhere"
    refused(lambda: checked(doc), "menus.main.options.8", "'callback:nowhere' does not exist")
    doc["menus"]["main"]["options"]["8"] = {"action": "callback:support", "priority": 3}
    refused(lambda: checked(doc), "menus.main.options.8.priority", "callback:support")
    doc["menus"]["main"]["options"]["8"] = "callback:support"
    doc["hotlines"]["moscow"]["closed"] = "callback"
    refused(lambda: checked(doc), "hotlines.moscow.closed", "'callback:QUEUE'")
    doc["hotlines"]["moscow"]["closed"] = "callback:nowhere"
    refused(lambda: checked(doc), "hotlines.moscow.closed", "'callback:nowhere' does not exist")
    doc["hotlines"]["moscow"]["closed"] = "callback:support"
    del doc["trunks"]
    refused(lambda: checked(doc), "menus.main.options.8", "no trunk")
    del doc["menus"]["main"]["options"]["8"]
    refused(lambda: checked(doc), "hotlines.moscow.closed", "no trunk")


def test_a_bare_callback_stored_before_it_named_a_queue_is_refused_by_the_next_change() -> None:
    prov = checked(example())
    menu = prov.menus["main"]
    stored = dataclasses.replace(menu, options=(*menu.options, MenuOption("8", Target("callback"))))
    with pytest.raises(ProvisionError,
                       match=r"^menus\.main\.options\.8: 'callback' needs the queue .*'callback:QUEUE'$"):
        validate(dataclasses.replace(prov, menus={**prov.menus, "main": stored}))


def test_queue_breakout_menu_and_hold_time_announcement_are_read() -> None:
    support = checked(example()).queues["support"]
    assert (support.breakout_menu, support.announce_holdtime) == ("billing", True)
    doc = example()
    doc["queues"]["support"]["breakout_menu"] = "none"
    assert checked(doc).queues["support"].breakout_menu is None


def test_closed_hotline_sending_callers_to_itself_is_refused() -> None:
    doc = example()
    doc["hotlines"]["moscow"]["closed"] = "hotline:moscow"
    refused(lambda: checked(doc), "hotlines.moscow.closed", "'hotline:moscow'")


def test_two_agents_on_one_endpoint_are_refused() -> None:
    doc = example()
    doc["agents"]["petrova"]["endpoint"] = "ivanov"
    message = refused(lambda: checked(doc), "agents.petrova.endpoint", "'ivanov'")
    assert "already" in message


@pytest.mark.parametrize("agent", [{"endpoint": e} for e in ("sipp-trunk", "anonymous", "sipp-video",
                                                              "hotline-trunk")])
def test_endpoint_of_the_reference_configuration_is_reserved(agent: dict[str, str]) -> None:
    doc = example()
    doc["agents"]["sidorov"] = agent
    refused(lambda: checked(doc), "agents.sidorov.endpoint", repr(agent["endpoint"]))


def test_agent_named_like_a_reserved_endpoint_is_refused() -> None:
    doc = example()
    doc["agents"]["sipp-trunk"] = {}
    refused(lambda: checked(doc), "agents.sipp-trunk.endpoint", "'sipp-trunk'")


def test_the_same_file_gives_the_same_first_error() -> None:
    doc = example()
    doc["hotlines"]["federal"]["entry"] = "queue:sales"
    doc["agents"]["ivanov"]["queues"]["sales"] = 0
    messages = {str(pytest.raises(ProvisionError, checked, copy.deepcopy(doc)).value) for _ in range(3)}
    assert len(messages) == 1


# -- export -------------------------------------------------------------------------------------

def test_exported_example_parses_back_to_the_same_provisioning() -> None:
    prov = checked(example())
    text = export.to_toml(prov, with_secrets=True)  # the example gives petrova's lab password
    assert parse.provisioning(tomllib.loads(text)) == prov
    assert text.startswith("#") and '[numbers."+74951234567"]' in text


def test_export_leaves_passwords_out_unless_asked() -> None:
    doc = example()
    doc["agents"]["ivanov"]["password"] = "s3cret-Passw0rd"
    prov = checked(doc)
    assert "s3cret-Passw0rd" not in export.to_toml(prov)
    assert parse.provisioning(tomllib.loads(export.to_toml(prov, with_secrets=True))) == prov


# -- random input -------------------------------------------------------------------------------

def assert_round_trips(prov: Provisioning) -> None:
    text = export.to_toml(prov, with_secrets=True)
    assert parse.provisioning(tomllib.loads(text)) == prov, text


toml_scalars = (st.text(max_size=30) | st.integers(-10**6, 10**6) | st.integers() | st.booleans()
                | st.floats() | st.dates() | st.times() | st.datetimes())
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)

# What an engineer might well write for each setting, so that random documents get past the first
# check; any setting may also get something else entirely.
GOOD: dict[str, list[Any]] = {
    "strategy": [*STRATEGIES, "round-robin"], "ring_timeout": [1, 15, 600, 0], "retry": [0, 5, "5"],
    "wrapup": [0, 10], "max_wait": [300, "off", 0], "max_len": [5, "none"], "join_empty": [True, "no"],
    "announce_period": [60, "off", 4], "music": ["default", "jazz"], "service_level": [20, 3600],
    "prefer_video_agents": [True, False], "announce_holdtime": [True, "no", 3],
    "ringback": [0, 3, 60, 61, -1], "video_fallback": [0, 30, "never", 3601, "none"],
    "callback_key": ["5", "#", "none", "55", 5], "callback_retries": [0, 2, 10, 11],
    "callback_retry_interval": [10, 300, 9], "callback_expiry": [60, "never", 59, 604801],
    "breakout_menu": ["billing", "none", "Main"], "overflow": ["hangup", "queue:support", "hotline:federal",
                                                      "menu:main", "queue:support:x", "video"],
    "prompt": ["hello-world", "hotline/welcome", "welcome.wav"], "timeout": [5, 120], "retries": [0, 3, 21],
    "invalid_prompt": ["option-is-invalid"], "timeout_prompt": ["hotline/timeout"],
    "options": [{"1": "queue:support", "#": "hangup"}, {"0": {"action": "menu:main", "prompt": "transfer"}},
                {"*": "repeat", "9": "video", "8": "callback", "6": "callback:support"},
                {"7": "hotline:federal"},
                {}, {"11": "hangup"}],
    "entry": ["menu:main", "queue:support", "hangup", "menu:"],
    "description": ["Moscow city line", "", "8-800, вся страна"],
    "time_zone": ["Europe/Moscow", "Asia/Vladivostok", "UTC", "Europe/Moskow"],
    "hours": [["mon-fri 09:00-18:00", "sat 10:00-24:00"], "daily 00:00-24:00",
              ["mon-fri 22:00-24:00", "tue-sat 00:00-06:00"], ["mon-fri 22:00-06:00"],
              ["mon,wed,fri 09:00-13:00", "mon-fri 14:00-18:00"], ["mon-fri 09:00-18:00", "fri 17:00-19:00"]],
    "holidays": [{"2027-01-01": "closed", "2027-03-08": "10:00-16:00"}, {"2027-02-30": "closed"}],
    "closed": ["hangup", "hotline:federal", "callback", "callback:support", "callback:nowhere",
               "queue:support"], "closed_prompt": ["closed"],
    "regions": [{"+7913": "siberia", "Novosibirsk": "siberia"}, {"7913": "siberia"}, {"+7 913": "siberia"}],
    "hotline": ["moscow", "federal", "Moscow"], "kind": ["city", "tollfree", "video", "mobile"],
    "lines": [1, 4, "unlimited", 0], "endpoint": ["ivanov", "agent-7", "sipp-trunk", "a b"],
    "display_name": ["Ivan Ivanov", "Анна Петрова"], "password": ["s3cret-Passw0rd", "short"],
    "password_ha1": ["0bb0eeec03b124a977cd9cfe253b21b7", "0BB0EEEC03B124A977CD9CFE253B21B7"],
    "capabilities": [["audio"], ["audio", "video", "webrtc"], "audio,video", ["webrtc"]],
    "queues": [{"support": 0, "backoffice": 5}, {}, {"support": -1}],
    "caller_id": ["8 (495) 123-45-67", "+74957654321", "8-800-555-35-35", "video-support", "+7 495 12"],
    "allow": [["+7495", "+7916"], "+7495", ["+7"], ["+7495", "+7495"], [], ["7495"], ["+1212"]],
    "ari": ["http://10.0.0.2:8088", "https://node-b:8089", "http://u:p@10.0.0.2:8088", "10.0.0.2"],
    "ami": ["ami://10.0.0.2:5038", "ami://node-b:5038", "tcp://10.0.0.2:5038"],
    "sip": ["sip:10.0.0.2:5060", "sip:node-b;transport=tcp", "sip:a@b"],
}
SECTIONS: dict[str, tuple[list[str], list[str]]] = {  # required settings, optional ones
    "queues": ([], ["strategy", "ring_timeout", "retry", "wrapup", "max_wait", "max_len", "join_empty",
                    "announce_period", "music", "service_level", "prefer_video_agents", "overflow",
                    "announce_holdtime", "breakout_menu", "ringback",
                    "video_fallback", "callback_key", "callback_retries", "callback_retry_interval",
                    "callback_expiry"]),
    "menus": (["prompt"], ["timeout", "retries", "invalid_prompt", "timeout_prompt", "options"]),
    "hotlines": (["entry"], ["description", "time_zone", "hours", "holidays", "closed", "closed_prompt",
                             "regions"]),
    "numbers": (["hotline"], ["kind", "lines"]),
    "agents": ([], ["endpoint", "display_name", "password", "password_ha1", "capabilities", "queues"]),
    "trunks": (["endpoint", "caller_id"], ["allow"]),
    "nodes": (["ari", "ami", "sip"], []),
}
NAMES = {
    "queues": ["support", "backoffice", "siberia"], "menus": ["main", "billing"],
    "hotlines": ["moscow", "federal"], "agents": ["ivanov", "petrova", "sipp-trunk"],
    "trunks": ["carrier", "backup", "Carrier"], "nodes": ["a", "node-b", "B"],
    "numbers": ["8 (495) 123-45-67", "+7 495 1234567", "+7 495 765-43-21", "8-800-555-35-35", "video-support",
                "8 (495) 123-45", "+7 913 123-45-67", "+1 212 555 0100"],
}


def rarely(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, 9)) == 0


def setting_value(draw: st.DrawFn, key: object) -> Any:
    if key in GOOD and not rarely(draw):
        return draw(st.sampled_from(GOOD[key]))
    return draw(toml_values)


def object_name(draw: st.DrawFn, kind: str) -> str:
    return draw(st.text(max_size=10)) if rarely(draw) else draw(st.sampled_from(NAMES[kind]))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A document shaped like the provisioning file, mostly of plausible values, sometimes not."""
    doc: dict[str, Any] = {}
    for kind in draw(st.lists(st.sampled_from(Provisioning.KINDS), unique=True, max_size=6)):
        required, optional = SECTIONS[kind]
        tables: dict[str, Any] = {}
        for name in {object_name(draw, kind) for _ in range(draw(st.integers(0, 3)))}:
            keys = [k for k in required if not rarely(draw)] + (draw(st.lists(
                st.sampled_from(optional), unique=True, max_size=4)) if optional else [])
            if rarely(draw):
                keys.append(draw(st.text(max_size=8)))
            tables[name] = {k: setting_value(draw, k) for k in keys}
        doc[kind] = tables if not rarely(draw) else draw(toml_values)
    if rarely(draw) and rarely(draw):
        doc[draw(st.text(max_size=8))] = draw(toml_values)
    return doc


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            out.extend(paths(child, (*prefix, key)))
    return out


EXAMPLE_PATHS = paths(example())[1:]


@st.composite
def edited_examples(draw: st.DrawFn) -> dict[str, Any]:
    """The example with a few random edits: a value replaced, a setting or object removed or added."""
    doc = example()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(EXAMPLE_PATHS))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        how = draw(st.sampled_from(["replace", "remove", "add"]))
        if how == "replace":
            parent[path[-1]] = setting_value(draw, path[-1])
        elif how == "remove":
            parent.pop(path[-1], None)
        elif len(path) == 2 and path[1] in parent:  # a copy of this object under another name
            parent[object_name(draw, path[0])] = copy.deepcopy(parent[path[1]])
        else:
            key = draw(st.sampled_from(sorted(GOOD)) | st.text(max_size=8))
            parent[key] = setting_value(draw, key)
    return doc


def parse_or_refuse(parse_call: Callable[[], T]) -> T | None:
    """The call either returns or raises ProvisionError naming a field; nothing else."""
    try:
        return parse_call()
    except ProvisionError as exc:
        assert ": " in str(exc), f"no field named in {exc}"
        return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_document_is_parsed_or_refused_and_what_is_accepted_round_trips(doc: dict[str, Any]) -> None:
    prov = parse_or_refuse(lambda: parse.provisioning(doc))
    if prov is not None:
        assert_round_trips(prov)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(edited_examples())
def test_randomly_edited_example_is_accepted_or_refused_and_what_is_accepted_round_trips(
        doc: dict[str, Any]) -> None:
    prov = parse_or_refuse(lambda: checked(doc))
    if prov is not None:
        assert_round_trips(prov)


@given(st.sampled_from(GOOD["hours"]) | toml_values)
def test_random_hours_are_parsed_or_refused_and_what_is_accepted_round_trips(values: Any) -> None:
    spans = parse_or_refuse(lambda: parse.hours("hotlines.x.hours", values))
    if spans:
        assert_round_trips(parse.provisioning({"hotlines": {"x": {"entry": "queue:q", "hours": values}}}))


@given(st.lists(st.from_regex(r"(mon|tue|wed|thu|fri|sat|sun|daily)(-(mon|tue|wed|thu|fri|sat|sun))?"
                              r" [0-2]?[0-9]:[0-5][0-9]-[0-2]?[0-9]:[0-5][0-9]", fullmatch=True), max_size=4))
def test_hours_of_the_right_shape_are_parsed_or_refused_never_crash(values: list[str]) -> None:
    spans = parse_or_refuse(lambda: parse.hours("hotlines.x.hours", values))
    if spans:
        assert all(s.opens < s.closes for s in spans)
        assert_round_trips(parse.provisioning({"hotlines": {"x": {"entry": "queue:q", "hours": values}}}))


@given(st.sampled_from(GOOD["overflow"] + GOOD["closed"] + GOOD["entry"]) | toml_values
       | st.from_regex(r"[a-z]{0,8}:?[a-z0-9_-]{0,8}", fullmatch=True))
def test_random_target_is_parsed_or_refused_and_prints_back_as_typed(text: Any) -> None:
    t = parse_or_refuse(lambda: parse.target("menus.main.options.1", text, OPTION_ACTIONS))
    if t is not None:
        assert str(t) == text
        assert parse.target("menus.main.options.1", str(t), OPTION_ACTIONS) == t


@given(st.sampled_from(NAMES["numbers"]) | toml_values
       | st.from_regex(r"[+8]?[0-9 ()-]{5,16}", fullmatch=True),
       st.sampled_from([None, "city", "tollfree", "video", "mobile"]))
def test_random_number_is_parsed_or_refused_and_what_is_accepted_is_stable(typed: Any,
                                                                          kind: str | None) -> None:
    parsed = parse_or_refuse(lambda: parse.number_key("numbers.x", typed, kind))
    if parsed is not None:
        key, found = parsed
        assert kind in (None, found)
        assert parse.number_key("numbers.x", key, found) == (key, found)
        assert_round_trips(parse.provisioning({"numbers": {key: {"hotline": "x", "kind": found}}}))


def test_overflow_chain_that_comes_back_to_its_start_is_refused() -> None:
    doc = example()
    doc["queues"]["backoffice"]["overflow"] = "queue:support"  # support already overflows here
    message = refused(lambda: validate(parse.provisioning(doc)), "queues.backoffice.overflow",
                      "backoffice -> support -> backoffice")
    assert "circle" in message


def test_closed_hotlines_sending_callers_to_each_other_are_refused() -> None:
    doc = example()
    doc["hotlines"]["federal"]["closed"] = "hotline:moscow"  # moscow is closed into federal
    doc["hotlines"]["federal"]["hours"] = ["mon-fri 09:00-18:00"]
    refused(lambda: validate(parse.provisioning(doc)), "hotlines.federal.closed",
            "federal -> moscow -> federal")


def test_number_with_an_extension_is_refused() -> None:
    refused(lambda: parse.number_key("numbers.x", "8 495 123 45 67 ext. 5", None), "numbers.x", "ext. 5")


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory"])
def test_pseudo_time_zones_are_refused(zone: str) -> None:
    refused(lambda: parse.time_zone("hotlines.x.time_zone", zone), "hotlines.x.time_zone", zone)


def test_a_callback_key_that_is_also_the_video_key_is_refused() -> None:
    doc = example()
    assert checked(doc).queues["support"].video_key == "9"
    doc["queues"]["support"]["callback_key"] = "9"
    refused(lambda: checked(doc), "queues.support.callback_key", "video_key")


def test_a_hotlines_customer_page_takes_a_name_text_https_logo_and_colour_and_refuses_anything_else() -> None:
    entry = {"entry": "queue:support"}
    plain = parse.hotline("city", entry)
    assert (plain.page_title, plain.page_text, plain.page_logo, plain.page_color) == (None, None, None, None)
    h = parse.hotline("city", {**entry, "page_title": " Банк «Пример» ",
                               "page_text": "С 9 до 18, без выходных",
                               "page_logo": "https://cdn.example.ru/img/logo.svg?v=2",
                               "page_color": "#0A7D3E"})
    assert (h.page_title, h.page_text, h.page_logo, h.page_color) == (
        "Банк «Пример»", "С 9 до 18, без выходных", "https://cdn.example.ru/img/logo.svg?v=2", "#0a7d3e")
    assert parse.hotline("city", export.hotline_table(h)) == h  # export gives back what it read
    assert "page_title" not in export.hotline_table(plain)
    spaced = "Банк\u00a0«Пример» 👍"  # a no-break space and an emoji are text
    assert parse.hotline("city", {**entry, "page_title": spaced}).page_title == spaced
    cleared = parse.hotline("city", {**export.hotline_table(h), "page_logo": "none", "page_color": ""})
    assert (cleared.page_logo, cleared.page_color, cleared.page_title) == (None, None, "Банк «Пример»")
    for key, value in [("page_color", "#0a7d3"), ("page_color", "green"), ("page_color", "#0a7d3eff"),
                       ("page_logo", "http://cdn.example.ru/logo.svg"), ("page_logo", "/static/logo.svg"),
                       ("page_logo", "https://user:pw@cdn.example.ru/logo.svg"),
                       ("page_logo", "https://cdn.example.ru/a b.svg"), ("page_logo", "https://x.ru/\"><script>"),
                       ("page_logo", "https://x.ru/" + "a" * 500), ("page_title", "a" * 81),
                       ("page_title", "two\nlines"), ("page_text", "bell\x07"), ("page_text", "x" * 301),
                       ("page_title", "   "), ("page_title", 5), ("page_title", "right\u202eleft"),
                       ("page_text", "a\u2028b")]:
        bad = {**entry, key: value}
        refused(lambda: parse.hotline("city", bad), f"hotlines.city.{key}", repr(value)[:20])  # noqa: B023
# -- pause reasons ------------------------------------------------------------------------------

def test_pause_reasons_are_a_list_in_the_files_order_and_round_trip_through_export() -> None:
    doc = tomllib.loads('pause_reasons = ["обед", " training ", "team meeting"]\n')
    prov = parse.provisioning(doc)
    assert prov.pause_reasons == ("обед", "training", "team meeting")
    assert parse.provisioning(tomllib.loads(export.to_toml(prov))) == prov
    assert parse.provisioning({}).pause_reasons == ()


@pytest.mark.parametrize(("value", "said"), [
    ("lunch", "pause_reasons: 'lunch' must be a list of reasons"),
    (["lunch", 5], "pause_reasons[1]: 5 must be a text"),
    (["lunch", "lunch "], "pause_reasons[1]: 'lunch ' is listed twice"),
    (["  "], "pause_reasons[0]: '  ' a pause needs a reason"),
    (["x" * 101], "pause reason is 101 characters long, at most 100"),
    (["tea\u202ebreak"], "contains the control character"),
])
def test_a_bad_pause_reason_is_refused_naming_it(value: object, said: str) -> None:
    with pytest.raises(ProvisionError, match=re.escape(said)):
        parse.provisioning({"pause_reasons": value})


def test_a_file_without_pause_reasons_keeps_the_list_unless_it_prunes() -> None:
    current = Provisioning(pause_reasons=("lunch", "training"))
    silent, emptied = Provisioning(), Provisioning(pause_reasons=())
    kept = merge(current, silent, prune=False, states_pause_reasons=False)
    assert kept.pause_reasons == ("lunch", "training")
    assert merge(current, silent, prune=True, states_pause_reasons=False).pause_reasons == ()
    assert merge(current, emptied, prune=False, states_pause_reasons=True).pause_reasons == ()
    plan = diff(current, Provisioning(pause_reasons=("lunch", "meeting")))
    assert plan.lines() == ["~ pause reasons lunch, meeting"]
    assert diff(current, current).empty
    assert diff(current, Provisioning()).lines() == ["~ pause reasons (any reason)"]
