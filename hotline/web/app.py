"""The pages the daemon serves: a customer's click-to-call, the phone-to-video switch link, the
agent's page, and two small JSON endpoints. The browsers talk SIP to Asterisk themselves (JsSIP
over a WebSocket: by default the relay at /ws, hotline.web.sip_ws_proxy); this application only
hands them the page and its settings. What a client may ask, and how often, is checked first
(hotline.web.guard)."""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import jinja2
from aiohttp import hdrs, web
from yarl import URL

from hotline.engine.customer_view import CustomerView
from hotline.engine.live_hub import Event, Subscription, sse_frame
from hotline.engine.supervision import MODES as SUPERVISE_MODES
from hotline.errors import ConfigError, HotlineError, WebRefusal
from hotline.provision.branding import logo_origin
from hotline.web import i18n
from hotline.web.guard import Guard, WebLimits, origin_of
from hotline.web.limits import retry_after
from hotline.web.said import PREFIX as SAID_TEXTS
from hotline.web.said import Said, body_of, refused
from hotline.web.sip_ws_proxy import SipWsProxy

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR / "templates"
BUNDLE = "jssip.min.js"
NOT_BUILT = ("The SIP client bundle is missing: reinstall hotline (the package ships it), "
             "or `make web` in a checkout")

# fullmatch, never match: `$` alone would let a trailing newline (an encoded %0A) through.
ADDRESS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")
# Exactly what hotline.store.switches gives out (32 random bytes in hex): anything else is
# refused before it costs a query.
TOKEN_RE = re.compile(r"[0-9a-f]{64}")
SWITCH_EXTENSION = "switch"
SWITCH_HEADER = "X-Hotline-Switch"
NODE_HEADER = "X-Hotline-Node"
SWITCH_API = "/api/agent/switch"
INVITE_API = "/api/agent/invite"
PHONE_API = "/api/agent/phone"
CUSTOMER_PHONE_API = "/api/customer/phone"
HEX_ID = re.compile(r"[0-9a-f]{16}")  # a browser's own customer id, as the page makes it
PHONE_TYPED = re.compile(r"[0-9+() .-]{0,32}")  # a number as people type it, or nothing
TRANSFER_API = "/api/agent/transfer"
TRANSFER_TARGETS_API = "/api/agent/transfer-targets"
TRANSFER_STEPS = ("begin", "complete", "cancel")
RECORDING_API = "/api/agent/recording"
RECORDING_ACTIONS = ("start", "pause", "resume")
# What a page may name as a transfer target: kind:name, a bare name, or a number as people type it.
TRANSFER_TARGET_RE = re.compile(r"^[A-Za-z0-9+][A-Za-z0-9._:+() -]{0,79}$")
QUEUES_API = "/api/queues"
TALKS_API = "/api/agent/talks"  # a supervisor's list of the live talks
SUPERVISE_API = "/api/agent/supervise"
CAMERA_API = "/api/call/camera"
HANGUP_API = "/api/call/hangup"
NOTICE_API = "/api/agent/notice"
NOTE_API = "/api/agent/note"  # a note on a case the agent handled
# -- the agent's desk (issue 19) --
PRESENCE_API = "/api/agent/presence"  # ready, pause for a reason, log off
PRESENCE_ACTIONS = ("ready", "pause", "logout")
DESK_EVENTS_API = "/api/agent/desk"  # the agent's presence and queues, Server-Sent Events
# A desk's picture is sent again this often without a change: a pause reason changed within a
# pause, or a wrap-up's countdown corrected.
DESK_REFRESH_S = 2.0
AGENT_TEXTS = "agent."  # the agent page's keys in the catalogues
CUSTOMER_TEXTS = "customer."  # the keys of the pages a customer sees
WALLBOARD_TEXTS = "wallboard."  # the wallboard's
AGENT_EVENTS_API = "/api/agent/events"  # the agent's screen pop, Server-Sent Events
CUSTOMER_EVENTS_API = "/api/customer/events"  # a customer page's own call: its stage, Server-Sent Events
RATING_API = "/api/customer/rating"  # a customer page's rating of its talk
# A customer page's stage is sent again this often without a change: its estimated wait shrinks.
CUSTOMER_REFRESH_S = 5.0
WALLBOARD_EVENTS_API = "/api/wallboard/events"  # the wallboard's picture, Server-Sent Events
# A comment line this often keeps an idle stream open through proxies, and finds a gone page.
KEEPALIVE_S = 15.0
# A wallboard's picture is sent again this often without a change: today's numbers are written
# behind the calls, a moment after the change that announced them.
WALLBOARD_REFRESH_S = 5.0
CUSTOMER_RE = re.compile(r"[0-9a-f]{16}")  # the page's own customer id (hotline-phone.js)
# The largest request body read: the API takes a few short JSON fields.
MAX_BODY = 16 * 1024
# How long a client is asked to wait when the database is away.
UNAVAILABLE_RETRY_S = 5.0

