"""The provisioning model: what a contact centre is made of, as plain frozen values.

One `Provisioning` is the whole desired (or current) state. The declarative file, the CLI verbs,
the database and the renderer all speak it; `plan.diff` compares two of them.
References between objects are by name (`Target("queue", "support")`), as an engineer writes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, time

STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear")
# Where a caller an agent transferred to another agent goes when that agent does not answer: the
# head of the line of the queue the talk was in, or the transferring agent rung back first.
TRANSFER_NO_ANSWER = ("queue", "agent")
RECORD = ("never", "always", "on_demand")  # talks recorded (hotline.engine.recording)
# A queue's `record` unset (None): its talks follow the hotline the caller came through.
INHERIT = "inherit"
NUMBER_KINDS = ("city", "tollfree", "video")
CAPABILITIES = ("audio", "video", "webrtc")
# Defaults that bound what one anonymous caller can hold: a queue's longest wait (seconds), and the
# lines of a number by kind (None: unlimited; an 8-800 number's capacity is the carrier's trunk,
# a video address's is Asterisk's CPU, about twice an audio call's).
DEFAULT_MAX_WAIT = 900
DEFAULT_LINES: dict[str, int | None] = {"city": 1, "tollfree": None, "video": 10}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO order: mon = 1
# A caller's priority in a queue, like app_queue's QUEUE_PRIO: higher is served first, equal
# priority longest-waiting first. A number gives every caller one (default 0); a region route
# or a menu key may set another (None: keep what the caller had); the most specific wins.
PRIORITY_MIN, PRIORITY_MAX = 0, 10
# Menu keys that may set a priority: those that lead on to where a caller may wait.
PRIORITY_ACTIONS = ("menu", "queue", "hotline", "video")  # video:QUEUE waits in QUEUE


class TargetAction(enum.StrEnum):
    """What a target does with a call (a Target's `action`)."""

    MENU = "menu"
    QUEUE = "queue"
    HOTLINE = "hotline"
    HANGUP = "hangup"
    VIDEO = "video"
    REPEAT = "repeat"
    CALLBACK = "callback"
    LANGUAGE = "language"


# What each kind of reference may point at, per place it is used.
ENTRY_ACTIONS = ("menu", "queue")
OVERFLOW_ACTIONS = ("hangup", "queue", "hotline", "menu")
CLOSED_ACTIONS = ("hangup", "hotline", "callback")
OPTION_ACTIONS = ("menu", "queue", "hotline", "hangup", "video", "repeat", "callback", "language")
# Where a `language:LANG` key may lead on to (none: the same menu again, in the new language).
THEN_ACTIONS = ("menu", "queue", "hotline", "hangup", "video", "callback")
# Actions that name another object; the rest stand alone. `video:QUEUE` (a menu key) names the
# queue the caller waits in while the video link is on its way; `callback:QUEUE` (a menu key, a
# closed action) the queue whose line the callback request joins.
NAMED_ACTIONS = ("menu", "queue", "hotline", "video", "callback")
# Actions whose name is a queue's.
QUEUE_ACTIONS = ("queue", "video", "callback")
# A language of Asterisk's sounds: the directory its prompts are in (sounds/ru, sounds/en_GB).
LANGUAGE_TAG = r"^[a-z]{2,3}(_[A-Z]{2})?$"


@dataclass(frozen=True, order=True)
class Target:
    """Where a call goes: `queue:support`, `menu:main`, `hotline:backup`, `hangup`, ..."""

    action: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.action}:{self.name}" if self.name else self.action

    @property
    def kind(self) -> str:
        """The section its name is looked up in: `queues` for `queue:`, `video:` and `callback:`
        (`language:` names a language, no section: `names_object` is False)."""
        return "queues" if self.action in QUEUE_ACTIONS else f"{self.action}s"

    @property
    def names_object(self) -> bool:
        """Whether its name is a provisioned object's (`language:en` names a language)."""
        return self.name is not None and self.action != TargetAction.LANGUAGE


