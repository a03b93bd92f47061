"""What the daemon's web pages ask of it (hotline.web.app.WebBackend), answered from the
provisioning snapshot, the switch tokens and the live queues. Its database work goes through a
small pool of its own (the daemon's web_pool): a flood of page requests cannot take the
connections calls need, and a database outage is a 503 for the page, never an error page."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from hotline.asterisk.ari import AriClient
from hotline.config import Settings
from hotline.engine.conference import invite
from hotline.engine.directory import Directory
from hotline.engine.live import LivePublisher
from hotline.engine.live_hub import RINGING, WALLBOARD, Event, LiveHub, Subscription, agent_topic
from hotline.engine.phone_switch import ask_phone_switch, phone_number
from hotline.engine.recording import ask_recording
from hotline.engine.supervision import LiveTalk
from hotline.engine.supervision_request import SAYS, ask, look_in, outcome_said
from hotline.engine.transfer import AgentTarget, ask_transfer, transfer_target
from hotline.errors import (
    AgentStateError,
    AriError,
    NotAPhoneNumber,
    NoteRefused,
    PhoneSwitchRefused,
    RecordingError,
    SupervisionRefused,
    SwitchNotPossible,
    TransferRefused,
)
from hotline.provision import sip_auth
from hotline.provision.model import Agent
from hotline.store import agent_sessions, recordings
from hotline.store.case_notes import add_note, agent_handled, check_note, customer_notes
from hotline.store.contacts import Contacts
from hotline.store.db import STORE_DOWN
from hotline.store.hops import Hop
from hotline.store.screen_pop import earlier_cases, earlier_hops, queues_today, ringing_leg
from hotline.store.switches import Switches, TokenState, case_phone_number, customer_video_talk
from hotline.store.transfers import TRANSFER_PATIENCE_S, transfer_outcome
from hotline.web.app import SwitchCheck
from hotline.web.customer_pages import CustomerPages, CustomerViews
from hotline.web.said import Said, refused, said
from hotline.web.switch_links import SwitchLinks

log = logging.getLogger(__name__)

# What the agent's page says of each outcome of a transfer it asked for.
TRANSFER_SAID = {"transferred": "transferred", "consulting": "consulting", "cancelled": "transfer_cancelled"}

_CHECKS = {TokenState.VALID: SwitchCheck.VALID, TokenState.UNKNOWN: SwitchCheck.UNKNOWN,
           TokenState.EXPIRED: SwitchCheck.EXPIRED, TokenState.USED: SwitchCheck.USED}


def supervisor_of(agents: Mapping[str, Agent], endpoint: str) -> Agent:
    """The (authenticated) agent of `endpoint` when their row says supervisor: WebRefusal 403
    otherwise (401 when provisioning removed them since)."""
    agent = next((a for a in agents.values() if a.endpoint == endpoint), None)
    if agent is None:
        raise refused(401, "wrong_login")
    if not agent.supervisor:
        raise refused(403, "supervisors_only")
    return agent


# Tells the customer's live web call its camera turned on or off; False: no such call here.
CameraNews = Callable[[str, bool], bool]


class DaemonWebBackend(CustomerPages):
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, directory: Directory,
                 links: SwitchLinks, live: LivePublisher, ari: Callable[[str], AriClient],
                 camera_news: CameraNews = lambda customer, video: False,
                 hanging_up: Callable[[str], bool] = lambda customer: False,
                 dropped_for_agent: Callable[[str], bool] = lambda endpoint: False,
                 hub: LiveHub | None = None, talks: Callable[[], list[LiveTalk]] = list,
                 customer_views: CustomerViews = lambda customer: None) -> None:
        self.settings = settings
        self.hub = hub if hub is not None else live.hub  # the calls' ring news, the live changes
        self.pool = pool
        self.directory = directory
        self.links = links
        self.switches = Switches(pool)  # the token checks of the pages, on the pages' own pool
        self.live = live
        self.ari = ari  # the ARI client of the node a live channel is on (one per Asterisk node)
        self.contacts = Contacts(pool)
        self.camera_news = camera_news
        self.hanging_up = hanging_up
        self.dropped_for_agent = dropped_for_agent
        self.talks = talks  # the router's live talks, for supervisors' pages
        self.customer_views = customer_views  # a customer page's own call (engine.customer_view)
        self._talks_seen = {}

    def customer_camera(self, customer: str, video: bool) -> bool:
        return self.camera_news(customer, video)

    def customer_hanging_up(self, customer: str) -> bool:
        return self.hanging_up(customer)

    def agent_notice(self, endpoint: str) -> Said | None:
        """What the agent's page shows beside their call: None when all is well."""
        if not self.dropped_for_agent(endpoint):
            return None
        return said("customer_dropped", seconds=self.settings.web_rejoin_grace_s)

    def video_addresses(self) -> frozenset[str]:
        return frozenset(n.number for n in self.directory.snapshot.prov.numbers.values() if n.kind == "video")

    async def check_switch_token(self, token: str) -> SwitchCheck:
        try:
            return _CHECKS[await self.switches.check(token)]
        except STORE_DOWN as exc:
            raise refused(503, "link_retry") from exc

    def _agent_of(self, endpoint: str) -> Agent | None:
        agents = self.directory.snapshot.prov.agents.values()
        return next((a for a in agents if a.endpoint == endpoint), None)

    def authenticate(self, endpoint: str, password: str) -> bool:
        """Checked against the password's HA1 (the snapshot holds no password), even for an
        unknown endpoint, so the answer's time says nothing about which exist."""
        agent = self._agent_of(endpoint)
        return sip_auth.matches(endpoint, password, agent.password_ha1 if agent is not None else None)

    def _authenticated(self, endpoint: str) -> Agent:
        """The agent the guard authenticated (gone since, by a provisioning change: 401)."""
        agent = self._agent_of(endpoint)
        if agent is None:
            raise refused(401, "wrong_login")
        return agent

    async def agent_invite(self, endpoint: str, invitee: str) -> Said:
        """Ring `invitee` into the case the agent is talking on now."""
        agent = self._authenticated(endpoint)
        invited = self.directory.snapshot.prov.agents.get(invitee)
        if invited is None:
            raise refused(404, "invite_no_agent", agent=invitee)
        if invited.name == agent.name:
            raise refused(409, "invite_self")
        agent_id = self.directory.snapshot.ids.get("agents", {}).get(agent.name)
        try:
            talk = await self._live_talk_of(agent_id)
            if talk is None:
                raise refused(409, "invite_no_call")
            await invite(self.ari(talk.channel_id), self.settings.ari_app, talk.case_id, invited,
                         f"agent:{agent.name}")
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc
        except AriError as exc:
            raise refused(502, "invite_not_rung", agent=invitee, detail=str(exc)) from exc
        return said("invite_ringing", agent=invited.display_name or invited.name)

    def transfer_targets(self, endpoint: str) -> dict[str, list[str]]:
        agent = self._authenticated(endpoint)
        prov, queues = self.directory.snapshot.prov, self.live.queues
        now = queues.clock()
        free = sorted(name for name, state in queues.agents.items()
                      if name != agent.name and state.available(now))
        return {"queues": sorted(prov.queues), "hotlines": sorted(prov.hotlines), "agents": free}

    async def agent_transfer(self, endpoint: str, target: str | None, *, attended: bool, step: str) -> Said:
        """Ask the daemon that runs the agent's talk (this one, or another node) by the same user
        event the CLI sends, and wait for its row of transfers."""
        agent = self._authenticated(endpoint)
        agent_id = self.directory.snapshot.ids.get("agents", {}).get(agent.name)
        try:
            to = transfer_target(self.directory.snapshot.prov, target) if target is not None else None
            if attended and step == "begin" and not isinstance(to, AgentTarget):
                raise TransferRefused(f"an attended transfer goes to an agent, not to {to}")
            talk = await self._live_talk_of(agent_id)
            if talk is None:
                raise refused(409, "transfer_no_call")
            request = await ask_transfer(self.ari(talk.channel_id), self.settings.ari_app, talk.channel_id,
                                         to, "page", attended=attended, step=step)
            async with self.pool.connection() as conn:
                outcome = await transfer_outcome(conn, request, TRANSFER_PATIENCE_S)
        except TransferRefused as no:
            raise refused(409, "transfer_refused", reason=str(no)) from None
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc
        except AriError as exc:
            raise refused(502, "transfer_not_reached", detail=str(exc)) from exc
        if outcome is None:
            raise refused(504, "daemon_silent")
        if outcome.outcome == "refused":
            raise refused(409, "transfer_refused_by_daemon", reason=outcome.detail)
        return said(TRANSFER_SAID[outcome.outcome], target=outcome.target)

    async def agent_recording(self, endpoint: str, action: str) -> Said:
        """Ask the daemon that runs the agent's talk, by the user event the CLI sends, to start,
        pause or resume its recording, and wait until its rows say so."""
        agent = self._authenticated(endpoint)
        agent_id = self.directory.snapshot.ids.get("agents", {}).get(agent.name)
        try:
            talk = await self._live_talk_of(agent_id)
            if talk is None:
                raise refused(409, "no_call")
            async with self.pool.connection() as conn:
                if action == "start":
                    return await self._start_recording(conn, talk.case_id, agent.name)
                await self._pause_or_resume(conn, talk.case_id, action, agent.name)
        except RecordingError:
            raise refused(409, "recording_not_recorded") from None
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc
        except AriError as exc:
            raise refused(502, "not_reached", detail=str(exc)) from exc
        return said("recording_paused" if action == "pause" else "recording")

    def live_talks(self, endpoint: str) -> list[dict[str, object]]:
        """The talks this daemon runs now, for a supervisor's page (WebRefusal 403 for others)."""
        supervisor_of(self.directory.snapshot.prov.agents, endpoint)
        now = time.time()
        return [talk.json(now) for talk in self.talks()]

    async def agent_note(self, endpoint: str, case_id: int, text: str) -> Said:
        """A note by the agent on a case they answered (during the talk or after it) or joined."""
        agent = self._authenticated(endpoint)
        agent_id = self.directory.snapshot.ids.get("agents", {}).get(agent.name)
        try:
            kept = check_note(text)
            async with self.pool.connection() as conn:
                if agent_id is None or not await agent_handled(conn, case_id, agent_id):
                    raise refused(403, "note_not_yours", case=case_id)
                note = await add_note(conn, case_id, agent.name, kept, agent_id)
        except NoteRefused as no:
            raise refused(400, "note_refused", reason=str(no)) from None
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc
        return said("note_kept", case=note.case_id)

    async def agent_supervise(self, endpoint: str, case_id: int, mode: str) -> Said:
        """What `hotline case MODE CASE SUPERVISOR` asks, asked by `agent:NAME` for their own
        phone; waits, as the CLI does, until the supervisor is in or why not (a pool connection
        per look, none held while the phone rings)."""
        agent = supervisor_of(self.directory.snapshot.prov.agents, endpoint)
        try:
            async with self.pool.connection() as conn:
                request = await ask(conn, self.ari, self.settings.ari_app, case_id, mode, agent.name,
                                    f"agent:{agent.name}")
            outcome = await outcome_said(look_in(self.pool), request, case_id, mode, agent.name)
        except SupervisionRefused as no:
            raise refused(409, "supervise_refused", reason=str(no)) from None
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc
        except AriError as exc:
            raise refused(502, "not_reached", detail=str(exc)) from exc
        if outcome == SAYS[mode].format(case=case_id, who=agent.name):  # in: said in the page's language
            return said(f"supervise_{mode}", case=case_id, who=agent.name)
        return said("supervise_said", reason=outcome)

    async def _start_recording(self, conn: AsyncConnection, case_id: int, agent_name: str) -> Said:
        """The Record button: the talk of a queue that records on demand recorded from now."""
        channel_id, mode = await recordings.talking_leg(conn, case_id)
        if mode == "never":
            raise refused(409, "recording_queue_does_not_record")
        if await recordings.live_recording(conn, case_id) is None:
            await ask_recording(self.ari(channel_id), self.settings.ari_app, channel_id, "start",
                                f"agent:{agent_name}")
            await conn.commit()
            if await recordings.recording_begins(conn, case_id) is None:
                raise refused(504, "daemon_silent")
        return said("recording")

    async def _pause_or_resume(self, conn: AsyncConnection, case_id: int, action: str,
                               agent_name: str) -> None:
        wanted = "paused" if action == "pause" else "recording"
        live, channel_id = await recordings.live_talk_recording(conn, case_id)
        if live.state != wanted:
            await ask_recording(self.ari(channel_id), self.settings.ari_app, channel_id, action,
                                f"agent:{agent_name}")
            if not await recordings.state_becomes(conn, live.id, wanted):
                raise refused(504, "daemon_silent")

    async def agent_switch(self, endpoint: str) -> str:
        """A link for the call the agent with this endpoint is talking on now."""
        agent = self._authenticated(endpoint)
        agent_id = self.directory.snapshot.ids.get("agents", {}).get(agent.name)
        try:
            talk = await self._live_talk_of(agent_id)
            if talk is None:
                raise refused(409, "switch_no_call")
            switch = await self.links.request(talk.id, f"agent:{agent.name}")
        except SwitchNotPossible as exc:
            raise refused(409, "switch_refused", reason=str(exc)) from exc
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc
        return switch.link

    async def agent_phone(self, endpoint: str, typed: str) -> Said:
        """Move the agent's video call to the customer's phone: `typed`, or the number of the
        case's phone call; the daemon dials it (the video call goes on until it answers)."""
        agent = self._authenticated(endpoint)
        agent_id = self.directory.snapshot.ids.get("agents", {}).get(agent.name)
        try:
            talk = await self._live_talk_of(agent_id)
            if talk is None:
                raise refused(409, "phone_no_call")
            if talk.media != "video":
                raise refused(409, "phone_already")
            if not typed:
                async with self.pool.connection() as conn:
                    typed = await case_phone_number(conn, talk.case_id) or ""
                if not typed:
                    raise refused(422, "phone_no_number")
            number = phone_number(typed, self.directory.snapshot.prov.trunks.values(),
                                  self.settings.default_region)
            await ask_phone_switch(self.ari(talk.channel_id), self.settings.ari_app, talk.channel_id, number,
                                   f"agent:{agent.name}")
        except NotAPhoneNumber as exc:
            raise refused(422, "phone_not_a_number", number=typed) from exc
        except PhoneSwitchRefused as exc:
            raise refused(422, "phone_refused", reason=str(exc)) from exc
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc
        except AriError as exc:
            raise refused(502, "phone_not_asked", number=typed, detail=str(exc)) from exc
        return said("phone_calling", number=number)

    async def customer_phone(self, browser: str, token: str, typed: str) -> Said:
        """Move the asking customer's own video talk to their phone (`typed`, or the case's own
        number); counted with the case's switch links, since each may dial a paid call."""
        try:
            async with self.pool.connection() as conn:
                talk = await customer_video_talk(conn, browser=browser, token=token)
                if talk is None:
                    raise refused(409, "customer_no_video_call")
                cap = self.settings.switch_links_per_case_n
                if talk.switches >= cap:
                    raise refused(429, "customer_moved_too_often")
                if not typed:
                    typed = await case_phone_number(conn, talk.case_id) or ""
                if not typed:
                    raise refused(422, "customer_type_number")
            number = phone_number(typed, self.directory.snapshot.prov.trunks.values(),
                                  self.settings.default_region)
            await ask_phone_switch(self.ari(talk.channel_id), self.settings.ari_app, talk.channel_id, number,
                                   "customer")
        except NotAPhoneNumber as exc:
            raise refused(422, "customer_not_a_number", number=typed) from exc
        except PhoneSwitchRefused as exc:
            raise refused(422, "customer_number_refused", reason=str(exc)) from exc
        except STORE_DOWN as exc:
            raise refused(503, "service_down") from exc
        except AriError as exc:
            raise refused(502, "customer_not_moved") from exc
        return said("customer_calling", number=number)

    async def _live_talk_of(self, agent_id: int | None) -> Hop | None:
        return await self.contacts.live_talk_of_agent(agent_id) if agent_id is not None else None

    def live_queues(self) -> list[dict[str, object]]:
        return self.live.queues_json()

    def desk(self, endpoint: str) -> dict[str, object]:
        """The (authenticated) agent's desk: their presence, the reasons they may pause for, and
        the queues they serve with the callers waiting in each."""
        agent = self._authenticated(endpoint)
        serves = {queue for queue, _ in agent.queues}
        queues = [q for q in self.live.queues_json() if q["queue"] in serves]
        return {"agent": agent.name, "display_name": agent.display_name,
                "pause_reasons": list(self.directory.snapshot.prov.pause_reasons),
                **self.live.agent_desk(agent.name), "queues": queues,
                "now": datetime.now().astimezone().isoformat()}

    async def agent_presence(self, endpoint: str, action: str, reason: str) -> str:
        """Ready, pause (for `reason`) or log off, from the agent's desk: the very change `hotline
        agent login|unpause|pause|logout` makes (hotline.store.agent_sessions), which the daemon
        hears back by NOTIFY like the CLI's; the state the agent is in after it. One transaction:
        a pause refused leaves a logged-off agent logged off."""
        name = self._authenticated(endpoint).name
        try:
            async with self.pool.connection() as conn, conn.transaction():
                before = (await agent_sessions.states(conn)).get(name)
                logged_in = before is not None and before.logged_in_since is not None
                if action == "logout":
                    return (await agent_sessions.logout(conn, name)).after.state
                if not logged_in:
                    await agent_sessions.login(conn, name)
                if action == "pause":
                    return (await agent_sessions.pause(conn, name, reason)).after.state
                if before is not None and before.paused_since is not None:
                    await agent_sessions.unpause(conn, name)
                return "free"
        except AgentStateError as no:
            raise refused(409, "presence_refused", reason=str(no)) from None
        except STORE_DOWN as exc:
            raise refused(503, "store_down") from exc

    def subscribe_agent(self, endpoint: str) -> Subscription:
        """The (authenticated) agent's screen pop stream: the rings of their phone."""
        return self.hub.subscribe(agent_topic(self._authenticated(endpoint).name))

    def subscribe_wallboard(self) -> Subscription:
        return self.hub.subscribe(WALLBOARD)

    async def screen_pop(self, event: Event) -> Event:
        """A ring as the agent's page shows it: a ringing one with what was dialled, the hotline,
        the keys and the case's history; without them (and `history_error` saying why) when the
        database is away. Read on the pages' pool, in the page's own task, never the call's."""
        hop = event.get("hop")
        if event.get("state") != RINGING or not isinstance(hop, int):
            return event
        try:
            async with self.pool.connection() as conn:
                leg = await ringing_leg(conn, hop)
                if leg is None:
                    return event
                hops = await earlier_hops(conn, leg["case_id"], hop)
                cases = await earlier_cases(conn, leg["customer_key"], leg["case_id"])
                notes = await customer_notes(conn, leg["case_id"], leg["customer_key"])
        except STORE_DOWN:
            return event | {"history_error": "The database is unavailable: no history for now"}
        return event | {"dialled": leg["dialled_e164"] or leg["dialled"], "hotline": leg["hotline"],
                        "keys": event.get("keys") or leg["keys"], "media": leg["media"], "seq": leg["seq"],
                        "customer": leg["customer_key"], "earlier_hops": hops, "earlier_cases": cases,
                        "notes": [asdict(n) for n in notes]}

    async def wallboard(self) -> Event:
        """Queues (live counts and today's), agents by state, and the server's clock (the page
        advances the longest wait from it)."""
        now = datetime.now().astimezone()
        today: dict[str, dict[str, object]] | None
        try:
            async with self.pool.connection() as conn:
                today = await queues_today(conn, now.replace(hour=0, minute=0, second=0, microsecond=0), now)
        except STORE_DOWN:
            today = None  # the live part goes on; the page says today's numbers are unknown
        queues = [q | {"today": (today or {}).get(str(q["queue"]), {}) if today is not None else None}
                  for q in self.live.queues_json()]
        return {"now": now.isoformat(), "queues": queues, "agents": self.live.agents_json()}
