import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.geodata import GEOCODE_DATA

from hotline.engine.routing.regions import region_key, route_by_region
from hotline.provision.model import Hotline, RegionRoute, Target

MOSCOW_495 = "+74951234567"  # geocoded 'Московская обл.' / 'Moscow'
MOSCOW_499 = "+74991234567"  # geocoded 'г. Москва' / 'Moscow'
NOVOSIBIRSK = "+73832123456"  # 'Новосибирская обл.' / 'Novosibirsk'
ST_PETERSBURG = "+78123123456"  # 'г. Санкт-Петербург' / 'St Petersburg'
NOVOSIBIRSK_MOBILE = "+79131234567"  # MOBILE: geocoded 'Россия' / 'Russia' only
TOLLFREE = "+78005553535"


def federal(*routes: tuple[str, str, str]) -> Hotline:
    """An 8-800 hotline whose entry is the 'support' queue, with the given region routes."""
    return Hotline("federal", Target("queue", "support"),
                   regions=tuple(RegionRoute(kind, match, queue) for kind, match, queue in routes))


def test_the_longest_matching_prefix_wins() -> None:
    hotline = federal(("prefix", "+79", "mobile"), ("prefix", "+7913", "siberia"),
                      ("prefix", "+791312", "novosibirsk"))
    assert route_by_region(hotline, NOVOSIBIRSK_MOBILE) == "novosibirsk"
    assert route_by_region(hotline, "+79131000000") == "siberia"
    assert route_by_region(hotline, "+79261234567") == "mobile"


def test_a_prefix_route_beats_a_region_route() -> None:
    hotline = federal(("region", "Novosibirsk", "siberia"), ("prefix", "+7383", "novosibirsk-city"))
    assert route_by_region(hotline, NOVOSIBIRSK) == "novosibirsk-city"


@pytest.mark.parametrize("name", ["Moscow", "moscow", "Московская обл.", "Московская область",
                                  "московская ОБЛАСТЬ"])
def test_a_moscow_landline_is_routed_by_region_name_in_russian_or_english(name: str) -> None:
    assert route_by_region(federal(("region", name, "moscow")), MOSCOW_495) == "moscow"


def test_a_route_named_moskva_takes_499_callers_whom_the_geocoder_places_in_the_city() -> None:
    hotline = federal(("region", "Москва", "moscow"))
    assert route_by_region(hotline, MOSCOW_499) == "moscow"
    assert route_by_region(hotline, MOSCOW_495) is None  # 'Московская обл.' names no 'Москва'


@pytest.mark.parametrize("name", ["Novosibirsk", "Новосибирск", "Новосибирская обл.",
                                  "Новосибирская область"])
def test_a_novosibirsk_landline_matches_the_city_or_the_region_name(name: str) -> None:
    assert route_by_region(federal(("region", name, "siberia")), NOVOSIBIRSK) == "siberia"


@pytest.mark.parametrize("name", ["Санкт-Петербург", "г. Санкт-Петербург", "St Petersburg"])
def test_a_city_named_with_or_without_its_g_dot_is_one_place(name: str) -> None:
    assert route_by_region(federal(("region", name, "north-west")), ST_PETERSBURG) == "north-west"


def test_a_landline_from_a_region_without_a_route_goes_to_the_entry() -> None:
    assert route_by_region(federal(("region", "Novosibirsk", "siberia")), MOSCOW_495) is None


def test_a_mobile_caller_is_routed_by_prefix_only() -> None:
    by_region = federal(("region", "Novosibirsk", "siberia"), ("region", "Россия", "russia"),
                        ("region", "Russia", "russia"))
    assert route_by_region(by_region, NOVOSIBIRSK_MOBILE) is None
    by_prefix = federal(("region", "Russia", "russia"), ("prefix", "+7913", "siberia"))
    assert route_by_region(by_prefix, NOVOSIBIRSK_MOBILE) == "siberia"


@pytest.mark.parametrize("caller", [None, "", "anonymous", "Anonymous <sip:anonymous@anonymous.invalid>",
                                    "+7495", "not a number"])
def test_a_caller_without_a_usable_number_goes_to_the_entry(caller: str | None) -> None:
    hotline = federal(("prefix", "+7", "russia"), ("region", "Moscow", "moscow"))
    assert route_by_region(hotline, caller) is None


def test_a_tollfree_caller_is_placed_nowhere_but_a_prefix_still_takes_it() -> None:
    assert route_by_region(federal(("region", "Russia", "russia")), TOLLFREE) is None
    assert route_by_region(federal(("prefix", "+7800", "tollfree")), TOLLFREE) == "tollfree"


def test_a_caller_id_as_people_type_it_is_read_as_the_same_number() -> None:
    hotline = federal(("region", "Moscow", "moscow"), ("prefix", "+7913", "siberia"))
    assert route_by_region(hotline, "8 (495) 123-45-67") == "moscow"
    assert route_by_region(hotline, "89131234567") == "siberia"


def test_the_geocoder_language_can_be_another_than_russian_and_english_always_counts() -> None:
    munich = "+4989123456"  # 'München' in German, 'Munich' in English (and in Russian, as a fallback)
    assert route_by_region(federal(("region", "München", "bavaria")), munich, language="de") == "bavaria"
    assert route_by_region(federal(("region", "München", "bavaria")), munich) is None
    assert route_by_region(federal(("region", "Munich", "bavaria")), munich, language="de") == "bavaria"


def test_a_hotline_without_region_routes_sends_everyone_to_its_entry() -> None:
    assert route_by_region(federal(), MOSCOW_495) is None


def test_altai_krai_and_the_altai_republic_stay_two_places() -> None:
    hotline = federal(("region", "Алтайский край", "barnaul"),
                      ("region", "Республика Алтай", "gorno-altaysk"))
    assert route_by_region(hotline, "+73852123456") == "barnaul"
    assert route_by_region(hotline, "+73882212345") == "gorno-altaysk"


def test_region_names_ignore_case_yo_and_stress_marks() -> None:
    assert region_key("ОРЁЛ") == region_key("орел")
    assert region_key("Луга́нская Наро́дная Респу́блика") == region_key("Луганская народная республика")


@pytest.mark.parametrize("language", ["ru", "en"])
def test_no_two_places_the_geocoder_knows_in_russia_reduce_to_one_name(language: str) -> None:
    # What makes the loose matching safe: a route can never catch a second region's callers.
    places = {names[language] for prefix, names in GEOCODE_DATA.items()
              if prefix.startswith(("73", "74", "78")) and names.get(language)}
    keys: dict[tuple[str, ...], str] = {}
    for place in sorted(places):
        assert keys.setdefault(region_key(place), place) == place, (place, keys[region_key(place)])
    assert len(places) > 80


@settings(deadline=None)  # the first caller id loads phonenumbers' geocoder data: seconds on a busy machine
@given(st.one_of(st.none(), st.text(), st.from_regex(r"\+[0-9]{1,16}", fullmatch=True)))
def test_routing_never_raises_for_any_caller_id(caller: str | None) -> None:
    hotline = federal(("prefix", "+7913", "siberia"), ("region", "Moscow", "moscow"))
    assert route_by_region(hotline, caller) in (None, "siberia", "moscow")