@dataclass(frozen=True, order=True)
class OpeningHours:
    weekday: int  # ISO: 1 = Monday
    opens: time
    closes: time  # time(0, 0) never; midnight closing is time.max-ish, stored as 24:00 (see parse)


@dataclass(frozen=True, order=True)
class Holiday:
    day: date
    opens: time | None = None  # None: closed all day
    closes: time | None = None
    note: str = ""


@dataclass(frozen=True, order=True)
class RegionRoute:
    match_kind: str  # prefix | region
    match: str
    queue: str
    priority: int | None = None  # None: the number's stands


@dataclass(frozen=True)
class Queue:
    name: str
    strategy: str = "ringall"
    ring_timeout: int = 15
    retry: int = 5
    wrapup: int = 0
    # A caller waits at most this long, then overflows (None: for ever, which a caller who never
    # hangs up, or a call without media, would take literally).
    max_wait: int | None = DEFAULT_MAX_WAIT
    max_len: int | None = None
    join_empty: bool = True
    announce_period: int | None = None
    music: str = "default"
    service_level: int = 20
    prefer_video_agents: bool = False
    overflow: Target = Target("hangup")
    announce_holdtime: bool = False  # with each position announcement
    breakout_menu: str | None = None  # a waiting caller pressing one of its keys leaves for its target
    # A caller whose agent is rung at once hears ringing, not answered yet, for at most this many
    # seconds; then it is answered with music while the agent rings on. 0: answered with music
    # the moment it joins.
    ringback: int = 3
    # With prefer_video_agents: a video caller rings only video-capable agents for this many
    # seconds of waiting, then every agent, video-capable first. None: never falls back.
    video_fallback: int | None = 30
    # A waiting caller pressing this key is sent a link to go on waiting by video, in the same
    # place in line (announced with the position); None: not offered.
    video_key: str | None = None
    # A caller transferred to one agent who does not answer: first in this queue's line ("queue"),
    # or the transferring agent rung back first, then first in line ("agent").
    transfer_no_answer: str = "queue"
    # A waiting caller pressing this key asks to be called back instead of waiting (None: the
    # queue offers no callbacks); not answered, a callback is tried again `callback_retries`
    # times, `callback_retry_interval` seconds apart, and dropped once `callback_expiry` seconds
    # old (None: never).
    callback_key: str | None = None
    callback_retries: int = 2
    callback_retry_interval: int = 300
    callback_expiry: int | None = 4 * 3600
    # "always": every talk of this queue is recorded, from the agent's answer to its end
    # (hotline.engine.recording); "on_demand": a talk is recorded once its agent asks
    # (`hotline recording start`, the agent page), from then to its end; "never": none is.
    # None: the hotline's `record` (the hotline the caller came through, or was sent to).
    record: str | None = None
    # A sound played to the caller before the first queue of the call that records (always or
    # on_demand): "this call may be recorded"; it wins over the hotline's. None: the hotline's.
    record_announcement: str | None = None
    # The post-call survey: when the agent hangs up, the caller hears these questions (one or
    # two sounds), each answered with a key 1-5, then `survey_thanks` (None: no thanks), and the
    # call ends (hotline.engine.queueing.survey). (): no survey.
    survey: tuple[str, ...] = ()
    survey_thanks: str | None = None


@dataclass(frozen=True)
class MenuOption:
    digit: str
    target: Target
    prompt: str | None = None
    priority: int | None = None  # None: the caller keeps the priority it had
    # A `language:LANG` key: where the caller goes next, in the new language (None: this menu
    # again). Any other key: None.
    then: Target | None = None

    @property
    def leads_to(self) -> Target:
        """Where the key takes the caller (a language key: its next step, or its own menu again)."""
        if self.target.action == TargetAction.LANGUAGE:
            return self.then or Target(TargetAction.REPEAT)
        return self.target


@dataclass(frozen=True)
class Menu:
    name: str
    prompt: str
    timeout: int = 5
    retries: int = 3
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None
    options: tuple[MenuOption, ...] = ()  # sorted by digit


