"""8-800 region routing: the caller's number picks the queue, where the hotline says so.

A route is a number prefix ('+7913') or a region name ('Novosibirsk', 'Новосибирская область').
The longest matching prefix wins; else a region route that names where phonenumbers' geocoder
places the caller. Russian mobile numbers geocode only to the country ('Россия'), so they are
routed by prefix routes (DEF codes) alone; a caller with no number goes to the hotline's entry.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumber

from hotline.numbers import to_e164
from hotline.provision.model import Hotline, RegionRoute

# Words that say what kind of place a name is, not which: 'Новосибирская обл.' and
# 'Новосибирская область' are one place, and so are 'г. Санкт-Петербург' and 'Санкт-Петербург'.
# 'край' and 'республика' do count: 'Алтайский край' and 'Республика Алтай' are two places.
_DESIGNATORS = frozenset({"обл", "область", "г", "город", "region", "oblast", "city"})
# Most Russian region names are adjectives of their capital ('Новосибирская' of 'Новосибирск',
# 'Пермский' of 'Пермь', 'Липецкая' of 'Липецк'): both reduce to one stem, so a route may name
# the city. Not every one does ('Московская' is no form of 'Москва'; 'Moscow' still matches),
# and 'Пермский край' stays a 'край', not 'Пермь' ('Perm' matches it in English).
_ADJECTIVE = re.compile(r"([сц]к)(?:ая|ий|ое|ой)$")
_NOUN_END = re.compile(r"(?:ск|ь)$")
_STRESS_MARKS = ("\u0300", "\u0301")  # 'Луга́нская' in the geocoder data


def route_by_region(hotline: Hotline, caller_e164: str | None, language: str = "ru") -> str | None:
    """The queue for this caller by the hotline's region routes, or None (the hotline's entry)."""
    route = region_route(hotline, caller_e164, language)
    return route.queue if route is not None else None


def region_route(hotline: Hotline, caller_e164: str | None, language: str = "ru") -> RegionRoute | None:
    """The hotline's region route this caller takes (its queue and priority), or None."""
    e164 = to_e164(caller_e164) if caller_e164 else None
    if e164 is None or not hotline.regions:
        return None
    by_prefix = _longest_prefix(hotline.regions, e164)
    if by_prefix is not None:
        return by_prefix
    places = {region_key(d) for d in _places(phonenumbers.parse(e164), language)}
    return next((r for r in hotline.regions
                 if r.match_kind == "region" and region_key(r.match) in places), None)


def _longest_prefix(routes: tuple[RegionRoute, ...], e164: str) -> RegionRoute | None:
    matching = [r for r in routes if r.match_kind == "prefix" and e164.startswith(r.match)]
    return max(matching, key=lambda r: len(r.match), default=None)


def _places(number: PhoneNumber, language: str) -> list[str]:
    """Where the geocoder puts a number, in `language` and in English. A country is no region:
    a number it cannot place closer (a mobile) yields nothing."""
    if not phonenumbers.is_number_geographical(number):
        return []
    # Imported here: the geocoder loads every language's place data (~100 MB resident) at import,
    # which a daemon whose hotlines route by prefix only never needs.
    from phonenumbers import geocoder

    out = []
    for lang in dict.fromkeys((language, "en")):
        place = geocoder.description_for_number(number, lang)
        if place and place != geocoder.country_name_for_number(number, lang):
            out.append(place)
    return out


def region_key(name: str) -> tuple[str, ...]:
    """A region name reduced to what identifies the place: case, 'ё', stress marks, punctuation,
    'обл.'/'область'/'г.'-style words and Russian adjective endings do not count."""
    text = unicodedata.normalize("NFD", name.casefold())
    text = unicodedata.normalize("NFC", "".join(ch for ch in text if ch not in _STRESS_MARKS))
    text = text.replace("ё", "е")
    words = (w for w in re.findall(r"[^\W\d_]+", text) if w not in _DESIGNATORS)
    return tuple(_NOUN_END.sub("", _ADJECTIVE.sub(r"\1", w)) for w in words)


def prepare(hotlines: Iterable[Hotline]) -> None:
    """Load the geocoder now (at provisioning time) when a route names a region, so the first
    such caller does not wait for its data to load."""
    if any(r.match_kind == "region" for h in hotlines for r in h.regions):
        from phonenumbers import geocoder  # noqa: F401
