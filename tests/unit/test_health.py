"""The health endpoint's verdicts and its database check, over real HTTP on a free port."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from hotline.errors import HotlineError
from hotline.health import DatabaseCheck, Health, Probes
from hotline.loop_lag import LoopLagMonitor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Parts:
    """The daemon's parts as the health endpoint sees them, switched on and off by a test."""

    def __init__(self) -> None:
        self.ari = self.ami = self.db = True
        self.backlog = 0
        self.db_checks = 0
        self.standing_by: str | None = None  # a standby: the active daemon it names

    async def check_database(self) -> None:
        self.db_checks += 1
        if not self.db:
            raise OSError("connection refused")

    def probes(self) -> Probes:
        return Probes(ari_connected=lambda: self.ari, ami_connected=lambda: self.ami,
                      ari_connections=lambda: 1, backlog=lambda: self.backlog,
                      check_database=self.check_database, standing_by=lambda: self.standing_by)


async def get(port: int) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/health") as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(("ari", "ami", "db", "http", "status"), [
    (True, True, True, 200, "ok"),
    (True, False, True, 200, "degraded"),  # calls are served; agents' phone states go stale
    (True, True, False, 200, "degraded"),  # calls are served from the snapshot, records wait
    (False, True, True, 503, "down"),  # no call reaches this daemon
])
async def test_health_answers_what_serving_calls_depends_on(ari: bool, ami: bool, db: bool, http: int,
                                                            status: str) -> None:
    parts = Parts()
    parts.ari, parts.ami, parts.db, parts.backlog = ari, ami, db, 7
    health = Health(parts.probes(), LoopLagMonitor())
    port = free_port()
    await health.start("127.0.0.1", port)
    try:
        code, body = await get(port)
    finally:
        await health.close()
    assert code == http
    assert body["status"] == status
    assert (body["ari_connected"], body["ami_connected"], body["database_reachable"]) == (ari, ami, db)
    assert body["write_behind_backlog"] == 7
    assert ("database_error" in body) is (not db)


@pytest.mark.parametrize(("active", "named"), [("4242@host-a from 10.0.0.5 since ...", True), ("", False)])
async def test_a_standby_answers_503_standby_naming_the_active_daemon(active: str, named: bool) -> None:
    parts = Parts()
    parts.ari = parts.ami = False  # a standby opens neither
    parts.standing_by = active
    health = Health(parts.probes(), LoopLagMonitor())
    port = free_port()
    await health.start("127.0.0.1", port)
    try:
        code, body = await get(port)
        parts.standing_by, parts.ari, parts.ami = None, True, True  # it took over
        taken_code, taken = await get(port)
    finally:
        await health.close()
    assert code == 503  # a load balancer skips it, as it skips a daemon that is down
    assert (body["status"], body["role"], body["database_reachable"]) == ("standby", "standby", True)
    assert body["active"] == (active if named else None)  # null: nobody holds the lock this moment
    assert (taken_code, taken["status"], taken["role"]) == (200, "ok", "active")
    assert "active" not in taken


async def test_a_burst_of_probes_makes_one_database_check() -> None:
    parts = Parts()
    check = DatabaseCheck(parts.check_database, ttl_s=60)
    errors = await asyncio.gather(*(check.error() for _ in range(50)))
    assert errors == [None] * 50 and parts.db_checks == 1
    assert await check.error() is None and parts.db_checks == 1  # cached


async def test_the_database_check_is_repeated_after_its_ttl_and_sees_the_outage() -> None:
    parts = Parts()
    check = DatabaseCheck(parts.check_database, ttl_s=0.05)
    assert await check.error() is None
    parts.db = False
    await asyncio.sleep(0.06)
    assert await check.error() == "connection refused"


async def test_a_hung_database_is_reported_after_the_timeout_not_waited_for() -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)
    check = DatabaseCheck(hangs, timeout_s=0.05)
    assert await asyncio.wait_for(check.error(), 1) == "no answer within 0.05 s"


async def test_a_taken_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        health = Health(Parts().probes(), LoopLagMonitor())
        with pytest.raises(HotlineError, match="health_listen"):
            await health.start("127.0.0.1", taken.getsockname()[1])


def test_loop_lag_keeps_the_last_minute_and_reports_p99_and_max() -> None:
    lag = LoopLagMonitor(window_s=60)
    lag.add(0.0, 5.0)  # an old stall, out of the window by the end
    for i in range(100):
        lag.add(100.0 + i * 0.1, 0.001 * (i + 1))
    summary = lag.summary()
    assert summary.samples == 100
    assert summary.max_ms == 100.0 and summary.p99_ms == 99.0


async def test_loop_lag_monitor_measures_a_blocked_loop() -> None:
    lag = LoopLagMonitor(interval_s=0.01)
    lag.start()
    await asyncio.sleep(0.03)
    time.sleep(0.2)  # the loop is held, as a slow handler would hold it
    await asyncio.sleep(0.03)
    await lag.close()
    assert lag.summary().max_ms >= 150
