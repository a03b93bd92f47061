"""The first vertical slice through the real lab: sipp -> Asterisk -> Stasis -> daemon -> PostgreSQL."""

from __future__ import annotations

import signal

import psycopg
import pytest

from support import sipp
from support.checks import rows, wait_until
from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab


def test_sipp_call_leaves_one_case_and_one_closed_hop_with_the_right_fields(daemon: DaemonProcess,
                                                                            db: psycopg.Connection) -> None:
    run = sipp.call("84951234567", caller="89165551234", caller_name="Ivan Petrov")
    assert run.ok, run.output  # answered, then Asterisk hung up (BYE) after the prompt

    hops = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")
    cases = rows(db, "SELECT * FROM cases")
    assert len(cases) == 1 and len(hops) == 1
    hop, case = hops[0], cases[0]
    assert hop["case_id"] == case["id"] and hop["seq"] == 1
    assert hop["dialled"] == "84951234567"
    assert hop["dialled_e164"] == "+74951234567"
    assert hop["channel_kind"] == "pstn" and hop["media"] == "audio"
    assert hop["caller_num"] == "89165551234" and hop["caller_name"] == "Ivan Petrov"
    assert hop["node"] == "lab-node"
    assert hop["channel_name"].startswith("PJSIP/sipp-trunk-")
    assert hop["end_reason"] == "completed"
    assert hop["hangup_cause"] == 16  # normal clearing: the daemon hung up after the prompt
    assert hop["entered_at"] <= hop["ended_at"]
    assert case["customer_key"] == "+79165551234"
    assert case["status"] == "closed" and case["closed_at"] is not None


def test_caller_hanging_up_during_the_prompt_is_recorded_as_abandoned(daemon: DaemonProcess,
                                                                      db: psycopg.Connection) -> None:
    run = sipp.call("+74951234567", "caller_hangs_up.xml")
    assert run.ok, run.output
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "abandoned"
    assert hop["hangup_cause"] == 16


def test_sip_address_call_is_kind_sip_without_e164(daemon: DaemonProcess, db: psycopg.Connection) -> None:
    assert sipp.call("support", caller="alice").ok
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert (hop["dialled"], hop["dialled_e164"], hop["channel_kind"]) == ("support", None, "sip")
    assert rows(db, "SELECT customer_key FROM cases")[0]["customer_key"] == "sip:alice"


def test_daemon_killed_mid_call_adopts_the_call_after_restart(daemon: DaemonProcess,
                                                               db: psycopg.Connection) -> None:
    caller = sipp.start_call("+74951234567")
    wait_until(lambda: rows(db, "SELECT id FROM hops"), what="hop opened")
    daemon.stop(signal.SIGKILL)
    daemon.start()
    run = sipp.finish(caller)
    assert run.ok, run.output  # the caller was never cut: the adopted call ended normally
    hops = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")
    assert len(rows(db, "SELECT * FROM hops")) == 1 and len(rows(db, "SELECT * FROM cases")) == 1
    assert hops[0]["end_reason"] == "completed"


def test_sigterm_stops_the_daemon_cleanly(daemon: DaemonProcess) -> None:
    assert daemon.stop(signal.SIGTERM) == 0
    assert "Traceback" not in daemon.log()
