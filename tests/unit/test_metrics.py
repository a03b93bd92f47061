"""The Prometheus metrics: what a scrape reads from the queue manager, the write-behind and the
loop, parsed back as Prometheus parses them, and served on the health endpoint's listener."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from hotline.engine.queueing.queues import QueueManager
from hotline.health import Health, Probes
from hotline.loop_lag import LoopLagMonitor
from hotline.metrics import SCRAPE_WAIT_S, Metrics, Sources
from hotline.provision.model import Agent, Provisioning, Queue
from hotline.store.hops import NewHop
from hotline.store.records import QueueEvent, close_hop_record, queue_event_record, refused_record
from hotline.store.write_behind import WriteBehind

NOW = 1_800_000_000.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """The parts a scrape reads, as a test sets them."""

    def __init__(self, manager: QueueManager | None = None) -> None:
        self.manager = manager or QueueManager(clock=lambda: NOW)
        self.records = WriteBehind(None)  # type: ignore[arg-type]  # never started: nothing is written
        self.callbacks: dict[str, int] | Exception = {}
        self.callback_reads = 0
        self.read_delay_s = 0.0
        self.ari = True
        self.active = True
        self.webhooks: dict[str, int] = {}

    async def callbacks_waiting(self) -> dict[str, int]:
        self.callback_reads += 1
        await asyncio.sleep(self.read_delay_s)
        if isinstance(self.callbacks, Exception):
            raise self.callbacks
        return self.callbacks

    async def webhooks_pending(self) -> dict[str, int]:
        return self.webhooks

    def sources(self) -> Sources:
        return Sources(queues=lambda: self.manager, ended=lambda: self.records.ended,
                       backlog=lambda: self.records.backlog, spooled=lambda: self.records.spooled_records,
                       ari_connected=lambda: self.ari, ari_connections=lambda: 2, ami_connected=lambda: True,
                       callbacks_waiting=self.callbacks_waiting, webhooks_pending=self.webhooks_pending,
                       active=lambda: self.active)


async def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape: (name, sorted labels) -> value."""
    text = (await metrics.render()).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def support_desk() -> QueueManager:
    prov = Provisioning(queues={"support": Queue("support"), "sales": Queue("sales")},
                        agents={"anna": Agent("anna", "anna", queues=(("support", 0), ("sales", 0))),
                                "boris": Agent("boris", "boris", queues=(("support", 0),)),
                                "clara": Agent("clara", "clara", queues=(("sales", 0),))})
    manager = QueueManager(clock=lambda: NOW)
    manager.provision(prov)
    manager.presence({"anna": True, "boris": True, "clara": False}, {"boris": "lunch"})
    return manager


async def test_waiting_callers_and_the_longest_wait_per_queue_come_from_the_queue_manager() -> None:
    manager = support_desk()
    manager.join("support", "early", joined_at=NOW - 95)
    manager.join("support", "late-vip", joined_at=NOW - 10, priority=5)
    manager.join("support", "callback-1-abc", joined_at=NOW - 300)  # a callback request in the line
    m = await scrape(Metrics(Daemon(manager).sources(), LoopLagMonitor()))

    assert m["hotline_queue_callers_waiting", (("queue", "support"),)] == 2
    assert m["hotline_queue_longest_wait_seconds", (("queue", "support"),)] == 95
    assert m["hotline_queue_callers_waiting", (("queue", "sales"),)] == 0
    assert m["hotline_queue_longest_wait_seconds", (("queue", "sales"),)] == 0
    assert not any("early" in str(key) or "vip" in str(key) for key in m)  # no channel in a label


async def test_agents_are_counted_by_state_overall_once_and_per_queue_as_members() -> None:
    m = await scrape(Metrics(Daemon(support_desk()).sources(), LoopLagMonitor()))

    overall = {dict(labels)["state"]: v for (name, labels), v in m.items() if name == "hotline_agents"}
    assert overall == {"free": 1, "paused": 1, "logged_out": 1, "ringing": 0, "busy": 0, "wrapup": 0,
                       "unavailable": 0}
    support = {dict(labels)["state"]: v for (name, labels), v in m.items()
               if name == "hotline_queue_agents" and dict(labels)["queue"] == "support"}
    assert (support["free"], support["paused"], support["logged_out"]) == (1, 1, 0)
    assert m["hotline_queue_agents", (("queue", "sales"), ("state", "logged_out"))] == 1


async def test_ended_calls_count_each_hop_closed_by_its_reason_and_every_reason_starts_at_zero() -> None:
    daemon = Daemon()
    metrics = Metrics(daemon.sources(), LoopLagMonitor())
    before = await scrape(metrics)
    assert before["hotline_calls_ended_total", (("reason", "completed"),)] == 0
    assert before["hotline_calls_ended_total", (("reason", "callback"),)] == 0

    daemon.records.submit(queue_event_record(QueueEvent(1, 1, 1, "join")))  # not an end
    daemon.records.submit(close_hop_record(1, "completed", cause=16))
    daemon.records.submit(close_hop_record(2, "abandoned"))
    daemon.records.submit(close_hop_record(3, "completed"))
    hop = NewHop(node="n", channel_id="c", channel_name="PJSIP/x", channel_kind="sip", media="audio",
                 dialled="100", dialled_e164=None, caller_num="+4930123", caller_name="",
                 entered_at=datetime.now(UTC))
    daemon.records.submit(refused_record(hop, "+4930123", "busy", 17, "User busy"))
    after = await scrape(metrics)

    ended = {dict(labels)["reason"]: v for (name, labels), v in after.items()
             if name == "hotline_calls_ended_total"}
    assert (ended["completed"], ended["abandoned"], ended["busy"], ended["failed"]) == (2, 1, 1, 0)
    assert after["hotline_write_behind_backlog_records", ()] == 5  # never written: no database here
    assert after["hotline_write_behind_spooled_records", ()] == 0


