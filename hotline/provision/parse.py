"""Values as an engineer types them (CLI options, the TOML file) -> the provisioning model.

Every error names the field and the value: `queues.support.strategy: 'round-robin' is not ...`.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import date, time
from typing import TypeVar
from urllib.parse import urlsplit

import phonenumbers

from hotline.errors import AgentStateError, NumberError, ProvisionError
from hotline.numbers import normalise
from hotline.provision import branding, sip_auth
from hotline.provision.model import (
    CAPABILITIES,
    DEFAULT_LINES,
    INHERIT,
    LANGUAGE_TAG,
    NAMED_ACTIONS,
    NUMBER_KINDS,
    PRIORITY_ACTIONS,
    PRIORITY_MAX,
    PRIORITY_MIN,
    RECORD,
    STRATEGIES,
    THEN_ACTIONS,
    TRANSFER_NO_ANSWER,
    TRUNK_RING_TIMEOUT_MAX_S,
    WEEKDAYS,
    Agent,
    Holiday,
    Hotline,
    Menu,
    MenuOption,
    Node,
    Number,
    OpeningHours,
    Provisioning,
    Queue,
    RegionRoute,
    Target,
    TargetAction,
    Trunk,
)
from hotline.store.agent_sessions import clean_reason

T = TypeVar("T")
BRANDING = ("page_title", "page_text", "page_logo", "page_color")  # a hotline's customer page

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ADDRESS = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")  # a video number: a SIP/WebRTC user part
ENDPOINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# An Asterisk sound: 'hello-world', 'hotline/welcome', 'ru/hotline/closed' (no extension).
SOUND = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_/.-]{0,127}$")
CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
DAY_END = time.max  # "24:00"


def fail(field: str, value: object, why: str) -> ProvisionError:
    return ProvisionError(f"{field}: {value!r} {why}")


# -- single values ------------------------------------------------------------------------------

def slug(field: str, value: object) -> str:
    if not isinstance(value, str) or not SLUG.fullmatch(value):
        raise fail(field, value, "is not a valid name (lower-case letters, digits, '-' and '_', "
                                 "starting with a letter or digit, at most 63)")
    return value


def optional_slug(field: str, value: object) -> str | None:
    """A name, or None for 'none' / 'off' / empty (a setting switched off)."""
    return None if value in (None, "", "none", "off") else slug(field, value)


def optional_key(field: str, value: object) -> str | None:
    """A phone key (0-9, * or #), or None for 'none' / 'off' / empty (not offered)."""
    if value in (None, "", "none", "off"):
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9*#]", value):
        raise fail(field, value, "is not a key (0-9, * or #; 'none': not offered)")
    return value


def optional_sound(field: str, value: object) -> str | None:
    """An Asterisk sound, or None for 'none' / 'off' / empty (nothing played)."""
    return None if value in (None, "", "none", "off") else sound(field, value)


def sound(field: str, value: object) -> str:
    if not isinstance(value, str) or not SOUND.fullmatch(value) or ".." in value:
        raise fail(field, value, "is not an Asterisk sound name (like 'hotline/welcome', no extension)")
    return value


SURVEY_QUESTIONS = 2  # a survey asks at most this many questions


def survey_questions(field: str, value: object) -> tuple[str, ...]:
    """A survey's questions: a list of one or two Asterisk sounds, or 'none' / 'off' (no survey)."""
    if value in ("none", "off"):
        return ()
    if not isinstance(value, list | tuple):
        raise fail(field, value, "is not a list of question sounds (like ['hotline/q1']; 'none': no survey)")
    if not 1 <= len(value) <= SURVEY_QUESTIONS:
        raise fail(field, value, f"must hold 1 to {SURVEY_QUESTIONS} questions ('none': no survey)")
    return tuple(sound(f"{field}[{n}]", v) for n, v in enumerate(value, start=1))


def language(field: str, value: object) -> str:
    """A language of Asterisk's sounds: the name of the directory its prompts are in."""
    if not isinstance(value, str) or not re.fullmatch(LANGUAGE_TAG, value):
        raise fail(field, value, "is not a language of Asterisk's sounds (the name of its directory "
                                 "under sounds/, like 'en', 'ru' or 'en_GB')")
    return value


def optional_language(field: str, value: object) -> str | None:
    """A language, or None for 'none' / 'off' / empty (not set: the hotline's, or Asterisk's
    default language)."""
    return None if value in (None, "", "none", "off") else language(field, value)


def text(field: str, value: object, limit: int = 200) -> str:
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise fail(field, value, f"must be text of at most {limit} characters without control characters")
    return value


def integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise fail(field, value, f"must be a whole number from {low} to {high}")
    try:
        number = int(value)
    except ValueError:
        raise fail(field, value, f"must be a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise fail(field, value, f"must be from {low} to {high}")
    return number


def priority(field: str, value: object) -> int:
    """A caller's priority in queues: higher is served first (app_queue's QUEUE_PRIO)."""
    return integer(field, value, PRIORITY_MIN, PRIORITY_MAX)


def optional_int(field: str, value: object, low: int, high: int) -> int | None:
    """None, 0, 'none' or 'off' switch the feature off."""
    if value is None or value in ("none", "off", 0):
        return None
    return integer(field, value, low, high)


def never_or_seconds(field: str, value: object) -> int | None:
    """'never' (or 'none'): None; else seconds from 0 (0 is a value here, not "off")."""
    if value in ("never", "none"):
        return None
    return integer(field, value, 0, 3600)


def never_or_range(field: str, value: object, low: int, high: int) -> int | None:
    """'never' (or 'none'): None; else seconds from `low` to `high`."""
    if value in ("never", "none"):
        return None
    return integer(field, value, low, high)


def boolean(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "true", "on", "1", "no", "false", "off", "0"):
        return value.lower() in ("yes", "true", "on", "1")
    raise fail(field, value, "must be true or false")


def record_of_queue(field: str, value: object) -> str | None:
    """A queue's `record`: always, on_demand, never, or 'inherit' (None): its hotline's."""
    if value in (None, INHERIT):
        return None
    return choice(field, value, (*RECORD, INHERIT))


def choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise fail(field, value, f"is not one of {', '.join(allowed)}")
    return str(value)


def time_zone(field: str, value: object) -> str:
    # The IANA names only: 'localtime', 'posixrules' and 'Factory' load but mean nothing fixed.
    if not isinstance(value, str) or value not in _time_zones():
        raise fail(field, value, "is not a time zone (like 'Europe/Moscow')")
    return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - {"Factory", "localtime", "posixrules"}


def target(field: str, value: object, allowed: tuple[str, ...]) -> Target:
    """'queue:support', 'menu:main', 'hotline:backup', 'hangup', 'video', ..."""
    if not isinstance(value, str):
        raise fail(field, value, f"must be one of {', '.join(allowed)} (like 'queue:support')")
    action, sep, name = value.partition(":")
    if action not in allowed:
        raise fail(field, value, f"is not one of {', '.join(allowed)}")
    if action == TargetAction.LANGUAGE:
        if not name:
            raise fail(field, value, "needs the language the caller chooses: 'language:LANG' "
                                     "(like 'language:en')")
        return Target(action, language(field, name))
    named = action in NAMED_ACTIONS
    if action == "video" and not name:
        raise fail(field, value, "needs the queue the caller waits in while the link is sent: 'video:QUEUE'")
    if action == "callback" and not name:
        raise fail(field, value, "needs the queue whose line the callback joins: 'callback:QUEUE'")
    if named and not name:
        raise fail(field, value, f"needs a name: '{action}:NAME'")
    if not named and sep:
        raise fail(field, value, f"'{action}' takes no name")
    if named and not SLUG.fullmatch(name):
        raise fail(field, value, f"has {name!r}, which is not a valid name (lower-case letters, digits, "
                                 "'-' and '_')")
    return Target(action, name if named else None)


def clock(field: str, value: str, shown: str | None = None) -> time:
    """'09:00' -> time; 24:00 is the end of the day. Errors show `shown` (the whole entry)."""
    match = CLOCK.match(value.strip())
    if not match:
        raise fail(field, shown or value, f"has {value.strip()!r}, which is not a time of day (HH:MM)")
    hours, minutes = int(match[1]), int(match[2])
    if hours == 24:
        if minutes:
            raise fail(field, shown or value, "is past midnight")
        return DAY_END
    return time(hours, minutes)


def time_range(field: str, value: str, shown: str | None = None) -> tuple[time, time]:
    opens_text, sep, closes_text = value.partition("-")
    if not sep:
        raise fail(field, shown or value, "is not a range of hours (HH:MM-HH:MM)")
    opens, closes = clock(field, opens_text, shown or value), clock(field, closes_text, shown or value)
    if opens >= closes:
        raise fail(field, shown or value, "closes before it opens (split a night shift at 24:00)")
    return opens, closes


def weekdays(field: str, value: str) -> list[int]:
    """'mon-fri', 'sat', 'mon,wed,fri', 'daily' -> ISO weekdays."""
    if value == "daily":
        return list(range(1, 8))
    days: list[int] = []
    for part in value.split(","):
        first, sep, last = part.strip().partition("-")
        if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
            raise fail(field, value, f"is not a day or range of days ({', '.join(WEEKDAYS)}, daily)")
        lo, hi = WEEKDAYS.index(first) + 1, WEEKDAYS.index(last if sep else first) + 1
        if hi < lo:
            raise fail(field, value, "is a range of days that runs backwards")
        days.extend(range(lo, hi + 1))
    return days


def hours(field: str, values: object) -> tuple[OpeningHours, ...]:
    """['mon-fri 09:00-18:00', 'sat 10:00-16:00'] -> opening hours; overlaps are refused."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple):
        raise fail(field, values, "must be a list like ['mon-fri 09:00-18:00']")
    out: list[OpeningHours] = []
    for value in values:
        days_text, _, range_text = str(value).strip().partition(" ")
        opens, closes = time_range(field, range_text.strip(), str(value)) if range_text else (None, None)
        if opens is None or closes is None:
            raise fail(field, value, "is not 'DAYS HH:MM-HH:MM' (like 'mon-fri 09:00-18:00')")
        out.extend(OpeningHours(day, opens, closes) for day in weekdays(field, days_text))
    _refuse_overlaps(field, sorted(out))
    return tuple(sorted(out))


def _refuse_overlaps(field: str, spans: list[OpeningHours]) -> None:
    for before, after in zip(spans, spans[1:], strict=False):
        if before.weekday == after.weekday and after.opens < before.closes:
            day = WEEKDAYS[before.weekday - 1]
            raise fail(field, f"{day} {before.opens:%H:%M}-{_hhmm(before.closes)} and "
                              f"{after.opens:%H:%M}-{_hhmm(after.closes)}", "overlap")


def _hhmm(value: time) -> str:
    return "24:00" if value == DAY_END else f"{value:%H:%M}"


def holidays(field: str, values: object) -> tuple[Holiday, ...]:
    """{'2027-01-01' = 'closed', '2027-03-07' = '10:00-15:00'}."""
    if not isinstance(values, Mapping):
        raise fail(field, values, "must be a table like {\"2027-01-01\" = \"closed\"}")
    out: list[Holiday] = []
    for day_text, spec in values.items():
        try:
            day = day_text if isinstance(day_text, date) else date.fromisoformat(str(day_text))
        except ValueError:
            raise fail(field, day_text, "is not a date (YYYY-MM-DD)") from None
        if any(h.day == day for h in out):
            raise fail(field, day_text, f"is {day}, which is listed twice")
        if spec == "closed":
            out.append(Holiday(day))
        else:
            opens, closes = time_range(f"{field}.{day}", str(spec))
            out.append(Holiday(day, opens, closes))
    return tuple(sorted(out))


def regions(field: str, values: object) -> tuple[RegionRoute, ...]:
    """{'+7913' = 'siberia', 'Novosibirsk' = {queue = 'siberia', priority = 5}}: a number prefix or
    a region -> queue, and the priority its callers wait with (none: the number's)."""
    if not isinstance(values, Mapping):
        raise fail(field, values, "must be a table like {\"+7913\" = \"siberia\"}")
    out: list[RegionRoute] = []
    for match, queue in values.items():
        key = str(match).strip()
        if re.fullmatch(r"\+[1-9][0-9]{0,14}", key):
            kind = "prefix"
        elif (key and not any(ord(c) < 32 for c in key) and len(key) <= 100 and not key[0].isdigit()
              and not key.startswith("+")):
            kind = "region"
        else:
            raise fail(field, match, "is neither an E.164 prefix (like '+7913') nor a region name")
        if any(r.match == key for r in out):
            raise fail(field, match, f"is {key!r}, which is listed twice")
        out.append(_region_route(f"{field}.{key}", kind, key, queue))
    return tuple(sorted(out))


def _region_route(field: str, kind: str, key: str, spec: object) -> RegionRoute:
    """A route's queue, as a name or as a table with its priority: {queue = 'siberia', priority = 5}."""
    if not isinstance(spec, Mapping):
        return RegionRoute(kind, key, slug(field, spec))
    _take(spec, field, {"queue", "priority"})
    if "queue" not in spec:
        raise fail(f"{field}.queue", None, "is required: the queue this route leads to")
    return RegionRoute(kind, key, slug(f"{field}.queue", spec["queue"]),
                       _get(spec, "priority", None, priority, field))


def lines(field: str, value: object) -> int | None:
    if value in ("unlimited", None):
        return None
    return integer(field, value, 1, 10_000)


def number_key(field: str, value: object, stated: object, region: str = "RU") -> tuple[str, str]:
    """A number as typed -> (E.164 or address, kind); a stated kind must fit the number."""
    kind = None if stated is None else choice(f"{field}.kind", stated, NUMBER_KINDS)
    if not isinstance(value, str | int):
        raise fail(field, value, "is not a telephone number or a video address")
    raw = str(value).strip()
    if kind == "video" or (kind is None and ADDRESS.fullmatch(raw)):
        if not ADDRESS.match(raw):
            raise fail(field, value, "is not a video address (letters, digits, '.', '-', '_')")
        return raw, "video"
    try:
        parsed = normalise(raw, region)
    except NumberError as exc:
        raise ProvisionError(f"{field}: {exc}") from None
    inferred = "tollfree" if parsed.kind == "tollfree" else "city"
    if kind is not None and kind != inferred:
        raise fail(field, value, f"is a {inferred} number, not {kind}")
    return parsed.e164, inferred


def capabilities(field: str, values: object) -> frozenset[str]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    if not isinstance(values, list | tuple | frozenset | set) or not values:
        raise fail(field, values, f"must list some of {', '.join(CAPABILITIES)}")
    caps = frozenset(choice(field, v, CAPABILITIES) for v in values)
    if not caps & {"audio", "video"}:
        raise fail(field, sorted(caps), "must include audio or video")
    return caps


def password(field: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._~!@%^*+=-]{8,128}", value):
        raise fail(field, "***", "must be 8 to 128 characters of letters, digits and ._~!@%^*+=-")
    return value


def password_ha1(field: str, value: object) -> str:
    """An HA1 as `hotline export --with-secrets` writes it (sip_auth.ha1: 32 lowercase hex)."""
    if not isinstance(value, str) or not sip_auth.HA1_RE.fullmatch(value):
        raise fail(field, "***", "must be the 32 lowercase hex digits of md5(endpoint:realm:password)")
    return value


def _agent_ha1(table: Mapping[str, object], f: str, endpoint: str) -> str | None:
    """The HA1 an agent's table gives: of its `password` (never kept), or its `password_ha1`."""
    if "password" in table and "password_ha1" in table:
        raise ProvisionError(f"{f}: password and password_ha1 are both given: give one")
    if "password" in table:
        return sip_auth.ha1(endpoint, password(f"{f}.password", table["password"]))
    return _get(table, "password_ha1", None, password_ha1, f)


# -- objects from the TOML file (also used by the CLI verbs with their options as a table) -----

def _take(table: Mapping[str, object], field: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise fail(f"{field}.{unknown[0]}", table[unknown[0]],
                   f"is not a setting (known: {', '.join(sorted(allowed))})")


def _get(table: Mapping[str, object], key: str, default: T, convert: Callable[[str, object], T],
         field: str) -> T:
    return convert(f"{field}.{key}", table[key]) if key in table else default


def queue(name: str, table: Mapping[str, object]) -> Queue:
    f = f"queues.{slug('queue', name)}"
    _take(table, f, {"strategy", "ring_timeout", "retry", "wrapup", "max_wait", "max_len", "join_empty",
                     "announce_period", "music", "service_level", "prefer_video_agents", "overflow",
                     "announce_holdtime", "breakout_menu", "ringback", "video_fallback", "video_key",
                     "transfer_no_answer", "callback_key",
                     "callback_retries", "callback_retry_interval", "callback_expiry", "record",
                     "record_announcement", "survey", "survey_thanks"})
    d = Queue(name)
    return Queue(
        name=name,
        strategy=_get(table, "strategy", d.strategy, lambda k, v: choice(k, v, STRATEGIES), f),
        ring_timeout=_get(table, "ring_timeout", d.ring_timeout, lambda k, v: integer(k, v, 1, 600), f),
        retry=_get(table, "retry", d.retry, lambda k, v: integer(k, v, 0, 600), f),
        wrapup=_get(table, "wrapup", d.wrapup, lambda k, v: integer(k, v, 0, 3600), f),
        max_wait=_get(table, "max_wait", d.max_wait, lambda k, v: optional_int(k, v, 1, 86400), f),
        max_len=_get(table, "max_len", d.max_len, lambda k, v: optional_int(k, v, 1, 100_000), f),
        join_empty=_get(table, "join_empty", d.join_empty, boolean, f),
        announce_period=_get(table, "announce_period", d.announce_period,
                             lambda k, v: optional_int(k, v, 5, 3600), f),
        music=_get(table, "music", d.music, slug, f),
        service_level=_get(table, "service_level", d.service_level, lambda k, v: integer(k, v, 1, 3600), f),
        prefer_video_agents=_get(table, "prefer_video_agents", d.prefer_video_agents, boolean, f),
        overflow=_get(table, "overflow", d.overflow,
                      lambda k, v: target(k, v, ("hangup", "queue", "hotline", "menu")), f),
        announce_holdtime=_get(table, "announce_holdtime", d.announce_holdtime, boolean, f),
        breakout_menu=_get(table, "breakout_menu", d.breakout_menu, optional_slug, f),
        ringback=_get(table, "ringback", d.ringback, lambda k, v: integer(k, v, 0, 60), f),
        video_fallback=_get(table, "video_fallback", d.video_fallback, never_or_seconds, f),
        video_key=_get(table, "video_key", d.video_key, optional_key, f),
        transfer_no_answer=_get(table, "transfer_no_answer", d.transfer_no_answer,
                                lambda k, v: choice(k, v, TRANSFER_NO_ANSWER), f),
        callback_key=_get(table, "callback_key", d.callback_key, optional_key, f),
        callback_retries=_get(table, "callback_retries", d.callback_retries,
                              lambda k, v: integer(k, v, 0, 10), f),
        callback_retry_interval=_get(table, "callback_retry_interval", d.callback_retry_interval,
                                     lambda k, v: integer(k, v, 10, 86400), f),
        callback_expiry=_get(table, "callback_expiry", d.callback_expiry,
                             lambda k, v: never_or_range(k, v, 60, 7 * 86400), f),
        record=_get(table, "record", d.record, record_of_queue, f),
        record_announcement=_get(table, "record_announcement", d.record_announcement, optional_sound, f),
        survey=_get(table, "survey", d.survey, survey_questions, f),
        survey_thanks=_get(table, "survey_thanks", d.survey_thanks, optional_sound, f))


def menu(name: str, table: Mapping[str, object]) -> Menu:
    f = f"menus.{slug('menu', name)}"
    _take(table, f, {"prompt", "timeout", "retries", "invalid_prompt", "timeout_prompt", "options"})
    if "prompt" not in table:
        raise fail(f"{f}.prompt", None, "is required: the menu's greeting")
    return Menu(
        name=name, prompt=sound(f"{f}.prompt", table["prompt"]),
        timeout=_get(table, "timeout", 5, lambda k, v: integer(k, v, 1, 120), f),
        retries=_get(table, "retries", 3, lambda k, v: integer(k, v, 0, 20), f),
        invalid_prompt=_get(table, "invalid_prompt", None, sound, f),
        timeout_prompt=_get(table, "timeout_prompt", None, sound, f),
        options=options(f"{f}.options", table.get("options", {})))


def option(field: str, digit: object, spec: object) -> MenuOption:
    if not isinstance(digit, str) or not re.fullmatch(r"[0-9*#]", digit):
        raise fail(field, digit, "is not a key (0-9, * or #)")
    prompt, level, then = None, None, None
    if isinstance(spec, Mapping):
        _take(spec, f"{field}.{digit}", {"action", "prompt", "priority", "then"})
        prompt = sound(f"{field}.{digit}.prompt", spec["prompt"]) if "prompt" in spec else None
        level = _get(spec, "priority", None, priority, f"{field}.{digit}")
        then = _get(spec, "then", None, lambda k, v: target(k, v, THEN_ACTIONS), f"{field}.{digit}")
        spec = spec.get("action")
    to = target(f"{field}.{digit}", spec,
                ("menu", "queue", "hotline", "hangup", "video", "repeat", "callback", "language"))
    if then is not None and to.action != TargetAction.LANGUAGE:
        raise fail(f"{field}.{digit}.then", str(then),
                   f"is set on a key that leads to {to}: only a 'language:LANG' key has a next step")
    leads = then if to.action == TargetAction.LANGUAGE else to
    if level is not None and (leads is None or leads.action not in PRIORITY_ACTIONS):
        raise fail(f"{field}.{digit}.priority", level,
                   f"is set on a key that leads to {leads or 'the same menu'}: "
                   "only keys to a menu, queue, hotline or video:QUEUE set one")
    return MenuOption(digit, to, prompt, level, then)


def options(field: str, table: object) -> tuple[MenuOption, ...]:
    if not isinstance(table, Mapping):
        raise fail(field, table, "must be a table like {\"1\" = \"queue:support\"}")
    return tuple(sorted((option(field, d, s) for d, s in table.items()), key=lambda o: o.digit))


def hotline(name: str, table: Mapping[str, object]) -> Hotline:
    f = f"hotlines.{slug('hotline', name)}"
    _take(table, f, {"entry", "description", "time_zone", "hours", "holidays", "closed", "closed_prompt",
                     "regions", "record", "record_announcement", "language", *BRANDING})
    if "entry" not in table:
        raise fail(f"{f}.entry", None, "is required: the hotline needs a route ('menu:NAME' or 'queue:NAME')")
    return Hotline(
        name=name, entry=target(f"{f}.entry", table["entry"], ("menu", "queue")),
        description=_get(table, "description", "", text, f),
        time_zone=_get(table, "time_zone", "Europe/Moscow", time_zone, f),
        hours=_get(table, "hours", (), hours, f),
        holidays=_get(table, "holidays", (), holidays, f),
        closed=_get(table, "closed", Target("hangup"),
                    lambda k, v: target(k, v, ("hangup", "hotline", "callback")), f),
        closed_prompt=_get(table, "closed_prompt", None, sound, f),
        regions=_get(table, "regions", (), regions, f),
        record=_get(table, "record", "never", lambda k, v: choice(k, v, RECORD), f),
        record_announcement=_get(table, "record_announcement", None, optional_sound, f),
        page_title=_get(table, "page_title", None, branding.page_title, f),
        page_text=_get(table, "page_text", None, branding.page_text, f),
        page_logo=_get(table, "page_logo", None, branding.page_logo, f),
        page_color=_get(table, "page_color", None, branding.page_color, f),
        language=_get(table, "language", None, optional_language, f))


def number(key: object, table: Mapping[str, object], region: str = "RU") -> Number:
    f = f"numbers.{key}"
    if not isinstance(table, Mapping):
        raise fail(f, table, "must be a table like {hotline = \"moscow\", lines = 2}")
    _take(table, f, {"hotline", "kind", "lines", "priority", "language"})
    e164, kind = number_key(f, key, table.get("kind"), region)
    if "hotline" not in table:
        raise fail(f"{f}.hotline", None, "is required: the hotline this number serves")
    return Number(e164, slug(f"{f}.hotline", table["hotline"]), kind,
                  _get(table, "lines", DEFAULT_LINES[kind], lines, f),
                  _get(table, "priority", 0, priority, f),
                  _get(table, "language", None, optional_language, f))


def agent(name: str, table: Mapping[str, object]) -> Agent:
    f = f"agents.{slug('agent', name)}"
    _take(table, f, {"endpoint", "display_name", "password", "password_ha1", "capabilities", "queues",
                     "supervisor"})
    endpoint = table.get("endpoint", name)
    if not isinstance(endpoint, str) or not ENDPOINT.fullmatch(endpoint):
        raise fail(f"{f}.endpoint", endpoint, "is not a PJSIP endpoint name")
    queues = table.get("queues", {})
    if not isinstance(queues, Mapping):
        raise fail(f"{f}.queues", queues, "must be a table of queue = penalty")
    return Agent(
        name=name, endpoint=endpoint, display_name=_get(table, "display_name", "", text, f),
        password_ha1=_agent_ha1(table, f, endpoint),
        capabilities=_get(table, "capabilities", frozenset({"audio"}), capabilities, f),
        queues=tuple(sorted((slug(f"{f}.queues", q), integer(f"{f}.queues.{q}", p, 0, 1000))
                            for q, p in queues.items())),
        supervisor=_get(table, "supervisor", False, boolean, f))


def allow_prefixes(field: str, values: object) -> tuple[str, ...]:
    """['+7495', '+7916'] -> sorted E.164 prefixes. A bare country code ('+7') is refused: it would
    let a trunk dial the country's premium and international-rate ranges too."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple) or not values:
        raise fail(field, values, "must list E.164 prefixes a dialled number must start with, "
                                  "like ['+7495', '+7916']")
    out: set[str] = set()
    for value in values:
        prefix = str(value).strip().replace(" ", "").replace("-", "")
        if not re.fullmatch(r"\+[1-9][0-9]{0,14}", prefix):
            raise fail(field, value, "is not an E.164 prefix (like '+7495')")
        if int(prefix[1:]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            raise fail(field, value, "is a whole country code: name narrower prefixes (like "
                                     "'+7495', not '+7')")
        if prefix in out:
            raise fail(field, value, "is listed twice")
        out.add(prefix)
    return tuple(sorted(out))


def caller_id(field: str, value: object, region: str = "RU") -> str:
    """The number presented when calling out: as people type it -> E.164 (provisioned: validate)."""
    if not isinstance(value, str | int):
        raise fail(field, value, "is not a telephone number")
    try:
        return normalise(str(value), region).e164
    except NumberError as exc:
        raise ProvisionError(f"{field}: {exc}") from None


def trunk(name: str, table: Mapping[str, object], region: str = "RU") -> Trunk:
    f = f"trunks.{slug('trunk', name)}"
    _take(table, f, {"endpoint", "caller_id", "allow", "ring_timeout"})
    for key, why in (("endpoint", "the PJSIP endpoint calls go out through (pjsip_local.conf)"),
                     ("caller_id", "the hotline number presented to whoever is called"),
                     ("allow", "the E.164 prefixes this trunk may dial, like ['+7495']")):
        if key not in table:
            raise fail(f"{f}.{key}", None, f"is required: {why}")
    endpoint = table["endpoint"]
    if not isinstance(endpoint, str) or not ENDPOINT.fullmatch(endpoint):
        raise fail(f"{f}.endpoint", endpoint, "is not a PJSIP endpoint name")
    return Trunk(name=name, endpoint=endpoint,
                 caller_id=caller_id(f"{f}.caller_id", table["caller_id"], region),
                 allow=allow_prefixes(f"{f}.allow", table["allow"]),
                 ring_timeout=_get(table, "ring_timeout", Trunk.ring_timeout,
                                   lambda k, v: integer(k, v, 5, TRUNK_RING_TIMEOUT_MAX_S), f))


NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")  # also the node's Asterisk systemname
SIP_URI = re.compile(r"sips?:[A-Za-z0-9.\[\]:-]+(;[A-Za-z0-9=._-]+)*")
NODE_URLS = {"ari": ("http", "https"), "ami": ("ami",)}


def node(name: str, table: Mapping[str, object]) -> Node:
    f = f"nodes.{name}"
    if not NODE_NAME.fullmatch(name):
        raise fail("node", name, "is not a valid node name (lower-case letters, digits and '-', starting "
                                 "with a letter or digit, at most 32: it is the node's Asterisk systemname)")
    _take(table, f, {"ari", "ami", "sip"})
    for key, why in (("ari", "the node's ARI, like http://10.0.0.2:8088"),
                     ("ami", "the node's AMI, like ami://10.0.0.2:5038"),
                     ("sip", "where Kamailio sends the node its calls, like sip:10.0.0.2:5060")):
        if key not in table:
            raise fail(f"{f}.{key}", None, f"is required: {why}")
    return Node(name=name, ari=node_url(f"{f}.ari", table["ari"], NODE_URLS["ari"]),
                ami=node_url(f"{f}.ami", table["ami"], NODE_URLS["ami"]),
                sip=sip_uri(f"{f}.sip", table["sip"]))


def node_url(field: str, value: object, schemes: tuple[str, ...]) -> str:
    """scheme://host:port and nothing else: a secret has no place in provisioning (the settings'
    ari_url and ami_url carry the users every node shares)."""
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise fail(field, value, f"is not a URL like {schemes[0]}://host:port")
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        raise fail(field, _redacted(value), "carries a user or secret: give only scheme://host:port (the "
                                            "settings' ari_url/ami_url users log in to every node)")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in schemes or not parts.hostname or port is None or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise fail(field, value, f"is not a URL like {schemes[0]}://host:port")
    return f"{parts.scheme}://{parts.netloc}"


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"***@{parts.netloc.rpartition('@')[2]}").geturl()


def sip_uri(field: str, value: object) -> str:
    """sip:host[:port][;params], the node's address as Kamailio's dispatcher dials it."""
    if not isinstance(value, str) or not SIP_URI.fullmatch(value):
        raise fail(field, value, "is not a SIP URI like sip:10.0.0.2:5060 (no user part)")
    return value


def provisioning(doc: Mapping[str, object], region: str = "RU") -> Provisioning:
    """A parsed TOML document -> Provisioning (not yet cross-checked: see validate)."""
    _take(doc, "file", {*Provisioning.KINDS, "pause_reasons"})
    sections = {kind: _section(doc, kind) for kind in Provisioning.KINDS}
    numbers: dict[str, Number] = {}
    for key, table in sections["numbers"].items():
        n = number(key, table, region)
        if n.number in numbers:
            raise fail(f"numbers.{key}", key, f"is {n.number}, which is listed twice")
        numbers[n.number] = n
    return Provisioning(
        queues={n: queue(n, t) for n, t in sections["queues"].items()},
        menus={n: menu(n, t) for n, t in sections["menus"].items()},
        hotlines={n: hotline(n, t) for n, t in sections["hotlines"].items()},
        numbers=numbers,
        agents={n: agent(n, t) for n, t in sections["agents"].items()},
        trunks={n: trunk(n, t, region) for n, t in sections["trunks"].items()},
        nodes={n: node(n, t) for n, t in sections["nodes"].items()},
        pause_reasons=pause_reasons("pause_reasons", doc.get("pause_reasons", [])))


def pause_reasons(field: str, value: object) -> tuple[str, ...]:
    """The list of reasons an agent may pause for: each one line as `hotline agent pause` keeps it
    (hotline.store.agent_sessions.clean_reason), none twice."""
    if not isinstance(value, list | tuple):
        raise fail(field, value, 'must be a list of reasons, like ["lunch", "training"]')
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise fail(f"{field}[{i}]", item, "must be a text")
        try:
            reason = clean_reason(item)
        except AgentStateError as exc:
            raise fail(f"{field}[{i}]", item, str(exc)) from None
        if reason in out:
            raise fail(f"{field}[{i}]", item, "is listed twice")
        out.append(reason)
    return tuple(out)


def _section(doc: Mapping[str, object], kind: str) -> Mapping[str, Mapping[str, object]]:
    table = doc.get(kind, {})
    if not isinstance(table, Mapping) or not all(isinstance(v, Mapping) for v in table.values()):
        raise fail(kind, table, f"must be tables like [{kind}.NAME]")
    return table
