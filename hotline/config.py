"""Settings: defaults < TOML file < HOTLINE_* environment < CLI options, in one frozen dataclass."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from hotline.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("/etc/hotline/hotline.toml")


@dataclass(frozen=True)
class DeliveryTiming:
    poll_s: float = 1.0          # how often an idle deliverer looks for new events
    timeout_s: float = 10.0      # one POST, connect to last byte
    retry_first_s: float = 2.0   # the first retry's wait; each next one doubles it
    retry_max_s: float = 600.0   # the longest wait between two tries
    attempts: int = 20           # tries before a delivery is recorded as failed
    batch: int = 50              # lines served per round

    @property
    def lease_s(self) -> float:
        """A claim outlives its POST by a margin: only a dead daemon's claim runs out."""
        return self.timeout_s * 2 + 30


@dataclass(frozen=True)
class Endpoint:
    """host, port and credentials parsed from an AMI or ARI URL."""

    scheme: str
    host: str
    port: int
    user: str
    secret: str

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class WebLimits:
    """What the customers' web endpoint allows one caller (Settings.web_*, checked)."""

    calls_per_source: int
    new_calls_per_minute: int
    rtp_timeout_s: int
    rtp_timeout_hold_s: int


@dataclass(frozen=True)
class SipWsLimits:
    """The daemon's SIP WebSocket relay: what one client, and everyone together, may hold."""

    per_client: int = 16
    new_per_minute: int = 30
    total: int = 250
    silent_s: float = 30.0


