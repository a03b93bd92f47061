"""The composition root: builds store, AMI, ARI and engine, runs them, shuts them down in order."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable
from functools import partial
from pathlib import Path

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from hotline.asterisk.ami import AmiSession
from hotline.asterisk.ami_events import DeviceStateChange, FullyBooted
from hotline.asterisk.ari import AriClient, AriSession
from hotline.asterisk.ari_events import EndpointState
from hotline.cancellation import cancel_and_wait
from hotline.config import Settings
from hotline.engine.callback_placer import CallbackPlacer, Timing
from hotline.engine.context import CallContext
from hotline.engine.directory import Directory, Snapshot
from hotline.engine.event_pruner import EventPruner
from hotline.engine.live import LivePublisher
from hotline.engine.live_hub import LiveHub
from hotline.engine.queueing.queues import QueueManager
from hotline.engine.recording_mover import RecordingMover
from hotline.engine.router import Router
from hotline.engine.routing import regions
from hotline.engine.unwatched_dials import UnwatchedDials
from hotline.engine.webhook_deliverer import WebhookDeliverer
from hotline.errors import AriError, ConfigError, Fenced, StoreError
from hotline.health import Health, Probes
from hotline.loop_lag import LoopLagMonitor
from hotline.media import WEB_ENDPOINT
from hotline.metrics import Metrics, Sources
from hotline.store import migrations
from hotline.store import webhooks as webhooks_store
from hotline.store.active_lock import ActiveLock
from hotline.store.availability import PROBE_TIMEOUT_S, StoreAvailability
from hotline.store.callbacks import Callbacks, waiting_per_queue
from hotline.store.contacts import Contacts
from hotline.store.db import connect, describe_dsn, open_pool
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


class Daemon:
    def __init__(self, settings: Settings) -> None:
        settings.require("dsn", "ami_url", "ari_url")
        self.settings = settings
        self.stopping = asyncio.Event()
        self.lock: ActiveLock | None = None  # held: this daemon is the active one
        self.fenced: str | None = None  # why the lock's session was lost, once it was
        self.pool: AsyncConnectionPool | None = None
        self.ami: AmiSession | None = None
        self.ari: AriSession | None = None
        self.router: Router | None = None
        self.directory: Directory | None = None
        self.queues = QueueManager()
        self.hub = LiveHub()  # calls and the live publisher to the pages' live streams
        self.live: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.ari_client: AriClient | None = None
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
        self.ami = AmiSession(s.ami, only_events=HANDLED_AMI_EVENTS)
        self.ami.on_event(self._on_ami_event)
        await self.ami.connect()
        self.queues = QueueManager()
        self.directory = Directory(s.dsn, on_reload=self._follow_provisioning)
        await self.directory.start()
        client = self.ari_client = AriClient(s.ari)
        router: Router
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
        if s.recording_move_to:  # checked now: a directory the daemon cannot create stops it here
            Path(s.recording_move_to).mkdir(parents=True, exist_ok=True)
            self.mover = RecordingMover(self.pool, client, s.recording_dir, s.recording_move_to)
        ctx = CallContext(ari=client, contacts=Contacts(self.pool), records=self.records,
                          directory=self.directory, queues=self.queues,
                          watch=lambda c, inbox: router.watch(c, inbox), unwatch=lambda c: router.unwatch(c),
                          node=s.node, app=s.ari_app, region=s.default_region, switches=switches,
                          find_call=lambda hop_id: router.call_of_hop(hop_id), switch_key=s.switch_key,
                          ask_switch=self.switch_key.press,
                          ask_video_link=partial(self.switch_key.press, waiting=True),
                          continue_case_within_s=s.continue_case_within_s, store=self.store,
                          callbacks=callbacks,
                          conference_legs=lambda case_id: router.conference_legs(case_id),
                          rejoin_grace_s=s.web_rejoin_grace_s,
                          recording_format=s.recording_format, recording_dir=s.recording_dir,
                          recording_finished=self.mover.finished if self.mover is not None else None,
                          find_dropped=lambda customer: router.dropped_call_of(customer),
                          hub=self.hub)
        router = self.router = Router(ctx, Supervisions(self.pool))
        publisher = LivePublisher(self.pool, self.queues, self.directory, node=s.node, hub=self.hub)
        self.live = asyncio.create_task(publisher.run(), name="live-state")
        # The pages listen before the app registers with Asterisk: whoever waits for the app to be
        # up (a test, a load balancer's check) finds them up too.
        await self._start_web(publisher, client, links)
        self.ari = AriSession(client, s.ari_app, on_event=self.router.on_event,
                              on_connect=self._on_ari_connect,
                              all_channels=s.ari_channel_subscription == "all")
        self.ari.start()
        await self._wait_ari_connected()
        # After the first reconcile: callback legs a killed daemon left are hung up first.
        self.placer = CallbackPlacer(ctx, callbacks, Timing(lease_s=s.callback_lease_s))
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
        log.info("hotline running on node %s: Asterisk %s, app %r", s.node,
                 await self.ami.asterisk_version(), s.ari_app)

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
        fence = asyncio.create_task(self.lock.watch(), name="active-lock")
        serving = asyncio.create_task(self._start_and_wait(), name="serving")
        try:
            await asyncio.wait({fence, serving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
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

    async def _start_and_wait(self) -> None:
        await self.start()
        await self.stopping.wait()
        log.info("stopping: calls stay in Stasis for the next start to adopt")

    async def _let_go_of_asterisk(self) -> None:
        """ARI's WebSocket and REST, and AMI, closed before anything else: a fenced daemon
        must not touch a call another daemon may control already."""
        self.stopping.set()
        if self.ari is not None:
            await self._closing("ari", self.ari.close())
        elif self.ari_client is not None:
            await self._closing("ari_client", self.ari_client.close())
        if self.ami is not None:
            await self._closing("ami", self.ami.close())

    async def _start_web(self, publisher: LivePublisher, client: AriClient, links: SwitchLinks) -> None:
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
        assert self.router is not None
        backend = DaemonWebBackend(s, self.web_pool, self.directory, links, publisher, client,
                                   camera_news=self.router.camera_turned, hanging_up=self.router.hanging_up,
                                   dropped_for_agent=self.router.dropped_for_agent,
                                   talks=self.router.live_talks, customer_views=self.router.customer_view)
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
        if self.ari is not None:
            await self._closing("ari", self.ari.close())
        if self.router is not None:
            await self._closing("router", self.router.close())
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
        if self.ami is not None:
            await self._closing("ami", self.ami.close())
        if self.pool is not None:
            await self._closing("pool", self.pool.close())
        if self.lock is not None:  # last: a standby takes over once this daemon let go of everything
            await self._closing("lock", self.lock.close())
        self.ari = self.router = self.ami = self.pool = self.directory = self.records = None
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
        return self.ari is not None and self.ari.connected.is_set() and not self.stopping.is_set()

    def _ami_connected(self) -> bool:
        return self.ami is not None and self.ami.connected

    def _ari_connections(self) -> int:
        return self.ari.connections if self.ari is not None else 0

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

    async def _on_ari_connect(self) -> None:
        assert self.router is not None
        await self.router.reconcile()
        await self._read_device_states()

    async def _wait_ari_connected(self, timeout: float = 15.0) -> None:
        assert self.ari is not None
        try:
            await asyncio.wait_for(self.ari.connected.wait(), timeout)
        except TimeoutError:
            log.warning("ARI not connected after %.0f s; calls are served once it is", timeout)

    async def _read_device_states(self) -> None:
        """Every agent phone's state now, from ARI's endpoint list: an endpoint `hotline apply`
        just created and that never registered is offline, and no AMI DeviceStateChange would
        ever say so. Read when ARI (re)connects and when agents or their presence change."""
        if self.ari_client is None:
            return
        asked = time.monotonic()
        try:
            endpoints = await self.ari_client.endpoints("PJSIP")
        except AriError as exc:
            log.warning("agent phone states not read (%s): they count once they change", exc)
            return
        for endpoint in endpoints:
            if self._device_told_at.get(endpoint.resource, 0.0) < asked:
                self.queues.device(endpoint.resource, endpoint_device_state(endpoint))

    async def _on_ami_event(self, event: object) -> None:
        if isinstance(event, FullyBooted):
            log.info("Asterisk fully booted")
        elif isinstance(event, DeviceStateChange) and event.device.startswith("PJSIP/"):
            endpoint = event.device.removeprefix("PJSIP/")
            self._device_told_at[endpoint] = time.monotonic()
            self.queues.device(endpoint, event.state)

    def _follow_provisioning(self, snapshot: Snapshot) -> None:
        """Provisioning or agent presence changed (NOTIFY): the queues take it at once."""
        if self.ari_client is not None:
            task = asyncio.create_task(self._read_device_states(), name="device-states")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        regions.prepare(snapshot.prov.hotlines.values())
        self.queues.provision(snapshot.prov)
        if self.placer is not None:
            self.placer.provisioning_changed(snapshot)
        self.queues.presence({n: p.logged_in_since is not None for n, p in snapshot.presence.items()},
                             {n: p.reason if p.paused_since else None for n, p in snapshot.presence.items()})

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
