"""The composition root: builds store, AMI, ARI and engine, runs them, shuts them down in order."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from hotline.asterisk.ami import AmiSession
from hotline.asterisk.ami_events import DeviceStateChange, FullyBooted
from hotline.asterisk.ari import AriClient
from hotline.asterisk.ari_events import EndpointState
from hotline.asterisk.nodes import NodeAddress, node_addresses
from hotline.cancellation import cancel_and_wait
from hotline.config import Settings
from hotline.engine.callback_placer import CallbackPlacer, Timing
from hotline.engine.context import CallContext
from hotline.engine.device_states import NodeDeviceStates
from hotline.engine.directory import Directory, Snapshot
from hotline.engine.event_pruner import EventPruner
from hotline.engine.live import LivePublisher
from hotline.engine.live_hub import LiveHub
from hotline.engine.node_loss import lost_why
from hotline.engine.queueing.queues import QueueManager
from hotline.engine.recording_mover import RecordingMover
from hotline.engine.router import Router
from hotline.engine.routers import Routers
from hotline.engine.routing import regions
from hotline.engine.unwatched_dials import UnwatchedDials
from hotline.engine.webhook_deliverer import WebhookDeliverer
from hotline.errors import AriError, ConfigError, Fenced, StoreError
from hotline.health import Health, Probes
from hotline.loop_lag import LoopLagMonitor
from hotline.media import WEB_ENDPOINT
from hotline.metrics import Metrics, Sources
from hotline.node_links import NodeLink
from hotline.store import migrations
from hotline.store import nodes as node_store
from hotline.store import webhooks as webhooks_store
from hotline.store.active_lock import ActiveLock, count_standbys
from hotline.store.availability import PROBE_TIMEOUT_S, StoreAvailability
from hotline.store.callbacks import Callbacks, waiting_per_queue
from hotline.store.contacts import Contacts
from hotline.store.db import connect, describe_dsn, open_pool
from hotline.store.registrations import Registrations
from hotline.store.spool import spool_directory
from hotline.store.supervisions import Supervisions
from hotline.store.switches import Switches
from hotline.store.write_behind import WriteBehind
from hotline.web.app import WebConfig, make_app, start_web
from hotline.web.backend import DaemonWebBackend
from hotline.web.guard import origin_of
from hotline.web.sip_ws_proxy import SipWsProxy
from hotline.web.switch_links import SwitchKey, SwitchLinks

log = logging.getLogger(__name__)

DB_CHECK_TIMEOUT_S = 1.0
# What _on_ami_event acts on; Asterisk is asked to send nothing else.
HANDLED_AMI_EVENTS = ("DeviceStateChange", "FullyBooted")
# The web pages' own pool: small, and quick to give up (a page answers 503 rather than wait).
WEB_POOL_SIZE = 2
WEB_POOL_TIMEOUT_S = 3.0
WEB_APPLICATION_NAME = "hotline-web"
SLOW_STOP_STEP_S = 5.0
METRICS_POOL_TIMEOUT_S = 1.0  # a scrape's callback count does not wait long for the calls' pool
# The daemon's word that it serves a node (nodes.serving_until, what Kamailio's dispatcher offers
# calls to) lasts this long and is renewed this often: a daemon gone, or a node it lost, lapses
# within SERVING_FOR_S.
SERVING_FOR_S = 5.0
ADOPTION_BARRIER_S = 5.0  # how long a node's waiting callers wait for the other nodes' talks
STANDBY_LOOK_S = 3.0  # how often the active daemon looks whether a standby waits
SERVING_RENEW_S = 2.0


class Daemon:
    def __init__(self, settings: Settings) -> None:
        settings.require("dsn", "ami_url", "ari_url")
        self.settings = settings
        self.stopping = asyncio.Event()
        self.lock: ActiveLock | None = None  # held: this daemon is the active one
        self.fenced: str | None = None  # why the lock's session was lost, once it was
        self.pool: AsyncConnectionPool | None = None
        self.links: dict[str, NodeLink] = {}  # by node name: one Asterisk, or several behind Kamailio
        self.routers = Routers()
        self.device_states = NodeDeviceStates()
        self.several_nodes = False  # nodes provisioned: the daemon also renews its word per node
        self._ctx: CallContext | None = None  # every call's context but for its node's (ari, node)
        self._serving: asyncio.Task[None] | None = None
        # Behind Kamailio (sip_proxy): agents' phones register there, not at a node
        self.registrations: Registrations | None = None
        self.directory: Directory | None = None
        self.queues = QueueManager()
        self.hub = LiveHub()  # calls and the live publisher to the pages' live streams
        self.live: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.records: WriteBehind | None = None
        self.records_pool: AsyncConnectionPool | None = None
        self.web_pool: AsyncConnectionPool | None = None
        self.web: web.AppRunner | None = None
        self.store: StoreAvailability | None = None
        self.lag = LoopLagMonitor()
        self.metrics = Metrics(Sources(
            queues=lambda: self.queues, ended=self._ended, backlog=self._backlog,
            spooled=lambda: self.records.spooled_records if self.records is not None else 0,
            ari_connected=self._ari_connected, ari_connections=self._ari_connections,
            ami_connected=self._ami_connected, callbacks_waiting=self._callbacks_waiting,
            webhooks_pending=self._webhooks_pending, active=self._active), self.lag)
        self.lag.on_sample = self.metrics.lag.observe
        self.health = Health(Probes(
            ari_connected=self._ari_connected, ami_connected=self._ami_connected,
            ari_connections=self._ari_connections,
            backlog=self._backlog, check_database=self._check_database,
            standing_by=self._standing_by), self.lag,
            metrics=self.metrics.render)
        self.switch_key: SwitchKey | None = None
        self.placer: CallbackPlacer | None = None
        self.placer_task: asyncio.Task[None] | None = None
        self.webhooks: WebhookDeliverer | None = None
        self.pruner: EventPruner | None = None
        self.unwatched_dials: UnwatchedDials | None = None
        self.mover: RecordingMover | None = None  # recording_move_to set: finished files moved there
        # When AMI last told each endpoint's state: a list read from ARI that was asked for before
        # that is older news, and must not undo it (a phone registering during the read).
        self._device_told_at: dict[str, float] = {}

    async def stand_by(self) -> bool:
        """The health endpoint up, then wait for the active lock: True once this daemon holds it,
        False when it was stopped first. Nothing touches Asterisk before (a standby that opened
        the app's WebSocket would take every call from the active daemon)."""
        s = self.settings
        self.lag.start()
        if s.health_address is not None:  # first: a starting daemon answers 503, not nothing
            await self.health.start(*s.health_address)
        self.lock = ActiveLock(s.dsn, s.ari_app)
        return await self.lock.acquire(self.stopping)

    async def start(self) -> None:
        """Connect everything (the lock held); raises HotlineError with a clear message when a part
        is missing."""
        s = self.settings
        self.pool = await open_pool(s.dsn, synchronous_commit=s.synchronous_commit)
        await self._check_migrated(self.pool)
        self.queues = QueueManager()
        self.directory = Directory(s.dsn, on_reload=self._follow_provisioning)
        await self.directory.start()
        addresses = node_addresses(s, self.directory.snapshot.prov.nodes)
        self.several_nodes = bool(self.directory.snapshot.prov.nodes)
        # The write-behind has a connection of its own: calls waiting for a line of a busy
        # number hold the shared pool's, and records must not queue behind them.
        self.records_pool = await open_pool(s.dsn, min_size=1, max_size=1,
                                            synchronous_commit=s.synchronous_commit)
        self.records = WriteBehind(self.records_pool, node=s.node, spool_dir=self._spool_dir())
        self.records.start()
        switches = Switches(self.pool)
        self.store = StoreAvailability(self._database_answers)
        links = SwitchLinks(switches, s)  # one courier: agents' and callers' sends share its slots
        self.switch_key = SwitchKey(links)
        callbacks = Callbacks(self.pool)
        first_client = AriClient(addresses[0].ari)
        if s.recording_move_to:  # checked now: a directory the daemon cannot create stops it here
            Path(s.recording_move_to).mkdir(parents=True, exist_ok=True)
            self.mover = RecordingMover(self.pool, first_client, s.recording_dir, s.recording_move_to)
        routers = self.routers
        self._ctx = CallContext(ari=first_client, contacts=Contacts(self.pool), records=self.records,
                                directory=self.directory, queues=self.queues,
                                watch=lambda c, inbox: None, unwatch=lambda c: None,
                                node=addresses[0].name, app=s.ari_app, region=s.default_region,
                                switches=switches, find_call=routers.call_of_hop, switch_key=s.switch_key,
                                ask_switch=self.switch_key.press,
                                ask_video_link=partial(self.switch_key.press, waiting=True),
                                continue_case_within_s=s.continue_case_within_s, store=self.store,
                                callbacks=callbacks, conference_legs=routers.conference_legs,
                                rejoin_grace_s=s.web_rejoin_grace_s,
                                recording_format=s.recording_format, recording_dir=s.recording_dir,
                                recording_finished=self.mover.finished if self.mover is not None else None,
                                find_dropped=routers.dropped_call_of, hub=self.hub)
        for address in addresses:
            await self._add_node(address, first_client if address is addresses[0] else None)
        publisher = LivePublisher(self.pool, self.queues, self.directory, node=addresses[0].name,
                                  hub=self.hub, node_of=routers.node_of_channel)
        self.live = asyncio.create_task(publisher.run(), name="live-state")
        # The pages listen before the app registers with Asterisk: whoever waits for the app to be
        # up (a test, a load balancer's check) finds them up too.
        await self._start_web(publisher, links)
        for link in self.links.values():
            self._start_ari(link)
        await self._wait_ari_connected()
        if self.several_nodes:
            self._serving = asyncio.create_task(self._renew_serving(), name="nodes-serving")
        if s.sip_proxy:
            self.registrations = Registrations(s.dsn, self._registrations_changed)
            self.registrations.start()
        # After the first reconcile: callback legs a killed daemon left are hung up first.
        self.placer = CallbackPlacer(self._node_ctx(self.links[addresses[0].name]), callbacks,
                                     Timing(lease_s=s.callback_lease_s), place_on=self._placement_ctx)
        self.placer_task = asyncio.create_task(self.placer.run(), name="callback-placer")
        # Contact events to webhooks: off the calls' path, on the shared pool (a round holds a
        # connection only for its claim and for each result, never during a POST).
        self.webhooks = WebhookDeliverer(self.pool, s.webhook_timing)
        self.webhooks.start()
        self.unwatched_dials = UnwatchedDials(switches)
        self.unwatched_dials.start()
        if s.event_retention_days is not None:
            self.pruner = EventPruner(self.pool, s.event_retention_days)
            self.pruner.start()
        for link in self.links.values():
            version = await link.ami.asterisk_version() if link.ami.connected else "(AMI not connected yet)"
            log.info("hotline running on node %s: Asterisk %s, app %r", link.name, version, s.ari_app)

    async def _add_node(self, address: NodeAddress, client: AriClient | None = None) -> NodeLink:
        """The node's AMI login, ARI client and router (its ARI WebSocket opens in _start_ari)."""
        assert self._ctx is not None
        client = client or AriClient(address.ari)
        holder: list[NodeLink] = []
        ctx = dataclasses.replace(self._ctx, ari=client, node=address.name,
                                  watch=lambda c, inbox: holder[0].router.watch(c, inbox),
                                  unwatch=lambda c: holder[0].router.unwatch(c))
        link = NodeLink(address, client, AmiSession(address.ami, only_events=HANDLED_AMI_EVENTS),
                        Router(ctx, Supervisions(self.pool) if self.pool is not None else None))
        holder.append(link)
        link.router.draining = self._draining(address.name)
        link.router.talks_first = self._every_nodes_talks_adopted
        link.ami.on_event(partial(self._on_ami_event, address.name))
        await link.connect_ami(must=not self.several_nodes)
        self.links[address.name] = link
        self.routers.add(address.name, link.router)
        return link

    def _start_ari(self, link: NodeLink) -> None:
        link.start_ari(self.settings.ari_app, partial(self._on_ari_connect, link),
                       self.settings.ari_channel_subscription == "all")

    @staticmethod
    def _node_ctx(link: NodeLink) -> CallContext:
        return link.router.ctx

    def _placement_ctx(self) -> CallContext:
        """Where a callback is placed: a node whose ARI is up and that does not drain, the one with
        the fewest calls (one node: always its own)."""
        links = list(self.links.values())
        usable = [link for link in links if link.ari_connected and not link.router.draining] or links
        return min(usable, key=lambda link: (len(link.router.calls), link.name)).router.ctx

    async def _every_nodes_talks_adopted(self) -> None:
        """Before a node's adopted callers wait in line again: every connected node's talks are
        back, so an agent talking through another node is busy, never rung (a node down, or slow
        to connect, is waited for ADOPTION_BARRIER_S at most)."""
        waits = [link.router.talks_adopted.wait() for link in self.links.values() if link.session is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), ADOPTION_BARRIER_S)
        except TimeoutError:
            late = [link.name for link in self.links.values() if not link.router.talks_adopted.is_set()]
            log.warning("talks of node(s) %s not adopted within %.0f s: their agents may be rung meanwhile",
                        ", ".join(late), ADOPTION_BARRIER_S)

    def _draining(self, node: str) -> bool:
        return self.directory is not None and node in self.directory.snapshot.draining_nodes

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT, then stop cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            if await self.stand_by():
                await self._serve()
        finally:
            await self.close()
        if self.fenced is not None:
            raise Fenced(f"stopped controlling calls: the active lock's session was lost ({self.fenced}); "
                         "another daemon may be active now. Restarted, this one stands by.")

    async def _serve(self) -> None:
        """Start and serve until stopped, or until the lock's session is lost: then it can no
        longer prove it is the only active daemon, and lets go of Asterisk at once (fenced)."""
        assert self.lock is not None
        fence = asyncio.create_task(self._keep_lock(), name="active-lock")
        standbys = asyncio.create_task(self._look_for_standbys(), name="standbys")
        serving = asyncio.create_task(self._start_and_wait(), name="serving")
        try:
            await asyncio.wait({fence, serving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(standbys)
            if not fence.done():
                await cancel_and_wait(fence)
            elif not fence.cancelled():
                self.fenced = fence.result()
                log.error("fenced: the active lock's session is lost (%s): letting go of Asterisk "
                          "now; the calls stay in Stasis for the daemon that takes the lock",
                          self.fenced)
                await self._let_go_of_asterisk()
            if not serving.done():
                await cancel_and_wait(serving)
        serving.result()  # a failed start says why

    async def _keep_lock(self) -> str:
        """Why this daemon must let go of Asterisk. The lock's session lost while a standby waited:
        at once (the standby may be taking over). Lost with none waiting, it is the database going
        away (a restart, a failover): the calls are served on through it, as the write-behind
        allows, and the lock is taken again once the database answers, unless another daemon
        took it first."""
        assert self.lock is not None
        while True:
            lost = await self.lock.watch()
            if self.lock.standbys_waiting:
                return lost
            log.warning("the active lock's session is lost (%s) and no standby was waiting: serving "
                        "on, retaking the lock once the database answers", lost)
            taken_by = await self.lock.retake(self.stopping)
            if taken_by is not None:
                return taken_by
            if self.stopping.is_set():
                return await asyncio.Future()  # stopping anyway: never fences
            log.info("active lock retaken: this daemon is still the active one")

    async def _look_for_standbys(self) -> None:
        """Every few seconds while active: is a standby waiting (for _keep_lock)?"""
        assert self.lock is not None
        while True:
            try:
                async with await connect(self.settings.dsn, timeout=DB_CHECK_TIMEOUT_S) as conn:
                    waiting = await count_standbys(conn) > 0
                if waiting != self.lock.standbys_waiting:
                    log.info("a standby waits: a lost lock session makes this daemon let go at once"
                             if waiting else "no standby waits: a lost lock session is served through")
                self.lock.standbys_waiting = waiting
            except Exception as exc:  # noqa: BLE001 - the database away: the last look stands
                log.debug("standbys not counted: %s", exc)
            await asyncio.sleep(STANDBY_LOOK_S)

    async def _start_and_wait(self) -> None:
        await self.start()
        await self.stopping.wait()
        log.info("stopping: calls stay in Stasis for the next start to adopt")

    async def _let_go_of_asterisk(self) -> None:
        """ARI's WebSocket and REST, and AMI, closed before anything else: a fenced daemon
        must not touch a call another daemon may control already."""
        self.stopping.set()
        for link in self.links.values():
            await self._closing(f"ari of node {link.name}", link.close_ari())
            await self._closing(f"node {link.name}", link.close())

    async def _start_web(self, publisher: LivePublisher, links: SwitchLinks) -> None:
        s = self.settings
        address = s.web_address
        if address is None:
            log.info("web pages off (web_listen is empty)")
            return
        assert self.directory is not None
        config = WebConfig(sip_ws_url=s.sip_websocket_url, sip_domain=s.ari.host,
                           origin=origin_of(s.web_base_url), customer_endpoint=WEB_ENDPOINT,
                           supervisor_token=s.supervisor_token)
        # Pages have connections of their own: a flood of them must not take the calls'.
        self.web_pool = await open_pool(s.dsn, min_size=1, max_size=WEB_POOL_SIZE, timeout=WEB_POOL_TIMEOUT_S,
                                        synchronous_commit=s.synchronous_commit,
                                        application_name=WEB_APPLICATION_NAME)
        routers = self.routers
        backend = DaemonWebBackend(s, self.web_pool, self.directory, links, publisher, self._ari_for,
                                   camera_news=routers.camera_turned, hanging_up=routers.hanging_up,
                                   dropped_for_agent=routers.dropped_for_agent,
                                   talks=routers.live_talks, customer_views=routers.customer_view)
        relay = SipWsProxy(s.asterisk_ws_url, s.sip_ws_limits, s.trusted_proxies)
        self.web = await start_web(make_app(config, backend, sip_proxy=relay), *address)  # port taken
        log.info("web pages on %s (switch links: %s/switch/...; SIP WebSocket %s, relayed to %s)",
                 s.web_listen, s.web_base_url, s.sip_websocket_url, s.asterisk_ws_url)

    async def close(self) -> None:
        """Idempotent; the reverse order of start."""
        self.stopping.set()  # the health endpoint says "down" from here on
        self.hub.close()  # the pages' live streams end first: none holds the web's stop
        if self.web is not None:
            await self._closing("web", self.web.cleanup())
            self.web = None
        if self.web_pool is not None:
            await self._closing("web_pool", self.web_pool.close())
            self.web_pool = None
        if self.live is not None:
            await self._closing("live", cancel_and_wait(self.live))
            self.live = None
        if self.unwatched_dials is not None:
            await self._closing("unwatched_dials", self.unwatched_dials.close())
            self.unwatched_dials = None
        if self.pruner is not None:
            await self._closing("pruner", self.pruner.close())
            self.pruner = None
        if self.webhooks is not None:
            await self._closing("webhooks", self.webhooks.close())
            self.webhooks = None
        if self.placer_task is not None:
            await self._closing("placer_task", cancel_and_wait(self.placer_task))
            self.placer_task = None
        if self.placer is not None:
            await self._closing("placer", self.placer.close())
            self.placer = None
        if self._serving is not None:
            await self._closing("serving", cancel_and_wait(self._serving))
            self._serving = None
        if self.registrations is not None:
            await self._closing("registrations", self.registrations.close())
            self.registrations = None
        for link in self.links.values():
            await self._closing(f"ari of node {link.name}", link.close_ari())
        await self._closing("routers", self.routers.close())
        if self.store is not None:
            await self._closing("store", self.store.close())
        if self.switch_key is not None:
            await self._closing("switch_key", self.switch_key.close())
        if self.mover is not None:  # after the router: no talk ends any more
            await self._closing("mover", self.mover.close())
            self.mover = None
        if self.records is not None:
            # what the calls recorded before the stop is kept
            await self._closing("records", self.records.close())
        if self.records_pool is not None:
            await self._closing("records_pool", self.records_pool.close())
        if self.directory is not None:
            await self._closing("directory", self.directory.close())
        for link in self.links.values():
            await self._closing(f"node {link.name}", link.close())
        self.links = {}
        if self.pool is not None:
            await self._closing("pool", self.pool.close())
        if self.lock is not None:  # last: a standby takes over once this daemon let go of everything
            await self._closing("lock", self.lock.close())
        self.pool = self.directory = self.records = None
        self.records_pool = self.switch_key = None
        await self._closing("health", self.health.close())
        await self._closing("metrics", self.metrics.close())
        await self._closing("lag", self.lag.close())

    async def _closing(self, what: str, step: Awaitable[object]) -> None:
        """One step of the stop, named in the log when it takes long: a stop that hangs says on what."""
        warning = asyncio.get_running_loop().call_later(
            SLOW_STOP_STEP_S, log.warning, "stopping: still waiting for %s (%.0f s)", what, SLOW_STOP_STEP_S)
        try:
            await step
        finally:
            warning.cancel()

    def _active(self) -> bool:
        return self.lock is not None and self.lock.active and self.fenced is None

    def _standing_by(self) -> str | None:
        """For the health endpoint: the active daemon this one waits for, None once it is active."""
        if self.lock is None or self.lock.active or self.fenced is not None or self.stopping.is_set():
            return None
        return self.lock.holder.describe() if self.lock.holder is not None else ""

    def _ari_connected(self) -> bool:
        """A node's ARI is up: calls are served (a node down takes no call: Kamailio skips it once
        the daemon's word for it lapses, and the log names it)."""
        return any(link.ari_connected for link in self.links.values()) and not self.stopping.is_set()

    def _ami_connected(self) -> bool:
        return any(link.ami.connected for link in self.links.values())

    def _ari_connections(self) -> int:
        return sum(link.session.connections for link in self.links.values() if link.session is not None)

    def _ari_for(self, channel_id: str) -> AriClient:
        """The ARI client of the node `channel_id` lives on (a request about a live call goes
        there); the first node's when no router knows the channel."""
        node = self.routers.node_of_channel(channel_id)
        link = self.links.get(node) if node is not None else None
        return (link or next(iter(self.links.values()))).client

    def _backlog(self) -> int:
        return self.records.backlog if self.records is not None else 0

    def _ended(self) -> Counter[str]:
        return self.records.ended if self.records is not None else Counter()

    async def _webhooks_pending(self) -> dict[str, int]:
        """Per webhook, the deliveries waiting (for the metrics: hotline.metrics bounds the wait)."""
        if self.pool is None:
            raise StoreError("not connected to the database yet")
        async with self.pool.connection(timeout=METRICS_POOL_TIMEOUT_S) as conn:
            return await webhooks_store.pending_per_webhook(conn)

    async def _callbacks_waiting(self) -> dict[str, int]:
        """Per queue, the callbacks not placed yet (for the metrics: hotline.metrics bounds the wait)."""
        if self.pool is None or self.directory is None:
            raise StoreError("not connected to the database yet")
        async with self.pool.connection(timeout=METRICS_POOL_TIMEOUT_S) as conn:
            counts = await waiting_per_queue(conn)
        names = {ident: name for name, ident in self.directory.snapshot.ids.get("queues", {}).items()}
        return {names[queue_id]: n for queue_id, n in counts.items() if queue_id in names}

    async def _check_database(self) -> None:
        """A connection of its own: the pools' may all be held by calls, which says nothing
        about the database."""
        async with await connect(self.settings.dsn, timeout=DB_CHECK_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")

    async def _on_ari_connect(self, link: NodeLink) -> None:
        await link.router.reconcile()
        self.queues.set_away(list(link.router.calls), False)  # those still up wait on as before
        await self._read_device_states(link)

    async def _wait_ari_connected(self, timeout: float = 15.0) -> None:
        """Every node's ARI up, or the timeout: a node down is served once it comes back."""
        waits = [link.session.connected.wait() for link in self.links.values() if link.session is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            down = [link.name for link in self.links.values() if not link.ari_connected]
            log.warning("ARI of node(s) %s not connected after %.0f s; their calls are served once it is",
                        ", ".join(down), timeout)

    async def _renew_serving(self) -> None:
        """Several nodes: renew the word that this daemon serves each node whose ARI it holds
        (Kamailio offers new calls only to those, and to none that drains)."""
        while True:
            serving = [link.name for link in self.links.values() if link.ari_connected]
            try:
                assert self.pool is not None
                async with self.pool.connection(timeout=DB_CHECK_TIMEOUT_S) as conn:
                    await node_store.serve(conn, serving, SERVING_FOR_S)
            except Exception as exc:  # noqa: BLE001 - the database away: the word lapses, calls go on
                log.warning("nodes' serving word not renewed (%s)", exc)
            self._follow_nodes_reach()
            await asyncio.sleep(SERVING_RENEW_S)

    def _follow_nodes_reach(self) -> None:
        """A node whose ARI is out of reach: its waiting callers keep their place but are offered
        no agent (back once it reconnects, _on_ari_connect); out of reach node_lost_after, it is
        given up for lost, once per outage: its calls and open hops end with that cause
        (hotline.engine.node_loss)."""
        now = time.monotonic()
        for link in list(self.links.values()):
            if link.ari_connected:
                link.down_since, link.given_up = None, False
                continue
            if link.down_since is None:
                link.down_since = now
                away = self.queues.set_away(list(link.router.calls), True)
                log.warning("node %s: ARI out of reach: its %d waiting caller(s) keep their place, "
                            "offered no agent until it is back", link.name, away)
            down_s = now - link.down_since
            if not link.given_up and down_s >= self.settings.node_lost_after_s:
                link.given_up = True
                self._in_background(self._give_up(link, lost_why(link.name, down_s)), f"give-up-{link.name}")

    async def _give_up(self, link: NodeLink, why: str) -> None:
        self._forget_device_states(link.name)
        try:
            await link.router.give_up(why)
        except Exception as exc:  # noqa: BLE001 - the database away: tried again next round
            log.warning("%s: its hops not closed yet (%s)", why, exc)
            link.given_up = False

    async def _read_device_states(self, link: NodeLink) -> None:
        """Every agent phone's state now, from ARI's endpoint list: an endpoint `hotline apply`
        just created and that never registered is offline, and no AMI DeviceStateChange would
        ever say so. Read when ARI (re)connects and when agents or their presence change."""
        asked = time.monotonic()
        try:
            endpoints = await link.client.endpoints("PJSIP")
        except AriError as exc:
            log.warning("node %s: agent phone states not read (%s): they count once they change",
                        link.name, exc)
            return
        for endpoint in endpoints:
            if self._device_told_at.get(f"{link.name}/{endpoint.resource}", 0.0) < asked:
                self._device(link.name, endpoint.resource, endpoint_device_state(endpoint))

    async def _on_ami_event(self, node: str, event: object) -> None:
        if isinstance(event, FullyBooted):
            log.info("node %s: Asterisk fully booted", node)
        elif isinstance(event, DeviceStateChange) and event.device.startswith("PJSIP/"):
            endpoint = event.device.removeprefix("PJSIP/")
            self._device_told_at[f"{node}/{endpoint}"] = time.monotonic()
            self._device(node, endpoint, event.state)

    def _forget_device_states(self, node: str) -> None:
        for endpoint, state in self.device_states.forget_node(node).items():
            self.queues.device(endpoint, state)

    def _registrations_changed(self, registered: set[str]) -> None:
        """Kamailio's registered phones changed: the queues get each changed phone's state."""
        for endpoint, state in self.device_states.registrations(registered).items():
            self.queues.device(endpoint, state)

    def _device(self, node: str, endpoint: str, state: str) -> None:
        """One node's word on an agent phone; the queues get the word of all nodes together."""
        self.queues.device(endpoint, self.device_states.told(node, endpoint, state))

    def _follow_provisioning(self, snapshot: Snapshot) -> None:
        """Provisioning or agent presence changed (NOTIFY): the queues take it at once."""
        for link in self.links.values():
            link.router.draining = link.name in snapshot.draining_nodes
            if link.ari_connected:
                task = asyncio.create_task(self._read_device_states(link), name=f"device-states-{link.name}")
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        self._follow_nodes(snapshot)
        regions.prepare(snapshot.prov.hotlines.values())
        self.queues.provision(snapshot.prov)
        if self.placer is not None:
            self.placer.provisioning_changed(snapshot)
        self.queues.presence({n: p.logged_in_since is not None for n, p in snapshot.presence.items()},
                             {n: p.reason if p.paused_since else None for n, p in snapshot.presence.items()})

    def _follow_nodes(self, snapshot: Snapshot) -> None:
        """Nodes added or removed while running: connected or let go at once. From one Asterisk to
        provisioned nodes (or back) the calls' node names change: that takes a restart."""
        if not self.links or self._ctx is None:
            return  # the first load, before start connected anything
        if bool(snapshot.prov.nodes) != self.several_nodes:
            log.warning("nodes %s: restart the daemon to serve %s", "provisioned" if snapshot.prov.nodes
                        else "all removed", "them" if snapshot.prov.nodes else "the settings' Asterisk")
            return
        wanted = {a.name: a for a in node_addresses(self.settings, snapshot.prov.nodes)}
        for name, link in list(self.links.items()):
            if wanted.get(name) != link.address:
                self._in_background(self._leave_node(name), f"leave-node-{name}")
        for name, address in wanted.items():
            if self.links.get(name) is None or self.links[name].address != address:
                self._in_background(self._join_node(address), f"join-node-{name}")

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _join_node(self, address: NodeAddress) -> None:
        while address.name in self.links:  # its old address still being let go
            await asyncio.sleep(0.1)
        link = await self._add_node(address)
        self._start_ari(link)
        log.info("node %s added: serving it", address.name)

    async def _leave_node(self, name: str) -> None:
        link = self.links[name]
        self.routers.by_node.pop(name, None)
        await link.close_ari()
        await link.router.close()
        await link.close()
        self._forget_device_states(name)
        del self.links[name]
        log.info("node %s let go", name)

    def _spool_dir(self) -> Path | None:
        s = self.settings
        if not s.spool_dir:
            log.warning("no spool_dir: records past the write-behind's bounds are dropped (logged)")
            return None
        path = spool_directory(Path(s.spool_dir), describe_dsn(s.dsn), s.node)
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"spool_dir {s.spool_dir}: {exc.strerror}: create it for the daemon's "
                              "user, or set HOTLINE_SPOOL_DIR") from None
        return path

    async def _database_answers(self) -> None:
        """The outage probe: one trivial query on the calls' pool."""
        assert self.pool is not None
        async with self.pool.connection(timeout=PROBE_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")

    @staticmethod
    async def _check_migrated(pool: AsyncConnectionPool) -> None:
        async with pool.connection() as conn:
            todo = await migrations.pending(conn)
        if todo:
            raise StoreError(f"database is not migrated ({len(todo)} pending, first "
                             f"{todo[0].version:03d}_{todo[0].name}): run `hotline db migrate`")


def run_daemon(settings: Settings) -> None:
    """Run the daemon until SIGTERM or SIGINT on the event loop the settings name."""
    if settings.event_loop == "uvloop":
        import uvloop  # a dependency; imported here so the CLI's other commands never load it

        uvloop.run(Daemon(settings).run())
    else:
        asyncio.run(Daemon(settings).run())


def endpoint_device_state(endpoint: EndpointState) -> str:
    """An ARI endpoint as the device state app_queue would read for it."""
    if endpoint.state == "offline":
        return "UNAVAILABLE"
    if endpoint.state == "online":
        return "INUSE" if endpoint.channel_ids else "NOT_INUSE"
    return "UNKNOWN"