@dataclass(frozen=True)
class Hotline:
    name: str
    entry: Target
    description: str = ""
    time_zone: str = "Europe/Moscow"
    hours: tuple[OpeningHours, ...] = ()  # empty: always open
    holidays: tuple[Holiday, ...] = ()
    closed: Target = Target("hangup")
    closed_prompt: str | None = None
    regions: tuple[RegionRoute, ...] = ()
    # The `record` of its queues that set none (a queue's own value wins), and the announcement
    # played before the first queue of a call that records, unless that queue has its own.
    record: str = "never"
    record_announcement: str | None = None
    # Its customer page (hotline.provision.branding): the name shown, a short text, an https logo
    # URL, an accent colour #rrggbb; None: the page's own.
    page_title: str | None = None
    page_text: str | None = None
    page_logo: str | None = None
    page_color: str | None = None
    # The language its callers hear prompts in (a directory of Asterisk's sounds: 'ru', 'en');
    # None: Asterisk's default language. A number may set its own.
    language: str | None = None


@dataclass(frozen=True)
class Number:
    number: str  # E.164 for city and tollfree, a SIP/WebRTC address for video
    hotline: str
    kind: str = "city"
    lines: int | None = 1  # None: unlimited
    priority: int = 0  # every caller of the number starts with it (PRIORITY_MIN..PRIORITY_MAX)
    language: str | None = None  # None: its hotline's


@dataclass(frozen=True)
class Agent:
    name: str
    endpoint: str
    display_name: str = ""
    # The SIP password's HA1 (hotline.provision.sip_auth), never the password itself. None in a
    # file: keep what the database has (or generate a password).
    password_ha1: str | None = None
    capabilities: frozenset[str] = frozenset({"audio"})
    queues: tuple[tuple[str, int], ...] = ()  # (queue, penalty), sorted by queue
    supervisor: bool = False  # may listen to, whisper into and barge into talks (engine.supervision)


TRUNK_RING_TIMEOUT_MAX_S = 300  # the longest a trunk may let a number ring (provisioning refuses more)


@dataclass(frozen=True)
class Trunk:
    """An outbound trunk: the PJSIP endpoint calls to outside numbers go through (a site's own,
    in pjsip_local.conf, with the carrier's address and credentials), the E.164 prefixes a number
    must start with to be dialled there (nothing else ever is: toll fraud), and the number
    presented as caller id (one of the hotlines' provisioned numbers), and how long a number
    dialled through it rings before it counts as not answered."""

    name: str
    endpoint: str
    caller_id: str  # E.164
    allow: tuple[str, ...]  # E.164 prefixes like '+7495', sorted, at least one
    ring_timeout: int = 30  # s; a mobile often forwards to voicemail at 20-30 s


@dataclass(frozen=True)
class Node:
    """An Asterisk node the one active daemon serves (several behind Kamailio). Its ARI and AMI
    addresses carry no secret (the settings' ari_url and ami_url users log in to every node, as
    `hotline apply` renders them alike); `sip` is where Kamailio sends the node its calls."""

    name: str
    ari: str  # http://host:port
    ami: str  # ami://host:port
    sip: str  # sip:host:port


@dataclass(frozen=True)
class Provisioning:
    """The whole contact centre. Keys are the objects' names (numbers: their E.164 or address)."""

    queues: dict[str, Queue] = field(default_factory=dict)
    menus: dict[str, Menu] = field(default_factory=dict)
    hotlines: dict[str, Hotline] = field(default_factory=dict)
    numbers: dict[str, Number] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    trunks: dict[str, Trunk] = field(default_factory=dict)
    # No node: the one Asterisk of the settings (ari_url, ami_url), as before nodes existed.
    nodes: dict[str, Node] = field(default_factory=dict)
    # The reasons an agent may pause for, in the order the agent's page offers them; () allows any
    # reason.
    pause_reasons: tuple[str, ...] = ()

    KINDS = ("queues", "menus", "hotlines", "numbers", "agents", "trunks", "nodes")

    def section(self, kind: str) -> dict[str, object]:
        return getattr(self, kind)  # type: ignore[no-any-return]
