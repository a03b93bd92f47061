"""The live snapshot: `live_state.publish` (upserts in one transaction, NOTIFY hotline_live) and
`hotline stats live [--watch]` reading it, against the lab's PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from hotline.cli import main
from hotline.store import live_state
from hotline.store.db import connect
from hotline.store.live_state import AgentLive, QueueLive

from support.checks import rows
from support.provisioning import provision

pytestmark = pytest.mark.lab

PROVISIONING = """
[queues.support]
[queues.sales]
[hotlines.moscow]
entry = "queue:support"
time_zone = "Europe/Moscow"
[agents.ivanov]
queues = { support = 0 }
[agents.petrova]
queues = { support = 0, sales = 0 }
"""


@pytest.fixture
def ids(db_dsn: str, db: psycopg.Connection) -> dict[str, int]:
    provision(db_dsn, PROVISIONING)
    return dict(db.execute("SELECT name, id FROM queues UNION ALL SELECT name, id FROM agents").fetchall())


@pytest.fixture
async def conn(db_dsn: str, ids: dict[str, int]) -> AsyncIterator[psycopg.AsyncConnection]:
    connection = await connect(db_dsn)
    async with connection:
        yield connection


def ago(seconds: int) -> datetime:
    return datetime.now().astimezone() - timedelta(seconds=seconds)


async def test_publish_upserts_and_notifies_at_commit(conn: psycopg.AsyncConnection, db_dsn: str,
                                                      ids: dict[str, int], db: psycopg.Connection) -> None:
    listener = await connect(db_dsn)
    async with listener:
        await listener.execute("LISTEN hotline_live")
        await live_state.publish(conn, [QueueLive(ids["support"], 2, ago(30), agents_free=1, agents_busy=1)],
                                 [AgentLive(ids["ivanov"], "busy", ago(20))])
        notes = [n async for n in listener.notifies(timeout=5, stop_after=1)]
        assert [n.channel for n in notes] == ["hotline_live"]
        await live_state.publish(conn, [QueueLive(ids["support"], 0, None, agents_free=2)],
                                 [AgentLive(ids["ivanov"], "wrapup", ago(1)),
                                  AgentLive(ids["petrova"], "free", ago(5))])
        assert len([n async for n in listener.notifies(timeout=5, stop_after=1)]) == 1
    assert rows(db, "SELECT queue, waiting, longest_wait_s, agents_free, agents_busy FROM queue_live_now") \
        == [{"queue": "support", "waiting": 0, "longest_wait_s": None, "agents_free": 2, "agents_busy": 0}]
    assert [(r["agent"], r["state"]) for r in rows(db, "SELECT * FROM agent_live_now ORDER BY agent")] == [
        ("ivanov", "wrapup"), ("petrova", "free")]


async def test_a_refused_publish_changes_nothing(conn: psycopg.AsyncConnection, ids: dict[str, int],
                                                 db: psycopg.Connection) -> None:
    await live_state.publish(conn, [QueueLive(ids["support"], 1, ago(10))], [])
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await live_state.publish(conn, [QueueLive(ids["support"], 5, ago(60))],
                                 [AgentLive(999_999, "free", ago(1))])
    assert rows(db, "SELECT waiting FROM queue_live") == [{"waiting": 1}]
    with pytest.raises(ValueError, match="agent state 'lunch' is not one of"):
        await live_state.publish(conn, [], [AgentLive(ids["ivanov"], "lunch", ago(1))])


async def test_stats_live_shows_the_wait_from_now_and_todays_figures(
        conn: psycopg.AsyncConnection, db_dsn: str, ids: dict[str, int]) -> None:
    await live_state.publish(conn, [QueueLive(ids["support"], 3, ago(95), agents_busy=2, agents_paused=1)],
                             [AgentLive(ids["ivanov"], "busy", ago(42)),
                              AgentLive(ids["petrova"], "paused", ago(7))])
    result = await asyncio.to_thread(CliRunner().invoke, main,
                                     ["stats", "live", "--format", "json"], env={"HOTLINE_DSN": db_dsn})
    assert result.exit_code == 0, result.output
    live = json.loads(result.output)
    [support] = live["queues"]
    assert [support[k] for k in ("queue", "waiting", "agents_busy", "offered")] == ["support", 3, 2, 0]
    assert 95 <= support["longest_wait_s"] <= 100
    assert [(a["agent"], a["state"]) for a in live["agents"]] == [("ivanov", "busy"), ("petrova", "paused")]
    assert 42 <= live["agents"][0]["in_state_s"] <= 47


async def test_stats_live_shows_each_queues_callbacks_not_placed_yet(
        conn: psycopg.AsyncConnection, db_dsn: str, ids: dict[str, int]) -> None:
    await live_state.publish(conn, [QueueLive(ids["support"], 0, None, agents_free=1)], [])
    for status in ("pending", "placing", "answered"):
        cur = await conn.execute("INSERT INTO cases (customer_key) VALUES ('+79161234567') RETURNING id")
        case = (await cur.fetchone() or [0])[0]
        await conn.execute(
            "INSERT INTO callbacks (case_id, queue_id, number, joined_at, due_at, status, placed_by,"
            " lease_until, ended_at) VALUES (%s, %s, '+79161234567', now(), now(), %s, %s, %s, %s)",
            (case, ids["support"], status, "run" if status == "placing" else None,
             ago(-30) if status == "placing" else None, ago(1) if status == "answered" else None))
    result = await asyncio.to_thread(CliRunner().invoke, main,
                                     ["stats", "live", "--format", "json"], env={"HOTLINE_DSN": db_dsn})
    assert result.exit_code == 0, result.output
    [support] = json.loads(result.output)["queues"]
    assert support["callbacks"] == 2  # waiting and being placed; the answered one is done


# -- --watch, as a supervisor leaves it running in a terminal -----------------------------------

CTRL_C_AS_IN_A_TERMINAL = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
                           " runpy.run_module('hotline', run_name='__main__')")


class Watch:
    """`hotline stats live --watch` in a subprocess; frames read from its output as they come."""

    def __init__(self, dsn: str) -> None:
        # Ctrl-C as in a supervisor's terminal: a run started in the background (`nohup make test &`)
        # hands its children SIGINT ignored, which Python then keeps ignoring; so it is set here.
        command = [sys.executable, "-c", CTRL_C_AS_IN_A_TERMINAL, "stats", "live", "--watch"]
        self.proc = subprocess.Popen(command,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1",
                                          "HOTLINE_DSN": dsn})
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def stops_on_ctrl_c(self, timeout_s: float = 10) -> int:
        """Its exit code after SIGINT. Still running after `timeout_s`: SIGABRT, and the stacks of
        its threads (faulthandler) in the failure, to say where it hung."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=10)
            assert self.proc.stderr is not None
            stderr = self.proc.stderr.read()
            raise AssertionError(f"still running {timeout_s} s after SIGINT; its stacks:\n{stderr}") from None

    def row(self, first_word: str, timeout_s: float = 10) -> list[str]:
        """The next table row whose first word is `first_word`, split into words."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.split()[:1] == [first_word]:
                return line.split()
        raise AssertionError(f"no row of {first_word!r} within {timeout_s} s")


@pytest.fixture
def watch(db_dsn: str, ids: dict[str, int]) -> Iterator[Watch]:
    w = Watch(db_dsn)
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()


def test_watch_redraws_on_publish_and_waits_advance_between_publishes(watch: Watch, db_dsn: str,
                                                                     ids: dict[str, int]) -> None:
    watch.row("(no", timeout_s=15)  # "(no activity)": nothing published yet

    async def publish(waiting: int) -> None:
        conn = await connect(db_dsn)
        async with conn:
            await live_state.publish(conn, [QueueLive(ids["support"], waiting, ago(100))],
                                     [AgentLive(ids["ivanov"], "ringing", ago(3))])
    asyncio.run(publish(4))
    first = watch.row("support", timeout_s=5)
    assert first[1] == "4"
    # nothing published since: the longest wait still advances on screen
    deadline = time.monotonic() + 5
    while True:
        later = watch.row("support", timeout_s=5)
        if int(later[2]) > int(first[2]):
            break
        assert time.monotonic() < deadline, "the longest wait never advanced"
    assert watch.row("ivanov", timeout_s=5)[1] == "ringing"
    assert watch.stops_on_ctrl_c() == 0