DEFAULT_LIMITS = WebLimits()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class WebConfig:
    sip_ws_url: str  # the pages' SIP WebSocket, e.g. "ws://127.0.0.1:8089/ws" (the relay)
    sip_domain: str  # the host part of the browsers' SIP URIs, e.g. "127.0.0.1"
    origin: str  # the pages' own origin, e.g. "https://video.example.ru": the only one that may POST
    customer_endpoint: str = "hotline-web"  # the PJSIP endpoint customers' calls come from
    supervisor_token: str = ""  # opens /api/queues besides an agent's login ("": agents only)


@dataclass(frozen=True)
class HotlinePage:
    """A hotline's customer page as provisioning gives it ("": the page's own)."""
    title: str = ""
    text: str = ""
    logo: str = ""  # an https URL
    color: str = ""  # #rrggbb
    language: str | None = None  # the hotline's language (None: the browser's)
    # A switch link's page with several nodes: the node of the case's bridge, sent as NODE_HEADER
    # for Kamailio to steer the video leg there (a hint: the token is still checked)
    node: str = ""


class SwitchCheck(enum.Enum):
    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


class WebBackend(Protocol):
    """What the pages need from the daemon."""

    def video_addresses(self) -> frozenset[str]:
        """The provisioned video hotline addresses."""
        ...

    def hotline_page(self, address: str) -> HotlinePage | None:
        """The look of the page of a provisioned video address (None: no such address)."""
        ...

    def customer_view(self, customer: str) -> CustomerView | None:
        """What the page of browser `customer` may see of its live call (None: it has none)."""
        ...

    def subscribe_customer(self) -> Subscription:
        """A wake-up each time something that can move a caller's place changes."""
        ...

    async def rate_call(self, customer: str, hop_id: int, score: object, comment: object) -> None:
        """Keep the page's rating of its talk on leg `hop_id`; raises WebRefusal."""
        ...

    async def check_switch_token(self, token: str) -> SwitchCheck:
        """What the token is; does not consume it (the customer's INVITE does). WebRefusal 503
        when the database is away."""
        ...

    async def switch_page(self, token: str) -> HotlinePage:
        """The look and language of a valid switch link's page: its case's hotline's; WebRefusal
        503 when the database is away."""
        ...

    def authenticate(self, endpoint: str, password: str) -> bool:
        """Whether these are an agent's endpoint and SIP password."""
        ...

    async def agent_switch(self, endpoint: str) -> str:
        """A switch link for the current call of the (authenticated) agent; raises WebRefusal."""
        ...

    def customer_camera(self, customer: str, video: bool) -> bool:
        """The customer's page turned its camera on or off: False when no call of theirs is live."""
        ...

    def customer_hanging_up(self, customer: str) -> bool:
        """The customer's page is hanging up with its button: False when no call of theirs is live."""
        ...

    def agent_notice(self, endpoint: str) -> Said | None:
        """A notice for the agent's page about their call (None: none)."""
        ...

    async def agent_invite(self, endpoint: str, invitee: str) -> Said:
        """Ring agent `invitee` into the agent's current call (a conference); what to show the
        agent; raises WebRefusal."""
        ...

    async def agent_phone(self, endpoint: str, typed: str) -> Said:
        """Move the agent's current video call to the customer's phone (`typed`, or "": the
        case's own number); what to show the agent; raises WebRefusal."""
        ...

    async def customer_phone(self, browser: str, token: str, typed: str) -> Said:
        """Move the video call of the customer whose page asks (its browser id, or the switch
        link's token it came by) to their phone; what to show them; raises WebRefusal."""
        ...

    def transfer_targets(self, endpoint: str) -> dict[str, list[str]]:
        """Where the (authenticated) agent may transfer a talk now: queues, hotlines, and the other
        agents free this moment."""
        ...

    async def agent_transfer(self, endpoint: str, target: str | None, *, attended: bool, step: str) -> Said:
        """Transfer the agent's current talk to `target` (blind, or attended), or complete or
        cancel the attended transfer under way; what to show the agent; raises WebRefusal."""
        ...

    async def agent_recording(self, endpoint: str, action: str) -> Said:
        """Start, pause or resume the recording of the agent's current talk; what to show the agent;
        raises WebRefusal."""
        ...

    def live_queues(self) -> list[dict[str, object]]:
        """The live queue state, JSON-able."""
        ...

    def live_talks(self, endpoint: str) -> list[dict[str, object]]:
        """The live talks for the (authenticated) agent's page: WebRefusal 403 unless their row
        says supervisor."""
        ...

    async def agent_note(self, endpoint: str, case_id: int, text: str) -> Said:
        """Keep `text` as the (authenticated) agent's note on case `case_id`, one they answered or
        joined; what to show the agent; raises WebRefusal (400 bad text, 403 not their case)."""
        ...

    async def agent_supervise(self, endpoint: str, case_id: int, mode: str) -> Said:
        """Ring the (authenticated) supervisor's own phone to listen to, whisper into or barge into
        case `case_id`'s talk; what to show once they are in; raises WebRefusal (403 for an agent
        who is no supervisor, 409 with the daemon's reason when refused)."""
        ...

    def subscribe_agent(self, endpoint: str) -> Subscription:
        """The (authenticated) agent's ring events; raises WebRefusal."""
        ...

    def subscribe_wallboard(self) -> Subscription:
        """An event each time the live queue picture changes."""
        ...

    def desk(self, endpoint: str) -> dict[str, object]:
        """The (authenticated) agent's desk now: presence, pause reasons, their queues' lines."""
        ...

    async def agent_presence(self, endpoint: str, action: str, reason: str) -> str:
        """Ready, pause (for `reason`) or log off the (authenticated) agent, as `hotline agent
        ...` does; the state after it; raises WebRefusal (409 with why it is refused)."""
        ...

    async def screen_pop(self, event: Event) -> Event:
        """A ring event with what the agent's page shows beside it (the case's history)."""
        ...

    async def wallboard(self) -> Event:
        """The wallboard's whole picture now."""
        ...


