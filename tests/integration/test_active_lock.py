"""The active daemon's lock (hotline.store.active_lock) against the lab's real PostgreSQL: one
holder, standbys that name it and take over when its session ends, fencing on a lost session."""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
import pytest

from hotline.store.active_lock import ActiveLock, count_standbys, find_holder

pytestmark = pytest.mark.lab

APP = "hotline"


async def test_one_daemon_holds_the_lock_and_a_standby_names_it_then_takes_over(
        db_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "hotline.store.active_lock")
    stopping = asyncio.Event()
    first = ActiveLock(db_dsn, APP, identity="111@host-a")
    second = ActiveLock(db_dsn, APP, identity="222@host-b", poll_every_s=0.1)
    other_app = ActiveLock(db_dsn, "another-app", identity="333@host-c")
    try:
        assert await first.acquire(stopping)
        assert await other_app.acquire(stopping)  # another app's daemon is active on its own
        waiting = asyncio.create_task(second.acquire(stopping))
        holder_seen = "standby: 111@host-a from" in caplog.text
        deadline = time.monotonic() + 5
        while not holder_seen and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            holder_seen = "standby: 111@host-a from" in caplog.text
        assert holder_seen and not waiting.done()
        assert caplog.text.count("standby: 111@host-a") == 1  # once, not at every poll
        async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
            holder = await find_holder(conn, APP)
            assert holder is not None and holder.application_name == "hotline active 111@host-a"
            assert holder.since is not None and "111@host-a from" in holder.describe()
            assert await count_standbys(conn) == 1
        await first.close()  # a stop, or the kernel closing a killed process's socket
        started = time.monotonic()
        assert await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - started < 1.0
        assert second.active
    finally:
        stopping.set()
        for lock in (first, second, other_app):
            await lock.close()


async def test_the_active_is_fenced_when_its_lock_session_is_ended_and_a_standby_stops_on_request(
        db_dsn: str) -> None:
    stopping = asyncio.Event()
    active = ActiveLock(db_dsn, APP, identity="111@host-a")
    standby = ActiveLock(db_dsn, APP, identity="222@host-b", poll_every_s=0.1)
    try:
        assert await active.acquire(stopping)
        watching = asyncio.create_task(active.watch())
        await asyncio.sleep(0.3)
        assert not watching.done()  # an idle session is not a lost one
        async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
            holder = await find_holder(conn, APP)
            assert holder is not None
            await conn.execute("SELECT pg_terminate_backend(%s)", (holder.backend_pid,))
        reason = await asyncio.wait_for(watching, 5)
        assert "closed the connection" in reason, reason
        # A standby asked to stop while it waits returns at once, without the lock.
        await active.close()
        blocker = ActiveLock(db_dsn, APP, identity="333@host-c")
        assert await blocker.acquire(stopping)
        waiting = asyncio.create_task(standby.acquire(stopping))
        await asyncio.sleep(0.3)
        stopping.set()
        assert await asyncio.wait_for(waiting, 2) is False
        await blocker.close()
    finally:
        stopping.set()
        await active.close()
        await standby.close()


async def test_a_lost_session_is_retaken_unless_another_daemon_took_the_lock_first(db_dsn: str) -> None:
    """A database restart ends the lock's session with no standby waiting: the active daemon takes
    the lock again and serves on; had another daemon taken it meanwhile, retake names it."""
    stopping = asyncio.Event()
    active = ActiveLock(db_dsn, APP, identity="111@host-a", poll_every_s=0.1)
    other = ActiveLock(db_dsn, APP, identity="222@host-b")
    try:
        assert await active.acquire(stopping)
        async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
            holder = await find_holder(conn, APP)
            assert holder is not None
            await conn.execute("SELECT pg_terminate_backend(%s)", (holder.backend_pid,))
            assert await asyncio.wait_for(active.retake(stopping), 5) is None
            retaken = await find_holder(conn, APP)
            assert retaken is not None and retaken.application_name == "hotline active 111@host-a"
            assert retaken.backend_pid != holder.backend_pid and active.active
            await conn.execute("SELECT pg_terminate_backend(%s)", (retaken.backend_pid,))
            await asyncio.sleep(0.2)  # the server has ended it: the lock is free
            assert await other.acquire(stopping)  # another daemon is quicker
        said = await asyncio.wait_for(active.retake(stopping), 5)
        assert said is not None and said.startswith("daemon 222@host-b") and "holds the lock now" in said
        assert not active.active
    finally:
        stopping.set()
        await active.close()
        await other.close()
