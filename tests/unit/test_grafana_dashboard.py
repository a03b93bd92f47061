"""The sample Grafana dashboard (deploy/grafana/hotline-dashboard.json) queries only metrics the
daemon exports: a renamed metric breaks this test, not an operator's wallboard."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from hotline.engine.queueing.queues import QueueManager
from hotline.loop_lag import LoopLagMonitor
from hotline.metrics import Metrics, Sources
from hotline.provision.model import Provisioning, Queue

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "hotline-dashboard.json"
METRIC = re.compile(r"\bhotline_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "info": ("_info",)}


def exported_names() -> set[str]:
    """Every series name the daemon's registry can expose (a family without samples included)."""
    manager = QueueManager()
    manager.provision(Provisioning(queues={"support": Queue("support")}))

    async def no_callbacks() -> dict[str, int]:
        return {}

    metrics = Metrics(Sources(queues=lambda: manager, ended=Counter, backlog=lambda: 0,
                              spooled=lambda: 0, ari_connected=lambda: True, ari_connections=lambda: 1,
                              ami_connected=lambda: True, callbacks_waiting=no_callbacks,
                              webhooks_pending=no_callbacks), LoopLagMonitor())
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def queries(node: object) -> list[str]:
    """Every PromQL expression in the dashboard: the panels' targets and the variables' queries."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(queries(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(queries(item))
    return found


def test_every_metric_the_dashboard_queries_is_exported_by_the_daemon() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = {name for expr in queries(dashboard) for name in METRIC.findall(expr)}
    assert len(used) >= 10  # the panels were found at all
    assert used - exported_names() == set()


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(queries(dashboard))
    for shown in ("hotline_queue_callers_waiting", "hotline_queue_longest_wait_seconds", "hotline_agents",
                  "rate(hotline_calls_ended_total", "hotline_event_loop_lag_seconds_bucket",
                  "hotline_write_behind_backlog_records"):
        assert shown in exprs
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
               for panel in dashboard["panels"])
