"""Asterisk restarts under a running daemon: it reconnects, reconciles, and records the next call."""

from __future__ import annotations

import asyncio
import signal

import psycopg
import pytest

from hotline.asterisk.ari import AriClient
from hotline.config import load_settings
from hotline.lab import Lab

from support import sipp
from support.checks import rows, wait_until
from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab


def _ari_connections(daemon: DaemonProcess) -> int:
    health = daemon.health()
    assert health is not None, daemon.log()
    return int(health["ari_connections"])


def test_daemon_reconnects_after_asterisk_restart_and_records_the_next_call(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    wait_until(lambda: "hotline running on node" in daemon.log(), what="daemon connected")
    before = _ari_connections(daemon)
    lab.restart_asterisk()
    daemon.wait_registered(timeout_s=30, connections_before=before)
    assert sipp.call("+74951234567").ok
    hops = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")
    assert len(hops) == 1 and hops[0]["end_reason"] == "overflow"
    assert "reconnecting" in daemon.log()


def test_call_cut_by_an_asterisk_restart_leaves_no_open_hop(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    caller = sipp.start_call("+74951234567")
    wait_until(lambda: rows(db, "SELECT id FROM hops"), what="hop opened")
    before = _ari_connections(daemon)
    lab.restart_asterisk()
    daemon.wait_registered(timeout_s=30, connections_before=before)
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    # Asterisk cut the call, not the caller: a failure, never counted as an abandon
    assert (hop["end_reason"], hop["hangup_cause_text"]) == ("failed", "cut by Asterisk shutting down")
    assert rows(db, "SELECT event FROM queue_events WHERE event = 'abandon'") == []
    assert rows(db, "SELECT status FROM cases") == [{"status": "closed"}]
    sipp.finish(caller)


def test_a_caller_who_hung_up_in_line_while_the_daemon_was_away_is_an_abandon(
        daemon: DaemonProcess, db: psycopg.Connection) -> None:
    caller = sipp.start_call("+74951234567", "caller_hangs_up.xml")
    wait_until(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'join'"), what="in line")
    daemon.stop(signal.SIGKILL)
    assert sipp.finish(caller).ok  # the caller hung up while no daemon was there to see it
    daemon.start()
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    # Asterisk keeps a Stasis channel when its daemon goes: only its caller could have ended it
    assert (hop["end_reason"], hop["hangup_cause_text"]) == ("abandoned", "ended while no daemon watched")
    [abandon] = rows(db, "SELECT wait_ms, detail FROM queue_events WHERE event = 'abandon'")
    assert abandon["detail"] == "ended while no daemon watched" and abandon["wait_ms"] > 0
    assert rows(db, "SELECT status FROM cases") == [{"status": "closed"}]


def test_a_call_asterisk_cut_by_restarting_while_the_daemon_was_away_is_failed(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    caller = sipp.start_call("+74951234567")
    wait_until(lambda: rows(db, "SELECT id FROM queue_events WHERE event = 'join'"), what="in line")
    daemon.stop(signal.SIGKILL)
    lab.restart_asterisk()  # the call is cut with it, no daemon watching
    sipp.finish(caller)
    daemon.start()
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert (hop["end_reason"], hop["hangup_cause_text"]) == (
        "failed", "Asterisk restarted while no daemon watched")
    assert rows(db, "SELECT event FROM queue_events WHERE event = 'abandon'") == []  # nobody left by choice


def test_an_empty_case_bridge_left_behind_is_destroyed_when_the_daemon_connects(
        daemon: DaemonProcess, daemon_env: dict[str, str]) -> None:
    async def ari(*steps: str) -> list[str]:
        client = AriClient(load_settings(environ=daemon_env).ari)
        try:
            for step in steps:
                await client.create_bridge(step)
            return [b.id for b in await client.bridges()]
        finally:
            await client.close()

    daemon.stop(signal.SIGKILL)
    assert "case-987654" in asyncio.run(ari("case-987654", "case-987654"))  # made twice: kept once
    daemon.start()
    wait_until(lambda: "empty bridge(s) destroyed" in daemon.log(), what="reconciled")
    assert "case-987654" not in asyncio.run(ari())
