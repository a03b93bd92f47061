"""What `/api/queues` tells a wallboard: the counts of each queue, and its line in the order it is
served, with each caller's priority (LivePublisher.queues_json, from the queue manager itself)."""

from __future__ import annotations

from hotline.engine.directory import Directory, Snapshot
from hotline.engine.live import LivePublisher
from hotline.engine.queueing.queues import QueueManager
from hotline.provision.model import Agent, Provisioning, Queue


def test_the_line_is_in_serving_order_with_each_callers_priority_and_no_number() -> None:
    prov = Provisioning(queues={"support": Queue("support"), "sales": Queue("sales")},
                        agents={"anna": Agent("anna", "anna", queues=(("support", 0),))})
    now = [1_800_000_000.0]
    manager = QueueManager(clock=lambda: now[0])
    manager.provision(prov)
    directory = Directory("")
    directory.snapshot = Snapshot(prov, {"queues": {"support": 1, "sales": 2}, "agents": {"anna": 5}})
    manager.join("support", "early-plain", joined_at=now[0] - 60)
    manager.join("support", "late-vip", joined_at=now[0] - 10, priority=7)
    publisher = LivePublisher(None, manager, directory)  # type: ignore[arg-type]  # no database here

    support, sales = publisher.queues_json()
    assert (support["queue"], support["waiting"]) == ("support", 2)
    assert (sales["queue"], sales["line"]) == ("sales", [])
    assert support["line"] == [
        {"position": 1, "priority": 7, "waiting_since": "2027-01-15T07:59:50+00:00", "ringing": False},
        {"position": 2, "priority": 0, "waiting_since": "2027-01-15T07:59:00+00:00", "ringing": False}]
    assert support["longest_waiting_since"] == "2027-01-15T07:59:00+00:00"
    assert "early-plain" not in str(support)  # no channel ids, no numbers
