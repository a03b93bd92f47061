"""Caller priority in the lab's PostgreSQL: provisioned priorities land in their tables and load
back; a join records its priority on the queue event and the hop (migration 024); the live
waiting list (`queue_waiting`) is replaced queue by queue and read by `hotline stats live`."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from psycopg_pool import AsyncConnectionPool

from hotline.cli import main
from hotline.provision import parse
from hotline.store import live_state, provisioning
from hotline.store.contacts import Contacts
from hotline.store.db import connect, open_pool
from hotline.store.hops import NewHop
from hotline.store.live_state import QueueLive, WaitingLive
from hotline.store.records import QueueEvent

from support.checks import rows
from support.provisioning import provision

pytestmark = pytest.mark.lab

PROVISIONING = """
[queues.support]
[queues.siberia]
[menus.main]
prompt = "hello"
options = { "1" = { action = "queue:support", priority = 9 }, "2" = "queue:support" }
[hotlines.federal]
entry = "menu:main"
regions = { "+7913" = { queue = "siberia", priority = 6 }, "Novosibirsk" = "siberia" }
[numbers."8-800-555-35-35"]
hotline = "federal"
priority = 3
"""


@pytest.fixture
def provisioned(db_dsn: str) -> None:
    provision(db_dsn, PROVISIONING)


async def test_priorities_land_in_their_tables_and_load_back_as_provisioned(
        provisioned: None, db_dsn: str, db: psycopg.Connection) -> None:
    assert rows(db, "SELECT number, priority FROM numbers") == [{"number": "+78005553535", "priority": 3}]
    assert rows(db, "SELECT match, priority FROM hotline_region_routes ORDER BY match") == [
        {"match": "+7913", "priority": 6}, {"match": "Novosibirsk", "priority": None}]
    assert rows(db, "SELECT digit, priority FROM ivr_options ORDER BY digit") == [
        {"digit": "1", "priority": 9}, {"digit": "2", "priority": None}]
    conn = await connect(db_dsn)
    async with conn:
        loaded = await provisioning.load(conn)
    assert loaded == parse.provisioning(tomllib.loads(PROVISIONING))


def test_a_priority_out_of_range_from_the_cli_is_one_line_and_changes_nothing(
        provisioned: None, db_dsn: str, db: psycopg.Connection) -> None:
    env = {"HOTLINE_DSN": db_dsn}
    result = CliRunner().invoke(main, ["number", "add", "8-800-555-35-35", "--hotline", "federal",
                                       "--priority", "11"], env=env)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: numbers.8-800-555-35-35.priority: '11' must be from 0 to 10"]
    refused = CliRunner().invoke(main, ["ivr", "option", "main", "3", "hangup", "--priority", "2"], env=env)
    assert refused.exit_code == 1
    assert "only keys to a menu, queue, hotline or video:QUEUE set one" in refused.output
    assert rows(db, "SELECT priority FROM numbers") == [{"priority": 3}]
    changed = CliRunner().invoke(main, ["ivr", "option", "main", "2", "queue:support", "--priority", "4"],
                                 env=env)
    assert changed.exit_code == 0, changed.output
    assert rows(db, "SELECT priority FROM ivr_options WHERE digit = '2'") == [{"priority": 4}]
    routed = CliRunner().invoke(main, ["hotline", "set", "federal", "--region", "+7913=siberia,priority=1",
                                       "--region", "Novosibirsk=siberia,priority=10"], env=env)
    assert routed.exit_code == 0, routed.output
    assert rows(db, "SELECT match, priority FROM hotline_region_routes ORDER BY match") == [
        {"match": "+7913", "priority": 1}, {"match": "Novosibirsk", "priority": 10}]
    unchanged = CliRunner().invoke(main, ["hotline", "set", "federal", "--description", "8-800"], env=env)
    assert unchanged.exit_code == 0, unchanged.output  # the routes, exported as tables, come back
    assert len(rows(db, "SELECT id FROM hotline_region_routes WHERE priority IS NOT NULL")) == 2


@pytest.fixture
async def contacts(db_dsn: str) -> AsyncIterator[Contacts]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=2)
    async with pool:
        yield Contacts(pool)


async def test_a_join_records_its_priority_on_the_event_and_the_hop_and_a_rejoin_replaces_it(
        provisioned: None, contacts: Contacts, db: psycopg.Connection) -> None:
    number_id = rows(db, "SELECT id FROM numbers")[0]["id"]
    hop = await contacts.open_case_with_hop(NewHop(
        node="n1", channel_id="c1", channel_name="PJSIP/trunk-c1", channel_kind="pstn", media="audio",
        dialled="88005553535", dialled_e164="+78005553535", caller_num="+79131234567", caller_name="",
        number_id=number_id), "+79131234567")
    assert hop.priority is None  # not queued yet
    ids: dict[str, int] = dict(db.execute("SELECT name, id FROM queues").fetchall())
    support, siberia = ids["support"], ids["siberia"]
    await contacts.queue_event(QueueEvent(siberia, hop.case_id, hop.id, "join", position=1, priority=6))
    assert rows(db, "SELECT priority FROM hops") == [{"priority": 6}]
    await contacts.queue_event(QueueEvent(siberia, hop.case_id, hop.id, "overflow", detail="max_wait"))
    await contacts.queue_event(QueueEvent(support, hop.case_id, hop.id, "join", position=2, priority=9))
    assert rows(db, "SELECT priority FROM hops") == [{"priority": 9}]
    assert rows(db, "SELECT event, priority FROM queue_events ORDER BY id") == [
        {"event": "join", "priority": 6}, {"event": "overflow", "priority": None},
        {"event": "join", "priority": 9}]


async def test_the_waiting_list_is_replaced_per_queue_and_stats_live_lists_it_in_order(
        provisioned: None, db_dsn: str, db: psycopg.Connection) -> None:
    ids: dict[str, int] = dict(db.execute("SELECT name, id FROM queues").fetchall())
    since = datetime.now().astimezone() - timedelta(seconds=40)
    conn = await connect(db_dsn)
    async with conn:
        await live_state.publish(conn, [QueueLive(ids["support"], 2, since)], [], {
            ids["support"]: [WaitingLive(ids["support"], 1, "n1", "vip", 9, since + timedelta(seconds=30)),
                             WaitingLive(ids["support"], 2, "n1", "plain", 0, since, ringing=True)],
            ids["siberia"]: [WaitingLive(ids["siberia"], 1, "n1", "sib", 6, since)]})
        shown = await asyncio.to_thread(CliRunner().invoke, main, ["stats", "live"],
                                        env={"HOTLINE_DSN": db_dsn})
        assert shown.exit_code == 0, shown.output
        waiting = shown.output.split("waiting, in the order they are served (higher priority first):\n")[1]
        lines = [line.split() for line in waiting.strip().splitlines()]
        assert lines[0][:4] == ["QUEUE", "POS", "PRIO", "WAITING"]
        assert [(row[0], row[1], row[2]) for row in lines[1:]] == [
            ("siberia", "1", "6"), ("support", "1", "9"), ("support", "2", "0")]
        assert 38 <= int(lines[3][3]) <= 60  # the plain caller's wait, from now
        await live_state.publish(conn, [], [], {ids["support"]: []})  # support's line emptied
    assert rows(db, "SELECT channel_id FROM queue_waiting") == [{"channel_id": "sib"}]