# What a customer is told for each token that is not VALID: (HTTP status, heading, advice).
# The texts are keys of the pages' catalogue (hotline/web/i18n), in the customer's language.
SWITCH_REFUSALS = {
    SwitchCheck.UNKNOWN: (404, "customer.refused.link_unknown", "customer.refused.link_unknown_advice"),
    SwitchCheck.EXPIRED: (410, "customer.refused.link_expired", "customer.refused.new_link"),
    SwitchCheck.USED: (410, "customer.refused.link_used", "customer.refused.new_link"),
}
# The heading of a page refused for a reason that is not the page's own.
REFUSAL_HEADINGS = {429: "refused.429", 500: "refused.500", 503: "refused.503"}  # catalogue keys


def make_app(config: WebConfig, backend: WebBackend, *, static_dir: Path = STATIC_DIR,
             limits: WebLimits = DEFAULT_LIMITS, sip_proxy: SipWsProxy | None = None) -> web.Application:
    """The application; `static_dir` and `limits` are for tests (no bundle, tighter limits);
    `sip_proxy` serves /ws."""
    bundle_built = (static_dir / BUNDLE).is_file()
    if not bundle_built:
        log.warning("%s (%s is missing); the video pages cannot place calls", NOT_BUILT, static_dir / BUNDLE)
    guard = Guard(limits, origin_of(config.origin), backend.authenticate, config.supervisor_token)
    site = _Site(config, backend, guard, bundle_built)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[site.guarded])
    app.on_response_prepare.append(_security_headers(content_security_policy(config.sip_ws_url)))
    app.router.add_get("/", site.index)
    app.router.add_get("/call/{address}", site.call)
    app.router.add_get("/switch/{token}", site.switch)
    app.router.add_get("/agent", site.agent)
    app.router.add_post(SWITCH_API, site.agent_switch)
    app.router.add_post(INVITE_API, site.agent_invite)
    app.router.add_post(PHONE_API, site.agent_phone)
    app.router.add_post(CUSTOMER_PHONE_API, site.customer_phone)
    app.router.add_post(TRANSFER_API, site.agent_transfer)
    app.router.add_post(TRANSFER_TARGETS_API, site.transfer_targets)
    app.router.add_post(RECORDING_API, site.agent_recording)
    app.router.add_get(QUEUES_API, site.queues)
    app.router.add_post(TALKS_API, site.live_talks)
    app.router.add_post(SUPERVISE_API, site.agent_supervise)
    app.router.add_post(CAMERA_API, site.customer_camera)
    app.router.add_post(HANGUP_API, site.customer_hanging_up)
    app.router.add_post(NOTICE_API, site.agent_notice)
    app.router.add_post(NOTE_API, site.agent_note)
    app.router.add_get(AGENT_EVENTS_API, site.agent_events)
    app.router.add_get(CUSTOMER_EVENTS_API, site.customer_events)
    app.router.add_post(RATING_API, site.rate_call)
    app.router.add_post(PRESENCE_API, site.agent_presence)
    app.router.add_get(DESK_EVENTS_API, site.desk_events)
    app.router.add_get("/wallboard", site.wallboard)
    app.router.add_get(WALLBOARD_EVENTS_API, site.wallboard_events)
    app.on_shutdown.append(site.end_streams)
    app.router.add_static("/static/", static_dir)
    if sip_proxy is not None:
        sip_proxy.install(app)
    return app


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    """The application listening on host:port (port 0: any free one, see runner.addresses)."""
    # No access log: the switch pages' URLs carry live tokens.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise HotlineError(f"the web pages cannot listen on {host}:{port}: {exc.strerror or exc} (set "
                           f"web_listen to a free host:port, or to empty to turn the pages off)") from exc
    return runner


