"""Who may ask what of the web pages, checked before a handler runs: a rate per client address,
the agent API's credentials (failures logged for fail2ban and throttled), JSON-only POSTs from
the pages' own origin, and the supervisor token of /api/queues."""

from __future__ import annotations

import base64
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from hotline.errors import ConfigError
from hotline.web.limits import Clock, LoginThrottle, RateLimiter
from hotline.web.said import refused

log = logging.getLogger(__name__)

JSON = "application/json"
# What an endpoint name may be in a log line; anything else is logged as "?" (a name sent by a
# stranger must not forge a second line, or hide the source from fail2ban).
_LOGGABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
UNAUTHENTICATED = "Log in with your endpoint and SIP password"
WRONG_LOGIN = "Wrong agent or password"


@dataclass(frozen=True)
class WebLimits:
    """Per client address: `burst` requests at once, then `rate_per_s`. Failed logins: after
    `source_failures` from one address, or `agent_failures` for one endpoint, within `window_s`,
    that address or endpoint gets 429 for `lockout_s` without its password being checked."""

    burst: int = 40
    rate_per_s: float = 10.0
    source_failures: int = 10
    agent_failures: int = 5
    window_s: float = 300.0
    lockout_s: float = 300.0


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as a browser sends it in `Origin` (default port left out)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"the pages' address must be http://HOST[:PORT] or https://...; got {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = "" if port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


def same_origin(header: str | None, allowed: str) -> bool:
    """Whether a request's `Origin` may POST: a browser always sends one with a POST from a
    script, so a missing header is a client that is not a browser (and cannot be a forgery)."""
    if header is None:
        return True
    try:
        return origin_of(header) == allowed
    except ConfigError:  # "null" (a sandboxed frame, a file) or garbage
        return False


def client_address(request: web.Request) -> str:
    # The peer: behind a reverse proxy that is the proxy, which then limits per client itself.
    return request.remote or "unknown"


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(endpoint, password) from an `Authorization: Basic` header; None when missing or malformed."""
    scheme, _, encoded = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # bad base64 (binascii.Error) or not UTF-8 (UnicodeDecodeError)
        return None
    endpoint, colon, password = decoded.partition(":")
    return (endpoint, password) if colon and endpoint and password else None


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def loggable(endpoint: str) -> str:
    return endpoint if _LOGGABLE.fullmatch(endpoint) else "?"


class Guard:
    """The checks, with the state they keep (buckets, failure counts) for one application."""

    def __init__(self, limits: WebLimits, origin: str, authenticate: Callable[[str, str], bool],
                 supervisor_token: str = "", *, clock: Clock = time.monotonic) -> None:
        self.origin = origin
        self.authenticate = authenticate
        self.supervisor_token = supervisor_token
        self.rate = RateLimiter(limits.burst, limits.rate_per_s, clock=clock)
        self.sources = LoginThrottle(limits.source_failures, limits.window_s, limits.lockout_s, clock=clock)
        self.agents = LoginThrottle(limits.agent_failures, limits.window_s, limits.lockout_s, clock=clock)

    def admit(self, request: web.Request) -> None:
        """WebRefusal 429 when the client's address has no request left until its bucket refills."""
        wait = self.rate.take(client_address(request))
        if wait:
            raise refused(429, "too_many_requests", retry_after_s=wait)

    def json_post(self, request: web.Request) -> None:
        """A POST to the API comes from the pages' own origin, as JSON (a form cannot send that
        without a CORS preflight, which this server never answers)."""
        if not same_origin(request.headers.get(hdrs.ORIGIN), self.origin):
            raise refused(403, "foreign_origin")
        if request.content_type != JSON:
            raise refused(415, "send_json", type=JSON)

    def agent(self, request: web.Request) -> str:
        """The endpoint of the agent whose credentials the request carries; WebRefusal 401 (no
        `WWW-Authenticate`: a browser would cache what it is given), or 429 while locked."""
        credentials = basic_credentials(request)
        if credentials is None:
            raise refused(401, "log_in")
        endpoint, password = credentials
        source = client_address(request)
        wait = max(self.sources.locked(source), self.agents.locked(endpoint))
        if wait:
            raise refused(429, "too_many_logins", retry_after_s=wait)
        if not self.authenticate(endpoint, password):
            self._failed(source, endpoint, request.path)
            raise refused(401, "wrong_login")
        self.agents.succeeded(endpoint)
        return endpoint

    def agent_or_supervisor(self, request: web.Request) -> None:
        """Passes with the supervisor token (`Authorization: Bearer ...`) or an agent's login."""
        token = bearer_token(request)
        if token is None:
            self.agent(request)
            return
        source = client_address(request)
        wait = self.sources.locked(source)
        if wait:
            raise refused(429, "too_many_logins", retry_after_s=wait)
        expected = self.supervisor_token or "\0"  # no token set: nothing matches, same time taken
        if not hmac.compare_digest(token.encode(), expected.encode()) or not self.supervisor_token:
            log.warning("supervisor token refused: source=%s api=%s", source, request.path)
            self.sources.failed(source)
            raise refused(401, "wrong_supervisor_token")

    def _failed(self, source: str, endpoint: str, api: str) -> None:
        # One greppable line per failure (README: the fail2ban filter matches it).
        log.warning("agent login failed: source=%s endpoint=%s api=%s", source, loggable(endpoint), api)
        if self.sources.failed(source):
            log.warning("agent logins from %s refused for %.0f s after repeated failures", source,
                        self.sources.lockout_s)
        if self.agents.failed(endpoint):
            log.warning("logins as agent endpoint %s refused for %.0f s after repeated failures",
                        loggable(endpoint), self.agents.lockout_s)
