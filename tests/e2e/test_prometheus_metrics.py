"""`GET /metrics` of a running daemon, scraped as Prometheus scrapes it, while a real call waits
in a queue, is answered by a sipp agent phone and ends."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hotline.lab import Lab
from hotline.metrics import CALLBACKS_EVERY_S, SCRAPE_WAIT_S
from hotline.store.db import APPLICATION_NAME

from support import sipp
from support.agents import Agent, logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

QUEUE_NUMBER = "84950003311"
QUEUED = BASE + """
[queues.metered]
ring_timeout = 5
retry = 1
ringback = 1

[hotlines.metered]
entry = "queue:metered"

[numbers."+74950003311"]
hotline = "metered"
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(daemon: DaemonProcess) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(daemon.metrics()) for s in family.samples}


def completed(daemon: DaemonProcess) -> float:
    return scrape(daemon)["hotline_calls_ended_total", (("reason", "completed"),)]


@pytest.fixture
def agent(daemon: DaemonProcess, daemon_env: dict[str, str], tmp_path: Path, lab: Lab,
          rendered_files_removed_afterwards: Path) -> Agent:
    """An agent of queue `metered`, logged in; its phone not registered yet."""
    return logged_in_agents(daemon_env, tmp_path, "m", {"metered": 0})[0]


@pytest.mark.provision(QUEUED)
def test_a_waiting_caller_shows_in_the_gauges_and_the_answered_call_counts_as_completed_once(
        agent: Agent, daemon: DaemonProcess, lab: Lab, db: psycopg.Connection) -> None:
    before = scrape(daemon)
    assert before["hotline_ari_connected", ()] == 1 and before["hotline_ami_connected", ()] == 1
    assert before["hotline_queue_callers_waiting", (("queue", "metered"),)] == 0
    assert before["hotline_callbacks_pending", (("queue", "metered"),)] == 0  # the database answered
    ended_before = before["hotline_calls_ended_total", (("reason", "completed"),)]

    caller = sipp.start_call(QUEUE_NUMBER, "caller_hangs_up.xml", hold_ms=9000)
    waiting = wait_until(lambda: m if (m := scrape(daemon))[
        "hotline_queue_longest_wait_seconds", (("queue", "metered"),)] >= 1 else None,
        what="the caller waiting a second in the gauges")
    assert waiting["hotline_queue_callers_waiting", (("queue", "metered"),)] == 1
    # Logged in, its phone not registered: nobody to ring, so the caller waits.
    assert waiting["hotline_queue_agents", (("queue", "metered"), ("state", "unavailable"))] == 1
    assert completed(daemon) == ended_before

    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=300)
    wait_until(lambda: registered(lab, agent.name) or phone.poll() is not None, what="agent phone registered")
    wait_until(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'answer'"), what="answered")
    talking = scrape(daemon)
    assert talking["hotline_queue_callers_waiting", (("queue", "metered"),)] == 0
    assert talking["hotline_agents", (("state", "busy"),)] >= 1

    caller_run = sipp.finish(caller)
    assert caller_run.ok, caller_run.output[:2500]
    assert sipp.finish(phone).ok
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "completed"
    assert completed(daemon) == ended_before + 1
    after = scrape(daemon)
    assert after["hotline_calls_ended_total", (("reason", "abandoned"),)] == \
        before["hotline_calls_ended_total", (("reason", "abandoned"),)]
    assert after["hotline_write_behind_backlog_records", ()] == 0  # everything committed
    lag_samples = "hotline_event_loop_lag_seconds_count", ()
    assert after[lag_samples] > before[lag_samples]


def test_with_the_database_away_scrapes_answer_within_their_bound_and_count_the_backlog(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    before = scrape(daemon)  # the callbacks counted while the database answers
    ended_before = sum(v for (name, _), v in before.items() if name == "hotline_calls_ended_total")
    caller = sipp.start_call("+74951234567", "caller_hangs_up.xml", hold_ms=1500)
    wait_until(lambda: rows(db, "SELECT id FROM hops"), what="hop opened")
    slowest = 0.0

    def timed_scrape() -> Samples:
        nonlocal slowest
        started = time.monotonic()
        samples = scrape(daemon)
        slowest = max(slowest, time.monotonic() - started)
        return samples

    with lab.database_cut_off(db.info.dbname, APPLICATION_NAME):
        assert sipp.finish(caller).ok  # the call ends during the outage: its records wait
        during = wait_until(lambda: m if (m := timed_scrape())["hotline_write_behind_backlog_records", ()] > 0
                            else None, what="the call's records waiting")
        time.sleep(CALLBACKS_EVERY_S)
        during = timed_scrape()  # asks the database for the callbacks again, in vain
    ended = sum(v for (name, _), v in during.items() if name == "hotline_calls_ended_total")
    assert ended == ended_before + 1 and during["hotline_write_behind_backlog_records", ()] > 0
    assert [k for k in during if k[0] == "hotline_callbacks_pending"]  # the last count, under a minute old
    assert slowest < SCRAPE_WAIT_S + 1.5, slowest  # the database's wait, and the loaded machine's
    wait_until(lambda: scrape(daemon)["hotline_write_behind_backlog_records", ()] == 0, timeout_s=30,
               what="the backlog written once the database is back")