@dataclass(frozen=True)
class Settings:
    dsn: str = ""
    ami_url: str = ""
    ari_url: str = ""
    ari_app: str = "hotline"
    asterisk_conf_dir: str = "/etc/asterisk"
    node: str = dataclasses.field(default_factory=socket.gethostname)
    default_region: str = "RU"
    # What `hotline run` logs, when -v/-vv do not say (they win).
    log_level: str = "INFO"
    # "per_call": each call subscribes to its own channel. "all": one ARI subscription to every
    # channel per connect, a REST call fewer per call, but Asterisk then serialises the events of
    # every other call too (1.3 ms of its CPU per call of a Queue() beside us on the bench).
    ari_channel_subscription: str = "per_call"
    # "uvloop": libuv's event loop (the daemon's CPU per call a tenth lower on the bench);
    # "asyncio": the standard library's, to rule uvloop out when chasing a problem.
    event_loop: str = "uvloop"
    # PostgreSQL's synchronous_commit for the daemon's sessions (hops, queue events, live state).
    # "off": a commit does not wait for its WAL flush, which took a sixth off PostgreSQL's CPU per
    # call on the bench and the flush off the caller's path; a crash of the database's host (not
    # of PostgreSQL alone) can lose the last 0.6 s of records, never consistency. "on" waits.
    synchronous_commit: str = "off"
    # The daemon's web pages (customer video calls, the switch link, the agent page): host:port to
    # listen on ("" turns them off), and the address customers reach them at, for the links it
    # sends (default: http:// + web_listen; behind a TLS proxy, its https address).
    web_listen: str = "127.0.0.1:8089"
    web_url: str = ""
    # Opens /api/queues (the live queues, JSON) to a wallboard or a script, sent as
    # `Authorization: Bearer TOKEN`; agents open it with their own login. "": agents only.
    supervisor_token: str = dataclasses.field(default="", repr=False)
    # Where browsers reach the SIP WebSocket (default: the daemon's own /ws under web_url, which
    # relays to Asterisk's on loopback, so Asterisk's HTTP server, and ARI with it, stays private).
    sip_ws_url: str = ""
    # Kamailio in front of several Asterisk nodes (README, "Deployment: several nodes behind Kamailio"):
    # host[:port] (5060) where this node's calls come from and where its agents are reached.
    # `hotline apply` then renders an endpoint for it and agents' AORs pointing at it. "": one
    # node, agents register with Asterisk (today's behaviour).
    sip_proxy: str = ""
    # Several nodes: a node whose ARI the daemon cannot reach for this long is taken for lost:
    # its calls end with that cause, its open hops close and its waiting callers leave the line.
    node_lost_after: str = "120"
    # The daemon's /ws relay: WebSockets open at once per client address, new ones per client
    # address per minute, open at once in all (well below http.conf's sessionlimit, which ARI
    # shares), and how long a new socket may stay silent before it is closed.
    sip_ws_per_client: str = "16"
    sip_ws_new_per_minute: str = "30"
    sip_ws_total: str = "250"
    sip_ws_silent: str = "30"
    # Peers whose X-Forwarded-For names the client (a TLS proxy in front of the web port).
    web_trusted_proxies: str = "127.0.0.1,::1"
    # The switch to video: how long a link is valid, how it reaches the customer (a command run
    # with HOTLINE_SWITCH_LINK, HOTLINE_CALLER, HOTLINE_CASE, HOTLINE_EXPIRES in its environment,
    # e.g. an SMS gateway's client; and/or a webhook that gets the same as JSON in a POST), and the
    # key a caller presses during the talk to ask for it ("" : callers cannot).
    switch_link_ttl: str = "300"
    switch_link_command: str = ""
    switch_link_webhook: str = ""
    switch_key: str = "*"
    # Against SMS pumping by the key: a caller's repeat press while the leg's link is valid and
    # younger than the cooldown sends nothing; a case is sent at most switch_links_per_case links.
    switch_link_cooldown: str = "60"
    switch_links_per_case: str = "3"
    # A customer who calls again within this many seconds after their last contact ended continues
    # that case (its next hop), and is offered first to the agent who last talked with them, if
    # free. "0": every call opens a case of its own.
    continue_case_within: str = "900"
    # A callback being placed is held in PostgreSQL under a lease this long, renewed while its
    # daemon places it: a daemon that dies with one (SIGKILL, the machine gone) leaves it to be
    # placed afresh by the next daemon, or a standby, once the lease runs out.
    callback_lease: str = "30"
    # Contact events to webhooks (`hotline webhook add`): how often an idle daemon looks for new
    # events (seconds), how long one POST may take, the first retry's wait (doubled at each next
    # try, at most webhook_retry_max), and how many tries before a delivery is recorded as failed.
    webhook_poll: str = "1"
    webhook_timeout: str = "10"
    webhook_retry_first: str = "2"
    webhook_retry_max: str = "600"
    webhook_attempts: str = "20"
    # Days contact events are kept: the daemon deletes older ones once an hour (and `hotline events
    # purge` on demand), never one a webhook has still to deliver ("0": kept for ever). Statistics
    # and case timelines read their own rows, not these.
    event_retention: str = "90"
    # Where the write-behind keeps records past its memory bound or an outage longer than its
    # patience, until the database takes them (one subdirectory per node and database); "": no
    # spool, and such records are dropped, each loss logged.
    spool_dir: str = "/var/spool/hotline"
    # The customers' web endpoint, as `hotline apply` renders it (anyone may call it, so what one
    # caller may hold is bounded): calls one source may have up at once and may start per minute
    # (a source is one SIP WebSocket connection: behind the daemon's proxy every browser is
    # 127.0.0.1 with a port of its own), refused with 486 and a NOTICE naming the source in
    # Asterisk's log; and seconds without RTP (on hold: web_rtp_timeout_hold) before Asterisk
    # hangs a web call up, so a call that never sends media cannot wait in a queue for ever.
    web_calls_per_source: str = "2"
    web_new_calls_per_minute: str = "6"
    web_rtp_timeout: str = "30"
    web_rtp_timeout_hold: str = "300"
    # A customer's web leg that drops while talking (network gone, tab closed; not the page's
    # Hang up) keeps its agent in the bridge this many seconds for the same page to come back
    # into the same talk; "0": the talk ends at once, as a hang-up.
    web_rejoin_grace: str = "60"
    # GET /health for a load balancer (hotline.health) and GET /metrics for Prometheus
    # (hotline.metrics): host:port to listen on ("": off).
    health_listen: str = "127.0.0.1:8091"
    # "text": one readable line per log record; "json": one JSON object per line (time, level,
    # logger, message, and case_id/hop_id when the record is about a call), for a log shipper.
    log_format: str = "text"
    # Call recording (a queue's `record = "always"`, hotline.engine.recording): the format Asterisk
    # writes (wav: 8 kHz 16-bit mono, 57.6 MB an hour; wav16: 16 kHz, twice that; gsm: about
    # 5.9 MB an hour), and the directory where its files are, as this machine sees Asterisk's
    # recording directory (astspooldir/recording); `hotline recording path|export|purge` read it.
    recording_format: str = "wav"
    recording_dir: str = "/var/spool/asterisk/recording"
    # Asterisk's sounds directory (astdatadir/sounds) as Asterisk sees it, and the directory its
    # paths are under as this machine sees them ("": /; the lab's: its Debian root, a chroot whose
    # symlinks are absolute inside it): `hotline apply` and `hotline doctor` check that every
    # prompt exists in each language callers hear (Language, README).
    asterisk_sounds_dir: str = "/usr/share/asterisk/sounds"
    asterisk_root: str = ""
    # Days a recording is kept: `hotline recording purge` without --older-than deletes the files
    # of recordings that ended longer ago ("0": no retention set, --older-than is then required).
    recording_retention: str = "0"
    # A directory the daemon moves each finished recording into, under a subdirectory per day
    # (YYYY/MM/DD, of the talk's start in UTC), its row's path updated in the same step; it must be
    # on the machine that runs Asterisk (hotline runs next to it) and the daemon's user must be
    # able to write there and in recording_dir. "": the files stay where Asterisk wrote them.
    recording_move_to: str = ""

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} must be one of {', '.join(allowed)}")

        for checked in ("switch_link_ttl_s", "switch_link_cooldown_s", "switch_links_per_case_n",
                        "continue_case_within_s", "callback_lease_s", "node_lost_after_s",
                        "web_rejoin_grace_s", "web_limits",
                        "webhook_timing", "recording_retention_days", "event_retention_days",
                        "web_address", "health_address", "sip_ws_limits", "trusted_proxies"):
            getattr(self, checked)  # checked now, not at the first call that needs it
        self._check_public_web()
        if self.supervisor_token and (len(self.supervisor_token) < MIN_TOKEN_LENGTH
                                      or not self.supervisor_token.isprintable()
                                      or any(c.isspace() for c in self.supervisor_token)):
            raise ConfigError(f"supervisor_token must be at least {MIN_TOKEN_LENGTH} characters without "
                              f"blanks (e.g. `openssl rand -hex 24`)")
        if self.recording_move_to and not self.recording_move_to.startswith("/"):
            raise ConfigError(f"recording_move_to={self.recording_move_to!r} must be an absolute directory "
                              f"(or empty: the files stay in recording_dir)")
        if self.switch_key not in ("", *"0123456789*#"):
            raise ConfigError(f"switch_key={self.switch_key!r} must be one key (0-9, * or #) or empty")

    @property
    def recording_retention_days(self) -> int | None:
        return self._whole("recording_retention", 0, 36500, "0 (none)", unit="days") or None

    @property
    def event_retention_days(self) -> int | None:
        return self._whole("event_retention", 0, 36500, "0 (kept for ever)", unit="days") or None

    @property
    def web_rejoin_grace_s(self) -> int:
        return self._whole("web_rejoin_grace", 0, 3600, "0 (off)")

    @property
    def callback_lease_s(self) -> int:
        return self._whole("callback_lease", 3, 600)

    @property
    def node_lost_after_s(self) -> int:
        return self._whole("node_lost_after", 5, 86400)

    @property
    def webhook_timing(self) -> DeliveryTiming:
        first = self._seconds("webhook_retry_first", 0.05, 3600)
        return DeliveryTiming(poll_s=self._seconds("webhook_poll", 0.05, 60),
                              timeout_s=self._seconds("webhook_timeout", 0.5, 120),
                              retry_first_s=first,
                              retry_max_s=max(first, self._seconds("webhook_retry_max", 0.05, 86400)),
                              attempts=self._whole("webhook_attempts", 1, 100, unit="tries"))

    def _seconds(self, name: str, low: float, high: float) -> float:
        """Setting `name` as seconds (fractions allowed) from `low` to `high`; ConfigError otherwise."""
        value = getattr(self, name)
        try:
            number = float(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise ConfigError(f"{name}={value!r} must be seconds from {low:g} to {high:g}")
        return number

    @property
    def continue_case_within_s(self) -> int | None:
        return self._whole("continue_case_within", 0, 30 * 86400, "0 (off)") or None

    @property
    def web_limits(self) -> WebLimits:
        return WebLimits(
            calls_per_source=self._whole("web_calls_per_source", 1, 100, unit="calls"),
            new_calls_per_minute=self._whole("web_new_calls_per_minute", 1, 1000, unit="calls"),
            rtp_timeout_s=self._whole("web_rtp_timeout", 1, 3600),
            rtp_timeout_hold_s=self._whole("web_rtp_timeout_hold", 1, 86400))

    @property
    def switch_link_ttl_s(self) -> int:
        return self._whole("switch_link_ttl", 10, 86400)

    @property
    def switch_link_cooldown_s(self) -> int:
        return self._whole("switch_link_cooldown", 10, 86400)

    @property
    def switch_links_per_case_n(self) -> int:
        return self._whole("switch_links_per_case", 1, 100, unit="links")

    @property
    def sip_ws_limits(self) -> SipWsLimits:
        return SipWsLimits(per_client=self._whole("sip_ws_per_client", 1, 10000, unit="WebSockets"),
                           new_per_minute=self._whole("sip_ws_new_per_minute", 1, 10000, unit="WebSockets"),
                           total=self._whole("sip_ws_total", 1, 100000, unit="WebSockets"),
                           silent_s=self._whole("sip_ws_silent", 1, 3600))

    @property
    def trusted_proxies(self) -> frozenset[str]:
        """The addresses in web_trusted_proxies, normalised (ConfigError on one that is not)."""
        out = set()
        for item in filter(None, (part.strip() for part in self.web_trusted_proxies.split(","))):
            try:
                out.add(str(ipaddress.ip_address(item)))
            except ValueError:
                raise ConfigError(f"web_trusted_proxies: {item!r} is not an IP address") from None
        return frozenset(out)

    def _whole(self, name: str, low: int, high: int, low_means: str = "", unit: str = "seconds") -> int:
        """Setting `name` as a whole number (of `unit`) from `low` to `high`; ConfigError naming
        it otherwise."""
        value = getattr(self, name)
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise ConfigError(f"{name}={value!r} must be {unit} from {low_means or low} to {high}")
        return number

    def _check_public_web(self) -> None:
        """Pages served beyond loopback are for customers' browsers, which give a camera only to
        an https page: web_url must say where that is (the links, and the SIP WebSocket, derive
        from it; 0.0.0.0 is no address to send a customer)."""
        address = self.web_address
        if address is None or is_loopback(address[0]):
            return
        if urlsplit(self.web_url).scheme != "https":
            raise ConfigError(f"web_listen={self.web_listen!r} serves the pages beyond this machine: set "
                              f"web_url to the https:// address customers reach them at (a TLS proxy "
                              f"in front of the web port); got web_url={self.web_url!r}")

    @property
    def web_address(self) -> tuple[str, int] | None:
        """(host, port) of the web pages, None when they are off."""
        return self._address("web_listen")

    @property
    def health_address(self) -> tuple[str, int] | None:
        """(host, port) of the health endpoint, None when it is off."""
        return self._address("health_listen")

    def _address(self, name: str) -> tuple[str, int] | None:
        value = getattr(self, name)
        if not value:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name}={value!r} must be host:port")
        return host, int(port)

    @property
    def web_base_url(self) -> str:
        return (self.web_url or f"http://{self.web_listen}").rstrip("/")

    @property
    def sip_websocket_url(self) -> str:
        """Where the pages' SIP client connects: sip_ws_url, or the daemon's own relay (/ws under
        web_url, ws:// or wss:// to match)."""
        if self.sip_ws_url:
            return self.sip_ws_url
        base = self.web_base_url
        return ("wss" if base.startswith("https:") else "ws") + base[base.index(":"):] + "/ws"

    @property
    def sip_proxy_address(self) -> tuple[str, int] | None:
        """(host, port) of sip_proxy, None when there is none; ConfigError on anything but an IP
        address or host name with an optional port."""
        if not self.sip_proxy:
            return None
        match = _PROXY.fullmatch(self.sip_proxy)
        port = int(match["port"] or 5060) if match else 0
        if match is None or not 0 < port < 65536:
            raise ConfigError(f"sip_proxy={self.sip_proxy!r} must be host or host:port (Kamailio's "
                              "address as the nodes reach it)")
        return match["host"], port

    @property
    def asterisk_ws_url(self) -> str:
        """Asterisk's own SIP WebSocket, on the HTTP server of ARI (the relay's upstream)."""
        ari = self.ari
        return f"{'wss' if ari.scheme == 'https' else 'ws'}://{ari.host}:{ari.port}/ws"

    @property
    def ami(self) -> Endpoint:
        return parse_endpoint("ami_url", self.ami_url, ("ami",), default_port=5038)

    @property
    def ari(self) -> Endpoint:
        return parse_endpoint("ari_url", self.ari_url, ("http", "https"), default_port=8088)

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first of `names` that is empty."""
        for name in names:
            if not getattr(self, name):
                raise ConfigError(
                    f"{name} is not set: set HOTLINE_{name.upper()} "
                    f"(for the lab: eval \"$(hotline lab env)\")"
                )


_PROXY = re.compile(r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?)(?::(?P<port>\d{1,5}))?")


def is_loopback(host: str) -> bool:
    """Whether `host` (of web_listen) is this machine only: a loopback address or localhost."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: whatever it resolves to