def content_security_policy(sip_ws_url: str, image_origin: str = "") -> str:
    """Scripts from this server only; the one other place a page may connect to is the SIP
    WebSocket (this server's own relay, by default); images from here, or a hotline's logo's
    origin on its page."""
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data:{' ' + image_origin if image_origin else ''}",
        "media-src 'self' blob: mediastream:",
        f"connect-src 'self' {_ws_origin(sip_ws_url)}",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _ws_origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"the SIP WebSocket URL must be ws://HOST:PORT/PATH or wss://...; got {url!r}")
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _security_headers(csp: str) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """A response hook: every response, static files and errors included, gets these."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # A switch link's token must not leak to another site through the Referer header.
        response.headers.setdefault("Referrer-Policy", "no-referrer")

    return add


class _Site:
    """The request handlers, sharing the config, the backend, the guard and the templates."""

    def __init__(self, config: WebConfig, backend: WebBackend, guard: Guard, bundle_built: bool) -> None:
        self.config = config
        self.backend = backend
        self.guard = guard
        self.bundle_built = bundle_built
        self.streams: set[Subscription] = set()  # the open event streams, ended on shutdown
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
            undefined=jinja2.StrictUndefined)

    @web.middleware
    async def guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request: its client's rate first; a refusal from anywhere becomes a page (JSON on
        the API), and nothing unexpected shows a traceback."""
        try:
            self.guard.admit(request)
            return await handler(request)
        except WebRefusal as refusal:
            return self._refused(request, refusal)
        except web.HTTPException:
            raise  # aiohttp's own answers: 404 for an unknown path, 405, 413
        except Exception:
            log.exception("web request %s %s failed", request.method, request.path)
            return self._refused(request, refused(500, "not_served"))

    def _refused(self, request: web.Request, refusal: WebRefusal) -> web.Response:
        wait = refusal.retry_after_s
        if wait is None and refusal.status == 503:
            wait = UNAVAILABLE_RETRY_S
        headers = {str(hdrs.RETRY_AFTER): retry_after(wait)} if wait is not None else {}
        if request.path.startswith("/api/"):
            return _json(_refusal_body(refusal), refusal.status, headers)
        language = i18n.page_language(None, request.headers.get(hdrs.ACCEPT_LANGUAGE))
        advice = refusal.message
        if refusal.code:  # a page refused: said in the browser's language
            advice = i18n.text(language, SAID_TEXTS + refusal.code, **refusal.fields)
        heading_key = REFUSAL_HEADINGS.get(refusal.status)
        heading = i18n.text(language, heading_key) if heading_key else advice
        response = self._render("refusal.html", status=refusal.status, language=language, title=heading,
                                heading=heading, advice=advice)
        response.headers.update(headers)
        return response

    async def index(self, request: web.Request) -> web.Response:
        addresses = sorted(a for a in self.backend.video_addresses() if ADDRESS_RE.fullmatch(a))
        language = i18n.page_language(None, request.headers.get(hdrs.ACCEPT_LANGUAGE))
        return self._render("index.html", language=language, title=i18n.text(language, "index.heading"),
                            addresses=addresses)

    async def call(self, request: web.Request) -> web.Response:
        address = request.match_info["address"]
        page = self.backend.hotline_page(address) if ADDRESS_RE.fullmatch(address) else None
        if page is None:
            return self._customer_refusal(request, 404, "customer.refused.no_hotline",
                                          "customer.refused.check_address")
        return self._customer_page(request, page, address, [], heading_key="customer.title_default",
                                   label_key="customer.call_video", voice=True)

    async def switch(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        check = SwitchCheck.UNKNOWN
        if TOKEN_RE.fullmatch(token):
            check = await self.backend.check_switch_token(token)
        if check is SwitchCheck.VALID:
            page = await self.backend.switch_page(token)
            headers = [f"{SWITCH_HEADER}: {token}"] + ([f"{NODE_HEADER}: {page.node}"] if page.node else [])
            response = self._customer_page(request, page, SWITCH_EXTENSION, headers,
                                           heading_key="customer.switch_title",
                                           label_key="customer.join_video", token=token)
        else:
            response = self._customer_refusal(request, *SWITCH_REFUSALS[check])
        response.headers[hdrs.CACHE_CONTROL] = "no-store"  # one-time links: never from a cache
        return response

    async def agent(self, request: web.Request) -> web.Response:
        config = self._sip_config("agent") | {"switchApi": SWITCH_API, "inviteApi": INVITE_API,
                                              "phoneApi": PHONE_API,
                                              "transferApi": TRANSFER_API,
                                              "transferTargetsApi": TRANSFER_TARGETS_API,
                                              "recordingApi": RECORDING_API,
                                              "noticeApi": NOTICE_API, "noteApi": NOTE_API,
                                              "talksApi": TALKS_API, "superviseApi": SUPERVISE_API,
                                              "eventsApi": AGENT_EVENTS_API,
                                              "presenceApi": PRESENCE_API, "deskApi": DESK_EVENTS_API}
        # An agent serves several hotlines: the page speaks the browser's language.
        language = i18n.page_language(None, request.headers.get(hdrs.ACCEPT_LANGUAGE))
        texts = i18n.texts_of(language, (AGENT_TEXTS, SAID_TEXTS))
        return self._render("agent.html", title=texts["agent.title"], config=config, texts=texts,
                            language=language)

    async def agent_presence(self, request: web.Request) -> web.Response:
        """{"action": "ready" | "pause" | "logout", "reason": "..."}: the agent's presence."""
        self.guard.json_post(request)
        endpoint = self.guard.agent(request)
        fields = await _posted_object(request) or {}
        action, reason = fields.get("action"), fields.get("reason", "")
        if action not in PRESENCE_ACTIONS:
            return _refusal_json(400, "presence_bad_action")
        if not isinstance(reason, str) or (action == "pause" and not reason.strip()):
            return _refusal_json(400, "pause_needs_reason")
        state = await self.backend.agent_presence(endpoint, str(action), reason)
        return _json({"state": state}, 200)

    # The agent API: never a `WWW-Authenticate` challenge (a browser would cache the credentials it
    # is given and send them with any other site's request); the agent page sends them itself.
    async def agent_switch(self, request: web.Request) -> web.Response:
        self.guard.json_post(request)
        link = await self.backend.agent_switch(self.guard.agent(request))
        # A path becomes a whole URL on this server: the agent reads or sends it to the customer.
        return _json({"link": str(request.url.join(URL(link)))}, 200)

    async def agent_invite(self, request: web.Request) -> web.Response:
        self.guard.json_post(request)
        endpoint = self.guard.agent(request)
        body = await _posted_object(request)
        invitee = body.get("agent") if body is not None else None
        if not isinstance(invitee, str) or not ADDRESS_RE.fullmatch(invitee):
            return _refusal_json(400, "invite_bad_agent")
        return _json(body_of(await self.backend.agent_invite(endpoint, invitee)), 200)

    async def agent_phone(self, request: web.Request) -> web.Response:
        self.guard.json_post(request)
        endpoint = self.guard.agent(request)
        body = await _posted_object(request)
        typed = body.get("number", "") if body is not None else None
        if not isinstance(typed, str) or not PHONE_TYPED.fullmatch(typed):
            return _refusal_json(400, "phone_bad_number")
        return _json(body_of(await self.backend.agent_phone(endpoint, typed.strip())), 200)

    async def customer_phone(self, request: web.Request) -> web.Response:
        """The customer's own page: no login, so the call is found by what only that page holds
        (its browser id, or the switch link it came by), and only a live video talk moves."""
        self.guard.json_post(request)
        body = await _posted_object(request)
        fields = body or {}
        browser, token, typed = (fields.get(k, "") for k in ("customer", "token", "number"))
        if not (isinstance(browser, str) and HEX_ID.fullmatch(browser) and isinstance(token, str)
                and (not token or TOKEN_RE.fullmatch(token))):
            return _refusal_json(400, "customer_reload")
        if not isinstance(typed, str) or not PHONE_TYPED.fullmatch(typed):
            return _refusal_json(400, "customer_bad_number")
        return _json(body_of(await self.backend.customer_phone(browser, token, typed.strip())), 200)

    async def transfer_targets(self, request: web.Request) -> web.Response:
        self.guard.json_post(request)
        return _json({"targets": self.backend.transfer_targets(self.guard.agent(request))}, 200)

    async def agent_transfer(self, request: web.Request) -> web.Response:
        """{"target": T, "attended": bool} transfers the talk (attended: consult T first);
        {"step": "complete" | "cancel"} ends the attended transfer under way."""
        self.guard.json_post(request)
        endpoint = self.guard.agent(request)
        body = await _posted_object(request)
        if body is None:
            return _refusal_json(400, "transfer_no_target")
        step, target, attended = body.get("step", "begin"), body.get("target"), body.get("attended", False)
        if step not in TRANSFER_STEPS or not isinstance(attended, bool):
            return _refusal_json(400, "transfer_bad_step")
        if step == "begin" and not (isinstance(target, str) and TRANSFER_TARGET_RE.fullmatch(target)):
            return _refusal_json(400, "transfer_bad_target")
        named = target if isinstance(target, str) and step == "begin" else None
        said = await self.backend.agent_transfer(endpoint, named, attended=attended or step != "begin",
                                                 step=step)
        return _json(body_of(said), 200)

    async def agent_recording(self, request: web.Request) -> web.Response:
        """{"action": "start" | "pause" | "resume"}: the recording of the agent's talk."""
        self.guard.json_post(request)
        endpoint = self.guard.agent(request)
        body = await _posted_object(request)
        action = body.get("action") if body is not None else None
        if action not in RECORDING_ACTIONS:
            return _refusal_json(400, "recording_bad_action")
        return _json(body_of(await self.backend.agent_recording(endpoint, str(action))), 200)

    async def live_talks(self, request: web.Request) -> web.Response:
        self.guard.json_post(request)
        return _json({"talks": self.backend.live_talks(self.guard.agent(request))}, 200)

    async def agent_supervise(self, request: web.Request) -> web.Response:
        """{"case": N, "mode": "listen" | "whisper" | "barge"}: ring the supervisor's phone into
        that talk; answered once they are in (or why not)."""
        self.guard.json_post(request)
        endpoint = self.guard.agent(request)
        body = await _posted_object(request)
        fields = body or {}
        case_id, mode = fields.get("case"), fields.get("mode")
        if not _case_number(case_id):
            return _refusal_json(400, "supervise_no_case")
        assert isinstance(case_id, int)
        if mode not in SUPERVISE_MODES:
            return _refusal_json(400, "supervise_bad_mode")
        return _json(body_of(await self.backend.agent_supervise(endpoint, case_id, str(mode))), 200)

    async def agent_note(self, request: web.Request) -> web.Response:
        """{"case": N, "text": "..."}: a note on case N, one the agent answered or joined."""
        self.guard.json_post(request)
        endpoint = self.guard.agent(request)
        fields = await _posted_object(request) or {}
        case_id, text = fields.get("case"), fields.get("text")
        if not _case_number(case_id):
            return _refusal_json(400, "note_no_case")
        if not isinstance(text, str):
            return _refusal_json(400, "note_no_text")
        assert isinstance(case_id, int)
        return _json(body_of(await self.backend.agent_note(endpoint, case_id, text)), 200)

    async def customer_camera(self, request: web.Request) -> web.Response:
        """A customer's page says its camera went on or off. No login (a customer has none): the
        page's own customer id names the call, and only that customer's record and bridge follow."""
        body = await self._customer_post(request)
        customer = body.get("customer")
        camera = body.get("camera")
        if not (isinstance(customer, str) and CUSTOMER_RE.fullmatch(customer) and camera in ("on", "off")):
            return _refusal_json(400, "customer_send_camera")
        if not self.backend.customer_camera(customer, camera == "on"):
            return _refusal_json(404, "no_call")
        return _json({"camera": camera}, 202)

    async def customer_hanging_up(self, request: web.Request) -> web.Response:
        """A customer's page says its Hang up was pressed (its BYE follows): the end of the talk,
        not a dropped leg the agent should wait for. The page's own customer id names the call."""
        customer = (await self._customer_post(request)).get("customer")
        if not (isinstance(customer, str) and CUSTOMER_RE.fullmatch(customer)):
            return _refusal_json(400, "customer_send_id")
        if not self.backend.customer_hanging_up(customer):
            return _refusal_json(404, "no_call")
        return _json({"hanging_up": True}, 202)

    async def _customer_post(self, request: web.Request) -> dict[str, object]:
        self.guard.json_post(request)
        return await _posted_object(request) or {}

    async def agent_notice(self, request: web.Request) -> web.Response:
        self.guard.json_post(request)
        notice = self.backend.agent_notice(self.guard.agent(request))
        if notice is None or isinstance(notice, str):  # a backend of plain texts: "" is no notice
            return _json({"notice": notice or ""}, 200)
        return _json({"notice": notice.message, "code": notice.code, "fields": dict(notice.fields)}, 200)

    async def queues(self, request: web.Request) -> web.Response:
        self.guard.agent_or_supervisor(request)
        return _json(self.backend.live_queues(), 200)

    async def wallboard(self, request: web.Request) -> web.Response:
        """The page only: its numbers come by WALLBOARD_EVENTS_API once it has a token or a login."""
        language = i18n.page_language(None, request.headers.get(hdrs.ACCEPT_LANGUAGE))
        texts = i18n.texts_of(language, (WALLBOARD_TEXTS, SAID_TEXTS))
        return self._render("wallboard.html", language=language, title=texts["wallboard.title"], texts=texts,
                            config={"role": "wallboard", "eventsApi": WALLBOARD_EVENTS_API})

    # -- the live streams (Server-Sent Events): one subscription of the hub per open page --------

    async def agent_events(self, request: web.Request) -> web.StreamResponse:
        subscription = self.backend.subscribe_agent(self.guard.agent(request))
        return await self._stream(request, subscription, self._screen_pops(subscription))

    async def desk_events(self, request: web.Request) -> web.StreamResponse:
        endpoint = self.guard.agent(request)
        subscription = self.backend.subscribe_wallboard()
        return await self._stream(request, subscription, self._desks(endpoint, subscription))

    async def _desks(self, endpoint: str, subscription: Subscription) -> AsyncIterator[bytes]:
        """The agent's desk at once, then on each change of the live picture (the publisher's
        tick: presence, wrap-up, lines) and every DESK_REFRESH_S."""
        yield sse_frame("hello", {"stream": "desk"})
        while not subscription.closed:
            try:
                desk = self.backend.desk(endpoint)
            except WebRefusal:  # the agent was removed since: the stream ends, the page stops
                return
            yield sse_frame("desk", desk)
            await subscription.get(DESK_REFRESH_S)
            subscription.events.clear()

    async def wallboard_events(self, request: web.Request) -> web.StreamResponse:
        self.guard.agent_or_supervisor(request)
        subscription = self.backend.subscribe_wallboard()
        return await self._stream(request, subscription, self._pictures(subscription))

    async def customer_events(self, request: web.Request) -> web.StreamResponse:
        """The live stage of the asking page's own call, named by its browser id."""
        customer = request.query.get("customer", "")
        if not CUSTOMER_RE.fullmatch(customer):
            return _refusal_json(400, "customer_send_id")
        subscription = self.backend.subscribe_customer()
        return await self._stream(request, subscription, self._stages(customer, subscription))

    async def _stages(self, customer: str, subscription: Subscription) -> AsyncIterator[bytes]:
        """A `stage` event when the call's view changes: {"stage": "none"} before its INVITE
        arrives and after it ended, then connecting, waiting (place, estimate), talking (agent)."""
        last: dict[str, object] | None = None
        while not subscription.closed:
            view = self.backend.customer_view(customer)
            shown: dict[str, object] = view.as_json() if view is not None else {"stage": "none"}
            yield sse_frame("stage", shown) if shown != last else b": keepalive\n\n"
            last = shown
            await subscription.get(CUSTOMER_REFRESH_S)
            subscription.events.clear()  # changes piled up meanwhile: one look shows them all

    async def rate_call(self, request: web.Request) -> web.Response:
        """{"customer": ID, "hop": N, "score": 1-5, "comment": "..."}: the page's rating of its talk."""
        fields = await self._customer_post(request)
        customer, hop = fields.get("customer"), fields.get("hop")
        if not (isinstance(customer, str) and CUSTOMER_RE.fullmatch(customer)) or not _case_number(hop):
            return _refusal_json(400, "rating_send_leg")
        assert isinstance(hop, int)
        await self.backend.rate_call(customer, hop, fields.get("score"), fields.get("comment"))
        return _json({"rated": True}, 201)

    async def _screen_pops(self, subscription: Subscription) -> AsyncIterator[bytes]:
        yield sse_frame("hello", {"stream": "screenpop"})  # the page knows it is listening
        while (event := await subscription.get(KEEPALIVE_S)) is not None or not subscription.closed:
            yield b": keepalive\n\n" if event is None else sse_frame("screenpop",
                                                                     await self.backend.screen_pop(event))

    async def _pictures(self, subscription: Subscription) -> AsyncIterator[bytes]:
        while not subscription.closed:
            yield sse_frame("wallboard", await self.backend.wallboard())
            await subscription.get(WALLBOARD_REFRESH_S)
            subscription.events.clear()  # changes piled up meanwhile: one picture shows them all

    async def _stream(self, request: web.Request, subscription: Subscription,
                      frames: AsyncIterator[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "text/event-stream",
                                               hdrs.CACHE_CONTROL: "no-store", "X-Accel-Buffering": "no"})
        self.streams.add(subscription)
        try:
            await response.prepare(request)
            async for frame in frames:
                await response.write(frame)
        except (ConnectionError, RuntimeError) as exc:  # the page went (a reset, a closed transport)
            log.debug("event stream %s ended: %s", request.path, exc)
        finally:
            self.streams.discard(subscription)
            subscription.close()
        return response

    async def end_streams(self, app: web.Application) -> None:
        """The application shuts down: every stream ends now instead of holding the stop."""
        for subscription in list(self.streams):
            subscription.close()

    def _customer_page(self, request: web.Request, page: HotlinePage, target: str, headers: list[str], *,
                       heading_key: str, label_key: str, token: str = "",
                       voice: bool = False) -> web.Response:
        """The call page in its hotline's look and language; with `voice`, a second button calls
        with the microphone only."""
        language = i18n.page_language(page.language, request.headers.get(hdrs.ACCEPT_LANGUAGE))
        config = self._sip_config("customer") | {
            "endpoint": self.config.customer_endpoint, "target": target, "extraHeaders": headers,
            "phoneApi": CUSTOMER_PHONE_API, "switchToken": token,
            "cameraApi": CAMERA_API, "hangupApi": HANGUP_API,
            "eventsApi": CUSTOMER_EVENTS_API, "ratingApi": RATING_API, "accentColor": page.color}
        heading = page.title or i18n.text(language, heading_key)
        response = self._render("customer.html", language=language, title=heading, heading=heading,
                                page=page, call_label=i18n.text(language, label_key), voice=voice,
                                config=config)
        if page.logo:  # its logo's origin, on this page only
            response.headers["Content-Security-Policy"] = content_security_policy(
                self.config.sip_ws_url, logo_origin(page.logo))
        return response

    def _sip_config(self, role: str) -> dict[str, object]:
        return {"role": role, "wsUrl": self.config.sip_ws_url, "domain": self.config.sip_domain}

    def _customer_refusal(self, request: web.Request, status: int, heading_key: str,
                          advice_key: str) -> web.Response:
        """A customer's page refused, in the browser's language."""
        language = i18n.page_language(None, request.headers.get(hdrs.ACCEPT_LANGUAGE))
        heading = i18n.text(language, heading_key)
        return self._render("refusal.html", status=status, language=language, title=heading,
                            heading=heading, advice=i18n.text(language, advice_key))

    def _render(self, name: str, *, status: int = 200, language: str = i18n.FALLBACK,
                **context: object) -> web.Response:
        """A page in `language`: templates say `_("key")`, scripts `T("key")` (hotline-texts)."""
        def say(key: str, **fields: object) -> str:
            return i18n.text(language, key, **fields)

        # The scripts' texts: the customer's (the agent page passes its own); never the whole catalogue.
        context.setdefault("texts", i18n.texts_of(language, (CUSTOMER_TEXTS, SAID_TEXTS)))
        html = self.templates.get_template(name).render(
            bundle_built=self.bundle_built, not_built=NOT_BUILT, _=say, lang=language, **context)
        return web.Response(text=html, status=status, content_type="text/html")


def _refusal_body(refusal: WebRefusal) -> dict[str, object]:
    """A refusal's JSON: `error` in English as ever, and its code for the page's own language."""
    if not refusal.code:
        return {"error": refusal.message}
    return {"error": refusal.message, "code": refusal.code, "fields": refusal.fields}


def _refusal_json(status: int, code: str) -> web.Response:
    return _json(_refusal_body(refused(status, code)), status)


def _case_number(value: object) -> bool:
    """Whether a posted value is a case's id (bool is an int to Python: true is no case number)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


async def _posted_object(request: web.Request) -> dict[str, object] | None:
    """The request's JSON body when it is an object; None when it is not JSON or not an object."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _json(body: object, status: int, headers: dict[str, str] | None = None) -> web.Response:
    # Live state and one-time links alike: nothing here is for a cache.
    return web.json_response(body, status=status, headers={hdrs.CACHE_CONTROL: "no-store", **(headers or {})})
