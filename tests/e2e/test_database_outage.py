"""The database goes away while calls are up: callers are served, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from hotline.lab import Lab
from hotline.store.active_lock import ACTIVE
from hotline.store.db import APPLICATION_NAME

from support import sipp
from support.agents import logged_in_agents, registered
from support.checks import rows, wait_until
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab



def test_database_gone_mid_call_the_hop_is_closed_once_it_is_back(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    caller = sipp.start_call("+74951234567")
    wait_until(lambda: rows(db, "SELECT id FROM hops"), what="hop opened")
    with lab.database_cut_off(db.info.dbname, APPLICATION_NAME):
        assert sipp.finish(caller).ok  # the caller heard the prompt and got a normal BYE
        wait_until(lambda: "database write failed, retrying" in daemon.log(), what="retry logged")
        assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": None}]
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), timeout_s=30,
                     what="hop closed after the database came back")[0]
    assert (hop["end_reason"], hop["hangup_cause"]) == ("overflow", 16)
    assert rows(db, "SELECT status FROM cases") == [{"status": "closed"}]


def test_database_down_when_the_call_comes_the_call_is_served_and_recorded_later(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    with lab.database_cut_off(db.info.dbname, APPLICATION_NAME):
        assert sipp.call("+74951234567", caller="89165551234").ok
        assert "database unavailable" in daemon.log()
        assert rows(db, "SELECT id FROM hops") == []
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), timeout_s=30,
                     what="hop written after the database came back")[0]
    assert (hop["end_reason"], hop["dialled_e164"], hop["caller_num"]) == ("overflow", "+74951234567",
                                                                          "89165551234")
    assert len(rows(db, "SELECT id FROM cases")) == 1


QUEUE_NUMBER = "+74950002211"
ONE_QUEUE = BASE + """
[queues.line]
ring_timeout = 5

[hotlines.queued]
entry = "queue:line"

[numbers."+74950002211"]
hotline = "queued"
"""


@pytest.mark.provision(ONE_QUEUE)
def test_calls_answered_while_the_database_is_away_keep_every_queue_record(
        lab: Lab, daemon: DaemonProcess, daemon_env: dict[str, str], db: psycopg.Connection,
        tmp_path: Path, rendered_files_removed_afterwards: Path) -> None:
    agent = logged_in_agents(daemon_env, tmp_path, "o", {"line": 0})[0]
    phone = sipp.agent_phone(agent.name, agent.password, ring_ms=200, calls=3, timeout_s=90)
    wait_until(lambda: registered(lab, agent.name) or phone.poll() is not None, what="agent phone registered")
    # As a restart or failover of the database makes it: the active lock's session ends too. With no
    # standby waiting, the daemon serves on through it and takes the lock again afterwards.
    with lab.database_cut_off(db.info.dbname, APPLICATION_NAME, f"{ACTIVE} %"):
        wait_until(lambda: "no standby was waiting: serving on" in daemon.log(), what="lock loss logged")
        for n in range(3):  # one after another: the one agent answers each
            run = sipp.call(QUEUE_NUMBER, "caller_hangs_up.xml", caller=f"+7916555000{n}", hold_ms=800)
            assert run.ok, run.output[:2000]
        assert rows(db, "SELECT id FROM hops") == []
        # the first caller found the database away; the next two were served without waiting for it
        assert daemon.log().count("database known away") == 2
    assert sipp.finish(phone, timeout_s=30).ok
    wait_until(lambda: "active lock retaken" in daemon.log(), what="the lock taken again")
    assert rows(db, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE %s",
                f"{ACTIVE} %") == [{"n": 1}]
    hops = wait_until(lambda: h if len(h := rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"
                                                     " AND answered_at IS NOT NULL ORDER BY entered_at")) == 3
                      else None, timeout_s=30, what="three hops written, with their queue records")
    agent_id = rows(db, "SELECT id FROM agents WHERE name = %s", agent.name)[0]["id"]
    queue_id = rows(db, "SELECT id FROM queues WHERE name = 'line'")[0]["id"]
    for hop in hops:
        assert (hop["end_reason"], hop["queue_id"], hop["agent_id"]) == ("completed", queue_id, agent_id)
        assert hop["entered_at"] <= hop["queued_at"] <= hop["answered_at"] <= hop["ended_at"]
        events = rows(db, "SELECT event FROM queue_events WHERE hop_id = %s ORDER BY id", hop["id"])
        assert [e["event"] for e in events] == ["join", "ring", "answer", "complete"]
    offered = rows(db, "SELECT sum(offered) AS n FROM stats_queue(now() - interval '1 hour',"
                       " now() + interval '1 hour') WHERE queue = 'line'")
    assert offered == [{"n": 3}]