CHANNEL_SUBSCRIPTIONS = ("per_call", "all")
EVENT_LOOPS = ("uvloop", "asyncio")
SYNCHRONOUS_COMMITS = ("off", "local", "remote_write", "on", "remote_apply")  # PostgreSQL's values
RECORDING_FORMATS = ("wav", "wav16", "gsm")  # Asterisk formats; the file is NAME.FORMAT
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Settings that take one of a few values.
CHOICES = {"ari_channel_subscription": CHANNEL_SUBSCRIPTIONS, "event_loop": EVENT_LOOPS,
           "synchronous_commit": SYNCHRONOUS_COMMITS, "log_format": LOG_FORMATS,
           "log_level": LOG_LEVELS, "recording_format": RECORDING_FORMATS}

# The shortest supervisor_token taken: it is all that guards /api/queues from anyone.
MIN_TOKEN_LENGTH = 16

# Each field of Settings may come from HOTLINE_<FIELD> in the environment.
ENV_PREFIX = "HOTLINE_"


def parse_endpoint(name: str, url: str, schemes: tuple[str, ...], default_port: int) -> Endpoint:
    if not url:
        raise ConfigError(f"{name} is not set: set HOTLINE_{name.upper()}")
    try:
        parts = urlsplit(url)
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigError(f"{name}={_redact(url)!s} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(f"{name}={_redact(url)} must start with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname or parts.username is None or parts.password is None:
        raise ConfigError(f"{name}={_redact(url)} must be {schemes[0]}://user:secret@host:port")
    return Endpoint(parts.scheme, parts.hostname, port, unquote(parts.username), unquote(parts.password))


def refuse_secrets_on_command_line(cli: Mapping[str, str | None]) -> None:
    """Every user of the machine reads a process's command line (`ps`): a password given there
    is refused, with where to put it instead."""
    dsn = cli.get("dsn")
    if dsn and _dsn_password(dsn):
        raise ConfigError("--dsn carries a password, which any user sees in `ps`: give it in "
                          "HOTLINE_DSN, as dsn in the TOML file, or in a PGPASSFILE (~/.pgpass)")
    for name in ("ami_url", "ari_url"):
        if cli.get(name):
            raise ConfigError(f"--{name.replace('_', '-')} is not taken on the command line (its secret "
                              f"would show in `ps`): set HOTLINE_{name.upper()} or {name} in the TOML file")


def _dsn_password(dsn: str) -> bool:
    """Does the DSN (a URL or key=value conninfo) hold a password? Unparsable: assume it may."""
    try:
        return bool(psycopg.conninfo.conninfo_to_dict(dsn).get("password"))
    except psycopg.ProgrammingError:
        return "password" in dsn.lower() or "@" in dsn


def _redact(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return MASK if "@" in url else url  # unparsable: a password may be in it
    if password is None:
        return url
    return url.replace(f":{password}@", f":{MASK}@", 1)


def load_settings(
    cli: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build Settings from the four layers; later layers win, None/empty CLI values are ignored."""
    return Settings(**{name: value for name, (value, _) in layered(cli, environ, config_file).items()})


def layered(
    cli: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> dict[str, tuple[str, str]]:
    """Each setting given by a layer above the defaults: name -> (value, where it came from:
    "file PATH", "environment HOTLINE_X" or "option --x"). ConfigError on an unknown name."""
    environ = os.environ if environ is None else environ
    path = _config_path(environ, config_file)
    values = {k: (v, f"file {path}") for k, v in _from_file(path).items()}
    values.update({k: (v, f"environment {ENV_PREFIX}{k.upper()}") for k, v in _from_env(environ).items()})
    values.update({k: (v, f"option --{k.replace('_', '-')}")
                   for k, v in (cli or {}).items() if v})  # None or empty: not given
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return values


@dataclass(frozen=True)
class Effective:
    """One setting as `hotline config show` prints it: its value, secrets masked, and its source."""

    name: str
    value: str
    source: str


def effective(cli: Mapping[str, str | None] | None = None, environ: Mapping[str, str] | None = None,
              config_file: Path | None = None) -> list[Effective]:
    """Every setting in Settings' order, with the value in effect (masked) and where it came from."""
    given = layered(cli, environ, config_file)
    out = []
    for f in fields(Settings):
        value, source = given.get(f.name) or (default_of(f.name), "default")
        out.append(Effective(f.name, mask(f.name, value), source))
    return out


def default_of(name: str) -> str:
    """Setting `name`'s default (node's: this machine's host name)."""
    f = next(f for f in fields(Settings) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return str(f.default)
    factory: Callable[[], object] = f.default_factory  # type: ignore[assignment]  # one or the other
    return str(factory())


# Settings whose whole value is a secret; URLs (and a DSN) are shown with their password masked.
SECRET_SETTINGS = frozenset({"supervisor_token"})
MASK = "***"
_CONNINFO_PASSWORD = re.compile(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def mask(name: str, value: str) -> str:
    """`value` of setting `name` fit to print: a secret setting as ***, a password inside a URL
    or a key=value DSN as ***."""
    if not value:
        return value
    if name in SECRET_SETTINGS:
        return MASK
    if name == "dsn" and "://" not in value:  # key=value conninfo; a quoted value may hold blanks
        return _CONNINFO_PASSWORD.sub(f"password={MASK}", value)
    return _redact(value)


def _config_path(environ: Mapping[str, str], explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if environ.get("HOTLINE_CONFIG"):
        return Path(environ["HOTLINE_CONFIG"])
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _from_file(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    # Accept both a flat file and one with a [hotline] table.
    table = data.get("hotline", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [hotline] must be a table")
    for key, value in table.items():
        if not isinstance(value, str):
            raise ConfigError(f"config file {path}: {key} must be a string, got {value!r}")
    return dict(table)


def _from_env(environ: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for f in fields(Settings):
        value = environ.get(ENV_PREFIX + f.name.upper())
        if value:
            out[f.name] = value
    return out
