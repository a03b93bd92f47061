"""`GET /metrics` for Prometheus (and a Grafana dashboard on it: deploy/grafana/).

Served on the health endpoint's listener (health_listen, local by default), never on the public
web pages. Almost everything is read at scrape time from what the daemon holds anyway (the queue
manager, the write-behind, the connections), like the live snapshot supervisors watch: a scrape
costs no database query, except the callbacks not placed yet, which only the database knows. That
one is read at most every few seconds in a task of its own; a scrape waits for it a second at
most and otherwise shows the last answer (none when it is older than a minute), so a dead
database never hangs a scrape.

Labels are queues, agent states and end reasons only: never a number, a channel or a case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from hotline import __version__
from hotline.engine.callback_placer import CALLBACK_LEG
from hotline.engine.queueing.agent_state import AgentStatus
from hotline.engine.queueing.queues import QueueManager, Waiter
from hotline.loop_lag import LoopLagMonitor
from hotline.store.records import END_REASONS

log = logging.getLogger(__name__)

SCRAPE_WAIT_S = 1.0  # the most a scrape waits for the database's answer
CALLBACKS_EVERY_S = 5.0  # the callbacks' count is read at most this often
CALLBACKS_TIMEOUT_S = 3.0  # a read that takes longer is given up
CALLBACKS_STALE_S = 60.0  # an older count is not shown: absent, as Prometheus expects of the unknown
# Event-loop lag, seconds: a sample every 0.1 s (hotline.loop_lag); a healthy loop stays in the first.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
AGENT_STATES = tuple(status.value for status in AgentStatus)


@dataclass(frozen=True)
class Sources:
    """What the daemon tells the metrics, read at each scrape."""

    queues: Callable[[], QueueManager]
    ended: Callable[[], Counter[str]]  # hops closed since the start, by end reason (the write-behind's)
    backlog: Callable[[], int]  # records not yet committed by the write-behind, in memory or spooled
    spooled: Callable[[], int]  # of which in the spool on disk
    ari_connected: Callable[[], bool]
    ari_connections: Callable[[], int]
    ami_connected: Callable[[], bool]
    callbacks_waiting: Callable[[], Awaitable[dict[str, int]]]  # queue -> not placed yet; raises
    webhooks_pending: Callable[[], Awaitable[dict[str, int]]]  # webhook -> deliveries waiting; raises
    active: Callable[[], bool] = lambda: True  # holds the active lock (a standby: False)


class Refreshed:
    """A count the database gives (callbacks pending, webhook deliveries waiting), read in a task
    of its own at most once per `every_s`: scrapes arriving meanwhile share it, and a read that
    outlasts a scrape's patience lands for the next."""

    def __init__(self, read: Callable[[], Awaitable[dict[str, int]]], every_s: float = CALLBACKS_EVERY_S,
                 timeout_s: float = CALLBACKS_TIMEOUT_S) -> None:
        self._read = read
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.value: dict[str, int] | None = None
        self.read_at: float | None = None  # monotonic time of the last successful read
        self._tried_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        now = time.monotonic()
        if self._task is None and (self._tried_at is None or now - self._tried_at >= self.every_s):
            self._tried_at = now
            self._task = asyncio.create_task(self._run(), name="metrics-callbacks")
        if self._task is not None:
            await asyncio.shield(self._task)

    def fresh(self, stale_s: float = CALLBACKS_STALE_S) -> dict[str, int] | None:
        if self.read_at is None or time.monotonic() - self.read_at > stale_s:
            return None
        return self.value

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                self.value = await self._read()
            self.read_at = time.monotonic()
        except Exception as exc:  # the database away: the count goes stale, the scrape goes on
            log.debug("callbacks not counted for the metrics: %s", exc)
        finally:
            self._task = None


