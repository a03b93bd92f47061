"""`GET /health` for a load balancer or a supervisor: can this daemon serve calls now?

"ok" (200): ARI, AMI and the database are connected. "degraded" (200): ARI is connected, so calls
are served, but AMI (agents' phone states go stale) or the database is away (calls are served
from the snapshot and their records wait in the write-behind). "down" (503): no ARI connection,
so no call reaches this daemon; also while it starts and after it began to stop. "standby" (503,
with the active daemon named in "active"): a healthy hot standby waiting for the active lock
(hotline.store.active_lock); a load balancer skips it as it skips "down", monitoring tells them
apart by the body. Every body says the daemon's "role": active or standby.

The same listener serves `GET /metrics` for Prometheus (hotline.metrics): both are for the
operator's own systems, never for the public the web pages face."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from hotline.errors import HotlineError
from hotline.loop_lag import LoopLagMonitor

log = logging.getLogger(__name__)

DB_CHECK_TTL_S = 2.0  # one database check answers every probe for this long
DB_CHECK_TIMEOUT_S = 1.5


@dataclass(frozen=True)
class Probes:
    """What the daemon tells the health endpoint, read at each request."""

    ari_connected: Callable[[], bool]
    ari_connections: Callable[[], int]  # connections made since the start: a reconnect counts
    ami_connected: Callable[[], bool]
    backlog: Callable[[], int]  # records not yet committed by the write-behind
    check_database: Callable[[], Awaitable[None]]  # raises when the database does not answer
    # While this daemon is a standby: the active daemon it waits for ("" when none is seen); None
    # once it is active (or stopping).
    standing_by: Callable[[], str | None] = lambda: None


class DatabaseCheck:
    """The database's reachability, checked at most once per `ttl_s`: probes arriving while a
    check runs share it, so a burst of probes (or a hung database) never piles up queries."""

    def __init__(self, check: Callable[[], Awaitable[None]], ttl_s: float = DB_CHECK_TTL_S,
                 timeout_s: float = DB_CHECK_TIMEOUT_S) -> None:
        self._check = check
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._result: tuple[float, str | None] | None = None  # (when, error or None)
        self._running: asyncio.Task[str | None] | None = None

    async def error(self) -> str | None:
        """None when the database answered, else why not."""
        if self._result is not None and time.monotonic() - self._result[0] < self.ttl_s:
            return self._result[1]
        if self._running is None:
            self._running = asyncio.create_task(self._run(), name="health-database")
        return await asyncio.shield(self._running)

    async def close(self) -> None:
        if self._running is not None:
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)
            self._running = None

    async def _run(self) -> str | None:
        try:
            await asyncio.wait_for(self._check(), self.timeout_s)
            error = None
        except TimeoutError:
            error = f"no answer within {self.timeout_s} s"
        except Exception as exc:  # any failure of the check is the answer, never the endpoint's
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        self._result = (time.monotonic(), error)
        self._running = None
        return error


class Health:
    def __init__(self, probes: Probes, lag: LoopLagMonitor,
                 metrics: Callable[[], Awaitable[bytes]] | None = None) -> None:
        self.probes = probes
        self.metrics = metrics  # what GET /metrics answers (Prometheus' text format)
        self.lag = lag
        self.database = DatabaseCheck(probes.check_database)
        self.runner: web.AppRunner | None = None

    async def report(self) -> tuple[int, dict[str, object]]:
        """The HTTP status and the JSON body of one probe."""
        ari, ami = self.probes.ari_connected(), self.probes.ami_connected()
        db_error = await self.database.error()
        active = self.probes.standing_by()
        status = ("standby" if active is not None else "down" if not ari
                  else "ok" if ami and db_error is None else "degraded")
        lag = self.lag.summary()
        body: dict[str, object] = {
            "status": status, "role": "active" if active is None else "standby",
            "ari_connected": ari, "ari_connections": self.probes.ari_connections(),
            "ami_connected": ami,
            "database_reachable": db_error is None, "write_behind_backlog": self.probes.backlog(),
            "loop_lag_ms": {"p99": lag.p99_ms, "max": lag.max_ms, "window_s": self.lag.window_s},
        }
        if db_error is not None:
            body["database_error"] = db_error
        if active is not None:
            body["active"] = active or None  # null: no daemon holds the lock now (one takes it soon)
        return (503 if status in ("down", "standby") else 200), body

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/health", self._handle)
        if self.metrics is not None:
            app.router.add_get("/metrics", self._handle_metrics)
        runner = web.AppRunner(app, access_log=None)  # a probe a second would drown the log
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise HotlineError(f"the health endpoint cannot listen on {host}:{port}: "
                               f"{exc.strerror or exc} (set health_listen to a free host:port, "
                               "or to empty to turn it off)") from exc
        self.runner = runner
        log.info("health endpoint on http://%s:%s/health%s", host, port,
                 f" (Prometheus: http://{host}:{port}/metrics)" if self.metrics is not None else "")

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await self.database.close()

    async def _handle(self, request: web.Request) -> web.Response:
        status, body = await self.report()
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        assert self.metrics is not None
        return web.Response(body=await self.metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                                "Cache-Control": "no-store"})
