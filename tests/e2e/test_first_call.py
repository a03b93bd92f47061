"""The first vertical slice through the real lab: sipp -> Asterisk -> Stasis -> daemon -> PostgreSQL."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab

from support import sipp
from support.checks import rows, wait_until
from support.daemon import DaemonProcess, ari_get
from support.provisioning import BASE, closed_today, provision

pytestmark = pytest.mark.lab


def test_sipp_call_leaves_one_case_and_one_closed_hop_with_the_right_fields(daemon: DaemonProcess,
                                                                            db: psycopg.Connection) -> None:
    run = sipp.call("84951234567", caller="89165551234", caller_name="Ivan Petrov")
    assert run.ok, run.output  # answered, queued, then hung up by Asterisk (BYE) on overflow

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
    assert hop["end_reason"] == "overflow"  # nobody in the queue: max wait, then hang-up
    assert hop["hangup_cause"] == 16  # normal clearing: the daemon hung up
    assert hop["line"] == 1
    assert hop["number_id"] == rows(db, "SELECT id FROM numbers WHERE number = '+74951234567'")[0]["id"]
    assert hop["hotline_id"] == rows(db, "SELECT id FROM hotlines WHERE name = 'city'")[0]["id"]
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
    assert hops[0]["end_reason"] == "overflow"


def test_sigterm_stops_the_daemon_cleanly(daemon: DaemonProcess) -> None:
    assert daemon.stop(signal.SIGTERM) == 0
    assert "Traceback" not in daemon.log()


def test_unknown_number_hears_it_is_not_in_service_and_the_hop_fails(daemon: DaemonProcess,
                                                                     db: psycopg.Connection) -> None:
    assert sipp.call("84991112233").ok  # answered, told, hung up by Asterisk
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "failed"
    assert (hop["number_id"], hop["hotline_id"], hop["line"]) == (None, None, None)
    assert hop["dialled_e164"] == "+74991112233"


def test_second_caller_on_a_single_line_number_gets_busy(daemon: DaemonProcess,
                                                         db: psycopg.Connection) -> None:
    first = sipp.start_call("84951234567")
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE line = 1 AND ended_at IS NULL"),
               what="line 1 held")
    second = sipp.call("84951234567", "caller_expects_busy.xml", caller="89160000002")
    assert second.ok, second.output  # 486 Busy Here, before any answer
    assert sipp.finish(first).ok
    hops = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL ORDER BY id")
                      if len(rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL")) == 2 else None,
                      what="both hops closed")
    busy = next(h for h in hops if h["end_reason"] == "busy")
    served = next(h for h in hops if h["end_reason"] == "overflow")
    assert (served["line"], busy["line"]) == (1, None)
    assert busy["number_id"] == served["number_id"] is not None
    assert (busy["hangup_cause"], busy["caller_num"]) == (17, "89160000002")
    assert rows(db, "SELECT count(*) AS n FROM cases WHERE status = 'closed'") == [{"n": 2}]


def test_the_third_caller_on_a_two_line_number_gets_busy_and_the_lines_come_back(
        daemon: DaemonProcess, db: psycopg.Connection) -> None:
    callers = [sipp.start_call("84957654321", caller=f"8916000000{i}") for i in (1, 2)]
    wait_until(lambda: len(rows(db, "SELECT id FROM hops WHERE ended_at IS NULL")) == 2, what="2 lines held")
    assert sipp.call("84957654321", "caller_expects_busy.xml").ok
    assert all(sipp.finish(c).ok for c in callers)
    overflowed = "SELECT line FROM hops WHERE end_reason = 'overflow' ORDER BY line"
    served = wait_until(lambda: r if len(r := rows(db, overflowed)) == 2 else None, what="both calls")
    assert [r["line"] for r in served] == [1, 2]
    wait_until(lambda: not rows(db, "SELECT id FROM hops WHERE ended_at IS NULL"), what="lines free")
    assert sipp.call("84957654321").ok  # a line is free again after the calls ended
    assert rows(db, "SELECT line FROM hops ORDER BY id DESC LIMIT 1") == [{"line": 1}]


@pytest.mark.provision(BASE + closed_today() + '\n[numbers."+74950001122"]\nhotline = "closed"\n')
def test_outside_business_hours_the_caller_hears_the_closed_prompt(daemon: DaemonProcess,
                                                                    db: psycopg.Connection) -> None:
    assert sipp.call("84950001122").ok
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "closed"
    assert hop["hotline_id"] == rows(db, "SELECT id FROM hotlines WHERE name = 'closed'")[0]["id"]


@pytest.mark.provision(BASE + closed_today() + '\nclosed = "hotline:city"\n'
                       '[numbers."+74950001122"]\nhotline = "closed"\n')
def test_a_closed_hotline_can_send_callers_to_another_that_is_open(daemon: DaemonProcess,
                                                                   db: psycopg.Connection) -> None:
    assert sipp.call("84950001122").ok
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), what="closed hop")[0]
    assert hop["end_reason"] == "overflow"  # through the open hotline's queue


@pytest.mark.parametrize("subscription", ["per_call", "all"])
def test_each_channel_subscription_follows_the_call_and_records_its_hangup_cause(
        subscription: str, lab: Lab, daemon_env: dict[str, str], db_dsn: str, db: psycopg.Connection,
        tmp_path: Path) -> None:
    provision(db_dsn, BASE)
    lab.asterisk_cli("channel request hangup all")
    env = {**daemon_env, "HOTLINE_ARI_CHANNEL_SUBSCRIPTION": subscription}
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    daemon.start()
    try:
        caller = sipp.start_call("84951234567", "caller_hangs_up.xml", hold_ms=1500)
        hop = wait_until(lambda: rows(db, "SELECT channel_id FROM hops"), what="hop opened")[0]
        if subscription == "per_call":  # the app follows the call's own channel, not every channel
            followed = wait_until(lambda: ids if hop["channel_id"] in (ids := app_channel_ids(env)) else None,
                                  what="the call's channel in the app's subscriptions")
            assert ALL_CHANNELS not in followed
        else:
            assert ALL_CHANNELS in app_channel_ids(env)
        assert sipp.finish(caller).ok
        closed = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"),
                            what="hop closed")
        assert (closed[0]["end_reason"], closed[0]["hangup_cause"]) == ("abandoned", 16)  # the caller's BYE
    finally:
        daemon.stop()


ALL_CHANNELS = "__AST_CHANNEL_ALL_TOPIC"  # what the app lists when subscribed to every channel


def app_channel_ids(env: dict[str, str]) -> list[str]:
    status, body = ari_get(env, f"applications/{env.get('HOTLINE_ARI_APP', 'hotline')}")
    return list(json.loads(body).get("channel_ids", [])) if status == 200 else []