class HotlineCollector(Collector):
    """The daemon's own metrics, computed at each scrape."""

    def __init__(self, sources: Sources, callbacks: Refreshed, lag: LoopLagMonitor,
                 webhooks: Refreshed | None = None) -> None:
        self.sources = sources
        self.callbacks = callbacks
        self.webhooks = webhooks
        self.lag = lag

    def collect(self) -> Iterable[Metric]:
        s = self.sources
        yield InfoMetricFamily("hotline_build", "The running hotline's version.",
                               value={"version": __version__})
        ended = CounterMetricFamily("hotline_calls_ended", "Hops (a caller's legs: each transfer "
                                    "starts one) the daemon closed since it started, by end reason.",
                                    labels=["reason"])
        counts = s.ended()
        for reason in sorted(END_REASONS | set(counts)):
            ended.add_metric([reason], counts.get(reason, 0))
        yield ended
        yield from self._queues(s.queues())
        yield _gauge("hotline_write_behind_backlog_records",
                     "Call records not yet committed to the database, in memory or spooled.", s.backlog())
        yield _gauge("hotline_write_behind_spooled_records",
                     "Of those, records in the spool on disk (written once the database is back).",
                     s.spooled())
        yield _gauge("hotline_event_loop_lag_max_seconds",
                     f"The event loop's longest lag in the last {self.lag.window_s:.0f} s.",
                     self.lag.summary().max_ms / 1000)
        yield _gauge("hotline_active", "1 while this daemon is the active one (holds the active lock, "
                     "serves calls and pages); 0 while it is a hot standby.", int(s.active()))
        yield _gauge("hotline_ari_connected", "1 while the ARI events WebSocket is connected.",
                     int(s.ari_connected()))
        yield CounterMetricFamily("hotline_ari_connections", "ARI connections made since the start "
                                  "(more than one: it reconnected).", value=s.ari_connections())
        yield _gauge("hotline_ami_connected", "1 while the AMI session is connected.", int(s.ami_connected()))
        waiting = GaugeMetricFamily("hotline_callbacks_pending", "Callback requests not placed yet "
                                    "(pending or being placed), per queue; absent when the database "
                                    "has not answered for a minute.", labels=["queue"])
        counted = self.callbacks.fresh()
        if counted is not None:
            for queue in sorted(set(s.queues().queues) | set(counted)):
                waiting.add_metric([queue], counted.get(queue, 0))
        yield waiting
        backlog = GaugeMetricFamily("hotline_webhook_deliveries_pending", "Contact events waiting to "
                                    "be delivered, per webhook (the outbox's backlog); absent when the "
                                    "database has not answered for a minute.", labels=["webhook"])
        pending = self.webhooks.fresh() if self.webhooks is not None else None
        for webhook, n in sorted((pending or {}).items()):
            backlog.add_metric([webhook], n)
        yield backlog

    @staticmethod
    def _queues(manager: QueueManager) -> Iterable[Metric]:
        now = manager.clock()
        callers = GaugeMetricFamily("hotline_queue_callers_waiting", "Callers waiting in the queue's "
                                    "line now (ringing an agent included; callback requests not).",
                                    labels=["queue"])
        longest = GaugeMetricFamily("hotline_queue_longest_wait_seconds", "How long the queue's "
                                    "longest-waiting caller has waited (0: nobody waits).", labels=["queue"])
        members = GaugeMetricFamily("hotline_queue_agents", "The queue's member agents by state.",
                                    labels=["queue", "state"])
        for queue in sorted(manager.queues):
            line = [w for w in manager.waiting.get(queue, []) if not _is_callback(w)]
            callers.add_metric([queue], len(line))
            longest.add_metric([queue], max((now - w.joined_at for w in line), default=0.0))
            states = Counter(manager.agents[name].status(now).value
                             for name, _ in manager.members.get(queue, []) if name in manager.agents)
            for state in AGENT_STATES:
                members.add_metric([queue, state], states[state])
        yield callers
        yield longest
        yield members
        agents = GaugeMetricFamily("hotline_agents", "Agents by state (each agent once, whatever its "
                                   "queues).", labels=["state"])
        states = Counter(agent.status(now).value for agent in manager.agents.values())
        for state in AGENT_STATES:
            agents.add_metric([state], states[state])
        yield agents


class Metrics:
    """The daemon's registry: its own metrics, the event loop's lag histogram, and the process's."""

    def __init__(self, sources: Sources, lag: LoopLagMonitor) -> None:
        self.registry = CollectorRegistry()
        self.callbacks = Refreshed(sources.callbacks_waiting)
        self.webhooks = Refreshed(sources.webhooks_pending)
        self.registry.register(HotlineCollector(sources, self.callbacks, lag, self.webhooks))
        self.lag = Histogram("hotline_event_loop_lag_seconds", "How late the event loop woke from a "
                             "0.1 s sleep (every call's events wait as long).", buckets=LAG_BUCKETS,
                             registry=self.registry)
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(standard)

    async def render(self) -> bytes:
        """The text a scrape gets; waits for the database's answer `SCRAPE_WAIT_S` at most."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SCRAPE_WAIT_S):
                await asyncio.gather(self.callbacks.refresh(), self.webhooks.refresh())
        return generate_latest(self.registry)

    async def close(self) -> None:
        await self.callbacks.close()
        await self.webhooks.close()


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _is_callback(waiter: Waiter) -> bool:
    """A callback request standing in the line (its placement's channel), not a caller on hold."""
    return waiter.channel_id.startswith(CALLBACK_LEG)