async def test_connections_build_and_loop_lag_are_exported() -> None:
    daemon = Daemon()
    lag = LoopLagMonitor()
    metrics = Metrics(daemon.sources(), lag)
    lag.on_sample = metrics.lag.observe
    for lag_s in (0.0004, 0.003, 0.3):
        lag.add(time.monotonic(), lag_s)
    m = await scrape(metrics)

    assert m["hotline_ari_connected", ()] == 1 and m["hotline_ami_connected", ()] == 1
    assert m["hotline_ari_connections_total", ()] == 2
    assert [k for k in m if k[0] == "hotline_build_info"] == [
        ("hotline_build_info", (("version", __import__("hotline").__version__),))]
    assert m["hotline_event_loop_lag_seconds_count", ()] == 3
    assert m["hotline_event_loop_lag_seconds_bucket", (("le", "0.001"),)] == 1
    assert m["hotline_event_loop_lag_seconds_bucket", (("le", "0.005"),)] == 2
    assert m["hotline_event_loop_lag_max_seconds", ()] == 0.3
    daemon.ari = False
    assert (await scrape(metrics))["hotline_ari_connected", ()] == 0


async def test_callbacks_pending_per_queue_are_read_at_most_every_few_seconds() -> None:
    daemon = Daemon(support_desk())
    daemon.callbacks = {"sales": 3}
    metrics = Metrics(daemon.sources(), LoopLagMonitor())
    m = await scrape(metrics)
    assert m["hotline_callbacks_pending", (("queue", "sales"),)] == 3
    assert m["hotline_callbacks_pending", (("queue", "support"),)] == 0
    await scrape(metrics)
    assert daemon.callback_reads == 1  # the second scrape, a moment later, asked nothing


async def test_a_hung_database_delays_a_scrape_a_second_at_most_and_its_late_answer_lands_next() -> None:
    daemon = Daemon(support_desk())
    daemon.callbacks, daemon.read_delay_s = {"support": 4}, SCRAPE_WAIT_S + 0.5
    metrics = Metrics(daemon.sources(), LoopLagMonitor())
    started = time.monotonic()
    m = await scrape(metrics)
    assert time.monotonic() - started < SCRAPE_WAIT_S + 0.4
    assert not [k for k in m if k[0] == "hotline_callbacks_pending"]  # unknown: absent, not 0
    assert m["hotline_queue_callers_waiting", (("queue", "support"),)] == 0  # the rest is there

    await asyncio.sleep(0.7)  # the read finishes after the scrape gave up on it
    m = await scrape(metrics)
    assert m["hotline_callbacks_pending", (("queue", "support"),)] == 4
    await metrics.close()


async def test_a_database_away_keeps_the_last_count_until_it_is_a_minute_old() -> None:
    daemon = Daemon(support_desk())
    daemon.callbacks = {"support": 1}
    metrics = Metrics(daemon.sources(), LoopLagMonitor())
    await scrape(metrics)
    daemon.callbacks = OSError("connection refused")
    metrics.callbacks.every_s = 0  # read again at the next scrape
    m = await scrape(metrics)
    assert daemon.callback_reads == 2
    assert m["hotline_callbacks_pending", (("queue", "support"),)] == 1
    assert metrics.callbacks.read_at is not None
    metrics.callbacks.read_at -= 61
    assert not [k for k in await scrape(metrics) if k[0] == "hotline_callbacks_pending"]


async def test_metrics_are_served_beside_health_on_its_listener_in_prometheus_text_format() -> None:
    daemon = Daemon(support_desk())
    metrics = Metrics(daemon.sources(), LoopLagMonitor())

    async def database() -> None:
        return None

    probes = Probes(ari_connected=lambda: True, ami_connected=lambda: True, ari_connections=lambda: 1,
                    backlog=lambda: 0, check_database=database)
    health = Health(probes, LoopLagMonitor(), metrics=metrics.render)
    port = free_port()
    await health.start("127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            text = await resp.text()
    finally:
        await health.close()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"hotline_queue_callers_waiting", "hotline_calls_ended", "process_cpu_seconds"} <= names


async def test_without_metrics_the_health_listener_has_no_metrics_route() -> None:
    async def database() -> None:
        return None

    health = Health(Probes(ari_connected=lambda: True, ami_connected=lambda: True, ari_connections=lambda: 1,
                           backlog=lambda: 0, check_database=database), LoopLagMonitor())
    port = free_port()
    await health.start("127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 404
    finally:
        await health.close()



async def test_the_webhook_outbox_backlog_per_webhook() -> None:
    daemon = Daemon()
    daemon.webhooks = {"crm": 7, "audit": 0}
    metrics = Metrics(daemon.sources(), LoopLagMonitor())
    m = await scrape(metrics)
    assert m["hotline_webhook_deliveries_pending", (("webhook", "crm"),)] == 7
    assert m["hotline_webhook_deliveries_pending", (("webhook", "audit"),)] == 0
    await metrics.close()


async def test_hotline_active_is_1_on_the_active_daemon_and_0_on_a_standby() -> None:
    daemon = Daemon()
    metrics = Metrics(daemon.sources(), LoopLagMonitor())
    assert (await scrape(metrics))["hotline_active", ()] == 1
    daemon.active = False
    assert (await scrape(metrics))["hotline_active", ()] == 0
    await metrics.close()
