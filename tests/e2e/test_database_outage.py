"""The database goes away while calls are up: callers are served, and nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from hotline.lab import Lab
from hotline.store.db import APPLICATION_NAME

from support import sipp
from support.checks import rows, wait_until
from support.daemon import DaemonProcess

pytestmark = pytest.mark.lab


@contextmanager
def database_refusing_the_daemon(lab: Lab, db: psycopg.Connection) -> Iterator[None]:
    """No new connection to the test database, and the daemon's sessions cut (as a failover does)."""
    name = db.info.dbname
    with psycopg.connect(lab.admin_dsn(), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT 0')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = %s AND application_name = %s", (name, APPLICATION_NAME))
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT -1')


def test_database_gone_mid_call_the_hop_is_closed_once_it_is_back(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    caller = sipp.start_call("+74951234567")
    wait_until(lambda: rows(db, "SELECT id FROM hops"), what="hop opened")
    with database_refusing_the_daemon(lab, db):
        assert sipp.finish(caller).ok  # the caller heard the prompt and got a normal BYE
        wait_until(lambda: "database write failed, retrying" in daemon.log(), what="retry logged")
        assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": None}]
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), timeout_s=30,
                     what="hop closed after the database came back")[0]
    assert (hop["end_reason"], hop["hangup_cause"]) == ("overflow", 16)
    assert rows(db, "SELECT status FROM cases") == [{"status": "closed"}]


def test_database_down_when_the_call_comes_the_call_is_served_and_recorded_later(
        lab: Lab, daemon: DaemonProcess, db: psycopg.Connection) -> None:
    with database_refusing_the_daemon(lab, db):
        assert sipp.call("+74951234567", caller="89165551234").ok
        assert "database unavailable" in daemon.log()
        assert rows(db, "SELECT id FROM hops") == []
    hop = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL"), timeout_s=30,
                     what="hop written after the database came back")[0]
    assert (hop["end_reason"], hop["dialled_e164"], hop["caller_num"]) == ("overflow", "+74951234567",
                                                                          "89165551234")
    assert len(rows(db, "SELECT id FROM cases")) == 1
