"""Faults under load: 10 calls/s through a queue of sipp agent phones while one part fails.

The faults themselves are bench/faults.py's (`make faults` runs them longer, with the issue's 30 s
outage); each test runs one on a queue lab of its own (its database, its
daemon) and fails with everything that went wrong: hops against calls, open hops, duplicated
queue events, channels or bridges left in Asterisk, calls cut, and the fault's own promise."""

from __future__ import annotations

import pytest

from bench.faults import Load, run_fault
from hotline.lab import Lab

# serial: each asserts what load does to the daemon; `make test` runs them after the parallel phase.
pytestmark = [pytest.mark.lab, pytest.mark.serial, pytest.mark.timeout(240)]


def test_daemon_sigkilled_under_load_keeps_its_calls_and_serves_again_within_5_s(lab: Lab) -> None:
    verdict = run_fault("daemon-kill", Load(rate=10, seconds=12))
    assert not verdict.problems, verdict.report()


def test_slow_database_under_load_leaves_the_routing_latency_as_it_was(lab: Lab) -> None:
    verdict = run_fault("slow-db", Load(rate=10, seconds=14), delay_ms=200)
    assert not verdict.problems, verdict.report()


def test_database_away_for_15_s_under_load_calls_flow_and_every_record_arrives(lab: Lab) -> None:
    verdict = run_fault("db-outage", Load(rate=10, seconds=25), outage_s=15)
    assert not verdict.problems, verdict.report()


def test_asterisk_restarted_under_load_cut_calls_are_failed_and_new_calls_served_within_10_s(
        lab: Lab) -> None:
    verdict = run_fault("asterisk-restart", Load(rate=10, seconds=12))
    assert not verdict.problems, verdict.report()
