"""Settings: defaults < TOML file < HOTLINE_* environment < CLI options, in one frozen dataclass."""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hotline.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("/etc/hotline/hotline.toml")


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
class Settings:
    dsn: str = ""
    ami_url: str = ""
    ari_url: str = ""
    ari_app: str = "hotline"
    asterisk_conf_dir: str = "/etc/asterisk"
    node: str = dataclasses.field(default_factory=socket.gethostname)
    default_region: str = "RU"
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
    # Where browsers reach Asterisk's SIP WebSocket (default: ws:// on the ARI host and port + /ws).
    sip_ws_url: str = ""
    # The switch to video: how long a link is valid, how it reaches the customer (a command run
    # with HOTLINE_SWITCH_LINK, HOTLINE_CALLER, HOTLINE_CASE, HOTLINE_EXPIRES in its environment,
    # e.g. an SMS gateway's client; and/or a webhook that gets the same as JSON in a POST), and the
    # key a caller presses during the talk to ask for it ("" : callers cannot).
    switch_link_ttl: str = "300"
    switch_link_command: str = ""
    switch_link_webhook: str = ""
    switch_key: str = "*"
    # A customer who calls again within this many seconds after their last contact ended continues
    # that case (its next hop), and is offered first to the agent who last talked with them, if
    # free. "0": every call opens a case of its own.
    continue_case_within: str = "900"

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} must be one of {', '.join(allowed)}")

        self.switch_link_ttl_s  # noqa: B018 (checked now, not at the first switch)
        self.continue_case_within_s  # noqa: B018
        self.web_address  # noqa: B018
        if self.supervisor_token and (len(self.supervisor_token) < MIN_TOKEN_LENGTH
                                      or not self.supervisor_token.isprintable()
                                      or any(c.isspace() for c in self.supervisor_token)):
            raise ConfigError(f"supervisor_token must be at least {MIN_TOKEN_LENGTH} characters without "
                              f"blanks (e.g. `openssl rand -hex 24`)")
        if self.switch_key not in ("", *"0123456789*#"):
            raise ConfigError(f"switch_key={self.switch_key!r} must be one key (0-9, * or #) or empty")

    @property
    def continue_case_within_s(self) -> int | None:
        return self._seconds("continue_case_within", 0, 30 * 86400, "0 (off)") or None

    @property
    def switch_link_ttl_s(self) -> int:
        return self._seconds("switch_link_ttl", 10, 86400)

    def _seconds(self, name: str, low: int, high: int, low_means: str = "") -> int:
        """Setting `name` as whole seconds from `low` to `high`; ConfigError naming it otherwise."""
        value = getattr(self, name)
        try:
            seconds = int(value)
        except ValueError:
            seconds = low - 1
        if not low <= seconds <= high:
            raise ConfigError(f"{name}={value!r} must be seconds from {low_means or low} to {high}")
        return seconds

    @property
    def web_address(self) -> tuple[str, int] | None:
        """(host, port) of the web pages, None when they are off."""
        if not self.web_listen:
            return None
        host, _, port = self.web_listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"web_listen={self.web_listen!r} must be host:port")
        return host, int(port)

    @property
    def web_base_url(self) -> str:
        return (self.web_url or f"http://{self.web_listen}").rstrip("/")

    @property
    def sip_websocket_url(self) -> str:
        if self.sip_ws_url:
            return self.sip_ws_url
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


CHANNEL_SUBSCRIPTIONS = ("per_call", "all")
EVENT_LOOPS = ("uvloop", "asyncio")
SYNCHRONOUS_COMMITS = ("off", "local", "remote_write", "on", "remote_apply")  # PostgreSQL's values
CHOICES = {"ari_channel_subscription": CHANNEL_SUBSCRIPTIONS, "event_loop": EVENT_LOOPS,
           "synchronous_commit": SYNCHRONOUS_COMMITS}  # settings that take one of a few values

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


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def load_settings(
    cli: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build Settings from the four layers; later layers win, None/empty CLI values are ignored."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    values.update(_from_file(_config_path(environ, config_file)))
    values.update(_from_env(environ))
    values.update({k: v for k, v in (cli or {}).items() if v})  # None or empty: not given
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return Settings(**values)


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
