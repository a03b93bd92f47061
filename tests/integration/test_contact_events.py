"""The contact-event outbox in the lab's PostgreSQL (migration 029): the records a call writes
make its events in the same transaction, in order, with names; each webhook gets a delivery of
the events its filter takes; a deliverer claims only the head of each (webhook, case) line, two
deliverers never hold the same one, a failing head holds back only its case."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg_pool import AsyncConnectionPool

from hotline.cli import main
from hotline.engine.event_pruner import EventPruner
from hotline.engine.unwatched_dials import UnwatchedDials
from hotline.store import contact_events, webhooks
from hotline.store.contacts import Contacts
from hotline.store.db import connect, open_pool
from hotline.store.hops import Hop, NewHop
from hotline.store.records import (
    QueueEvent,
    TransferRow,
    close_hop_record,
    ivr_digit_record,
    media_record,
    queue_event_record,
    refused_record,
    transfer_record,
    write_records,
)
from hotline.store.switches import UNWATCHED_DIAL, Switches

from support.checks import rows

pytestmark = pytest.mark.lab

# Two hours ago, not a fixed day: what is "older than N days" (retention, purges) must not change
# with the day the suite runs.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
SECRET = "0123456789abcdef0123"


@pytest.fixture
def ids(db: psycopg.Connection) -> dict[str, int]:
    db.execute("INSERT INTO queues (name) VALUES ('support'), ('sales')")
    db.execute("INSERT INTO agents (name, endpoint) VALUES ('anna', 'anna')")
    db.execute("INSERT INTO hotlines (name, entry_queue_id)"
               " SELECT name_, id FROM queues, (VALUES ('city', 'support'), ('other', 'sales')) v (name_, q)"
               " WHERE queues.name = v.q")
    found = rows(db, "SELECT name, id FROM queues UNION ALL SELECT name, id FROM agents"
                     " UNION ALL SELECT 'hotline:' || name, id FROM hotlines")
    return {r["name"]: r["id"] for r in found}


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    opened: AsyncConnectionPool = await open_pool(db_dsn, max_size=3)
    async with opened:
        yield opened


async def call(pool: AsyncConnectionPool, ids: dict[str, int], channel: str = "c1",
               caller: str = "+79161234567") -> Hop:
    return await Contacts(pool).open_case_with_hop(NewHop(
        node="n1", channel_id=channel, channel_name=f"PJSIP/trunk-{channel}", channel_kind="pstn",
        media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num=caller,
        caller_name="", entered_at=T0, hotline_id=ids["hotline:city"]), caller)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered_talk(hop: Hop, ids: dict[str, int]) -> list[dict[str, object]]:
    """What the engine submits for a caller who presses 1, waits, is answered by anna, hangs up."""
    def event(kind: str, second: int, **more: object) -> dict[str, object]:
        return queue_event_record(QueueEvent(ids["support"], hop.case_id, hop.id, kind, at=at(second),
                                             **more))  # type: ignore[arg-type]
    return [ivr_digit_record(hop.id, "1"),
            event("join", 2, position=1, priority=0), event("ring", 3, agent_id=ids["anna"]),
            event("answer", 5, agent_id=ids["anna"], wait_ms=3000, ring_ms=2000),
            event("complete", 65, agent_id=ids["anna"], talk_ms=60_000, detail="caller hung up"),
            close_hop_record(hop.id, "completed", cause=16, cause_text="Normal Clearing", at=at(65))]


async def write(db_dsn: str, records: list[dict[str, object]]) -> None:
    async with await connect(db_dsn) as conn:
        await write_records(conn, records)
        await conn.commit()


async def test_a_calls_records_make_its_events_in_order_with_names(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await call(pool, ids)
    await write(db_dsn, answered_talk(hop, ids))
    events = rows(db, "SELECT case_id, hop_id, kind, at, hotline, queue, agent, data"
                      " FROM contact_events ORDER BY id")
    assert [e["kind"] for e in events] == ["case_opened", "entered_hotline", "menu_key", "queued",
                                           "ringing_agent", "answered", "talk_ended", "ended", "case_closed"]
    assert {e["case_id"] for e in events} == {hop.case_id}
    assert [e["hop_id"] for e in events] == [None] + [hop.id] * 7 + [None]
    assert all(e["hotline"] == "city" for e in events)
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["case_opened"]["data"] == {"customer": "+79161234567"}
    assert by_kind["entered_hotline"]["data"] == {
        "seq": 1, "channel_kind": "pstn", "media": "audio", "dialled": "84951234567",
        "caller": "+79161234567", "node": "n1", "channel_id": "c1"}
    assert by_kind["menu_key"]["data"] == {"key": "1", "path": "1"}
    assert (by_kind["queued"]["queue"], by_kind["queued"]["agent"], by_kind["queued"]["data"]) \
        == ("support", None, {"position": 1, "priority": 0})
    assert (by_kind["answered"]["agent"], by_kind["answered"]["at"], by_kind["answered"]["data"]) \
        == ("anna", at(5), {"wait_ms": 3000, "ring_ms": 2000})
    assert by_kind["ended"]["data"] == {"reason": "completed", "cause": 16, "cause_text": "Normal Clearing"}
    assert (by_kind["ended"]["agent"], by_kind["case_closed"]["agent"]) == ("anna", "anna")


async def test_a_transfer_is_one_event_and_a_batch_rolled_back_leaves_none(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await call(pool, ids)
    await write(db_dsn, [transfer_record(TransferRow(hop.id, hop.case_id, "req-1", "blind", "cli",
                                                     ids["support"], ids["anna"], "queue:sales",
                                                     "transferred", at=at(9)))])
    assert rows(db, "SELECT kind, queue, agent, data FROM contact_events WHERE kind = 'transfer'") == [
        {"kind": "transfer", "queue": "support", "agent": "anna",
         "data": {"transfer_id": 1, "type": "blind", "asked_by": "cli", "target": "queue:sales",
                  "outcome": "transferred"}}]
    before = rows(db, "SELECT count(*) AS n FROM contact_events")[0]["n"]
    async with await connect(db_dsn) as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await write_records(conn, [ivr_digit_record(hop.id, "5")])
                raise RuntimeError("the batch's transaction rolls back")
    assert rows(db, "SELECT count(*) AS n FROM contact_events")[0]["n"] == before


async def test_each_webhook_gets_deliveries_of_what_its_filter_takes(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    async with pool.connection() as conn:
        await webhooks.add(conn, "crm", "https://crm.example/h", SECRET, hotlines=None, events=None)
        await webhooks.add(conn, "ends", "http://127.0.0.1:9/h", SECRET, hotlines=["city"],
                           events=["ended"])
        await webhooks.add(conn, "elsewhere", "http://127.0.0.1:9/h", SECRET, hotlines=["other"],
                           events=None)
    hop = await call(pool, ids)
    await write(db_dsn, answered_talk(hop, ids))
    counts = {r["name"]: r["n"] for r in rows(
        db, "SELECT w.name, count(d.*) AS n FROM webhooks w"
            " LEFT JOIN webhook_deliveries d ON d.webhook_id = w.id GROUP BY w.name")}
    assert counts == {"crm": 9, "ends": 1, "elsewhere": 0}
    listed = {r["name"]: r for r in await _listing(pool)}
    assert (listed["crm"]["pending"], listed["crm"]["hotlines"], listed["ends"]["events"]) \
        == (9, "all", "ended")
    assert "secret" not in listed["crm"]


async def _listing(pool: AsyncConnectionPool) -> list[dict[str, object]]:
    async with pool.connection() as conn:
        return await webhooks.listing(conn)


async def claim(pool: AsyncConnectionPool, run: str, limit: int = 50,
                lease_s: float = 60) -> list[webhooks.Delivery]:
    async with pool.connection() as conn:
        return await webhooks.claim(conn, run, lease_s=lease_s, limit=limit)


async def test_only_the_head_of_each_case_line_is_claimed_and_a_failure_holds_back_only_its_case(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str) -> None:
    async with pool.connection() as conn:
        await webhooks.add(conn, "crm", "https://crm.example/h", SECRET, hotlines=None, events=None)
    first, second = await call(pool, ids, "c1", "+79160000001"), await call(pool, ids, "c2", "+79160000002")
    await write(db_dsn, answered_talk(first, ids) + answered_talk(second, ids))
    heads = await claim(pool, "run-a")
    assert sorted((d.event.case_id, d.event.kind) for d in heads) == [
        (first.case_id, "case_opened"), (second.case_id, "case_opened")]
    assert await claim(pool, "run-b") == []  # both heads held; nothing behind them is a head
    a, b = sorted(heads, key=lambda d: d.event.case_id)
    async with pool.connection() as conn:
        assert await webhooks.delivered(conn, a, "run-a")
        await webhooks.not_delivered(conn, b, "run-a", "HTTP 503", retry_in_s=3600)
        assert not await webhooks.delivered(conn, b, "run-a")  # released: run-a no longer holds it
    again = await claim(pool, "run-b")
    assert [(d.event.case_id, d.event.kind) for d in again] == [(first.case_id, "entered_hotline")]
    listed = (await _listing(pool))[0]
    assert (listed["pending"], listed["delivered"], listed["failed"], listed["last_error"]) \
        == (17, 1, 0, "HTTP 503")


async def test_a_given_up_delivery_lets_its_case_line_go_on(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str) -> None:
    async with pool.connection() as conn:
        await webhooks.add(conn, "crm", "https://crm.example/h", SECRET, hotlines=None, events=None)
    hop = await call(pool, ids)
    [head] = await claim(pool, "run-a")
    async with pool.connection() as conn:
        await webhooks.not_delivered(conn, head, "run-a", "HTTP 500", retry_in_s=None)
    [nxt] = await claim(pool, "run-a")
    assert (head.event.kind, nxt.event.kind, nxt.event.hop_id) == ("case_opened", "entered_hotline", hop.id)
    assert (await _listing(pool))[0]["failed"] == 1


async def test_a_lease_that_ran_out_gives_the_head_to_another_run_and_the_first_cannot_mark_it(
        pool: AsyncConnectionPool, ids: dict[str, int]) -> None:
    async with pool.connection() as conn:
        await webhooks.add(conn, "crm", "https://crm.example/h", SECRET, hotlines=None, events=None)
    await call(pool, ids)
    [held] = await claim(pool, "run-a", lease_s=0.2)
    assert await claim(pool, "run-b") == []
    await asyncio.sleep(0.4)
    [taken] = await claim(pool, "run-b")
    assert taken.event.id == held.event.id
    async with pool.connection() as conn:
        assert not await webhooks.delivered(conn, held, "run-a")
        assert await webhooks.delivered(conn, taken, "run-b")


async def test_two_runs_claiming_at_once_never_hold_the_same_delivery(
        pool: AsyncConnectionPool, ids: dict[str, int]) -> None:
    async with pool.connection() as conn:
        await webhooks.add(conn, "crm", "https://crm.example/h", SECRET, hotlines=None, events=None)
    for n in range(20):
        await call(pool, ids, f"c{n}", f"+791600000{n:02d}")
    got = await asyncio.gather(*(claim(pool, f"run-{r}", limit=7) for r in range(3)))
    claimed = [d.event.id for batch in got for d in batch]
    assert len(claimed) == len(set(claimed)) == 20  # the 20 cases' heads, each once


async def test_a_leg_refused_at_the_door_is_opened_entered_ended_and_closed_in_one_batch(
        ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    leg = NewHop(node="n1", channel_id="busy-1", channel_name="PJSIP/trunk-busy-1", channel_kind="pstn",
                 media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num="+79161234567",
                 caller_name="", entered_at=T0, hotline_id=ids["hotline:city"])
    await write(db_dsn, [refused_record(leg, "+79161234567", "busy", 17, "User busy", at=at(1))])
    events = rows(db, "SELECT kind, data FROM contact_events ORDER BY id")
    assert [e["kind"] for e in events[:2]] == ["case_opened", "entered_hotline"]
    assert [(e["kind"], e["data"]) for e in events[2:]] == [
        ("ended", {"reason": "busy", "cause": 17, "cause_text": "User busy"}), ("case_closed", {})]


async def test_a_customer_calling_again_reopens_their_case_as_an_event(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    first = await call(pool, ids)
    await write(db_dsn, [close_hop_record(first.id, "completed", at=datetime.now(UTC))])
    again = await Contacts(pool).open_case_with_hop(NewHop(
        node="n1", channel_id="c2", channel_name="PJSIP/trunk-c2", channel_kind="pstn", media="audio",
        dialled="84951234567", dialled_e164="+74951234567", caller_num="+79161234567", caller_name="",
        hotline_id=ids["hotline:city"]), "+79161234567", continue_within_s=900)
    assert again.case_id == first.case_id
    events = rows(db, "SELECT kind, hop_id FROM contact_events ORDER BY id")
    assert [(e["kind"], e["hop_id"]) for e in events] == [
        ("case_opened", None), ("entered_hotline", first.id), ("ended", first.id), ("case_closed", None),
        ("case_reopened", None), ("entered_hotline", again.id)]


async def test_a_supervision_and_a_conference_party_are_events_a_refused_supervision_is_none(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await call(pool, ids)
    await write(db_dsn, answered_talk(hop, ids)[:4])  # in a talk with anna
    db.execute("INSERT INTO agents (name, endpoint, supervisor) VALUES ('boss', 'boss', true)")
    insert = ("INSERT INTO supervisions (request, case_id, hop_id, agent_id, supervisor, mode, asked_by,"
              " node, outcome, detail, asked_at)"
              " VALUES (%s, %s, %s, %s, 'boss', %s, 'cli', 'n1', %s, %s, %s)")
    db.execute(insert, ("r1", hop.case_id, hop.id, ids["anna"], "whisper", "ringing", "", at(10)))
    db.execute(insert, ("r2", hop.case_id, hop.id, ids["anna"], "barge", "refused", "supervising already",
                        at(11)))
    db.execute("UPDATE supervisions SET outcome = 'supervising', started_at = %s WHERE request = 'r1'",
               (at(14),))
    db.execute("UPDATE supervisions SET outcome = 'ended', ended_at = %s, detail = 'the supervisor hung up'"
               " WHERE request = 'r1'", (at(40),))
    db.execute("INSERT INTO case_participants (case_id, agent_id, node, channel_id, invited_by, joined_at)"
               " VALUES (%s, %s, 'n1', 'p1', 'agent:anna', %s)", (hop.case_id, ids["anna"], at(20)))
    db.execute("UPDATE case_participants SET left_at = %s", (at(30),))
    events = rows(db, "SELECT kind, at, hop_id, hotline, queue, agent, data FROM contact_events"
                      " WHERE kind LIKE 'supervision%%' OR kind LIKE 'participant%%' ORDER BY id")
    supervision = {"supervision_id": 1, "mode": "whisper", "supervisor": "boss", "asked_by": "cli"}
    party = {"participant_id": 1, "invited_by": "agent:anna", "node": "n1", "channel_id": "p1"}
    assert events == [
        {"kind": "supervision_started", "at": at(14), "hop_id": hop.id, "hotline": "city", "queue": "support",
         "agent": "anna", "data": supervision},
        {"kind": "supervision_ended", "at": at(40), "hop_id": hop.id, "hotline": "city", "queue": "support",
         "agent": "anna", "data": {**supervision, "detail": "the supervisor hung up"}},
        {"kind": "participant_joined", "at": at(20), "hop_id": None, "hotline": "city", "queue": None,
         "agent": "anna", "data": party},
        {"kind": "participant_left", "at": at(30), "hop_id": None, "hotline": "city", "queue": None,
         "agent": "anna", "data": party}]


async def test_a_camera_turned_on_and_off_and_a_phone_not_answered_are_events(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await call(pool, ids)
    await write(db_dsn, answered_talk(hop, ids)[:4])  # in a talk with anna
    await write(db_dsn, [media_record(hop.id, "video", at(20)), media_record(hop.id, "audio", at(30))])
    switches = Switches(pool)
    issued = await switches.issue(hop.id, "agent:anna", 60, to_number="+79161234567")
    assert await switches.phone_not_answered(issued.token, "busy", 17, "User busy")
    events = rows(db, "SELECT kind, at, hop_id, queue, agent, data FROM contact_events"
                      " WHERE kind IN ('media_changed', 'switch_requested', 'switch_failed') ORDER BY id")
    assert [(e["kind"], e["data"]) for e in events] == [
        ("media_changed", {"media": "video"}), ("media_changed", {"media": "audio"}),
        ("switch_requested", {"switch_id": 1, "requested_by": "agent:anna", "to": "phone"}),
        ("switch_failed", {"switch_id": 1, "to": "phone", "outcome": "busy", "cause": 17,
                           "cause_text": "User busy"})]
    assert events[0]["at"] == at(20) and {e["hop_id"] for e in events} == {hop.id}
    assert (events[0]["queue"], events[0]["agent"]) == ("support", "anna")


async def test_pruning_deletes_old_finished_events_and_keeps_what_a_webhook_still_owes(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    async with pool.connection() as conn:
        await webhooks.add(conn, "crm", "https://crm.example/h", SECRET, hotlines=None, events=None)
    old, recent = await call(pool, ids, "c1", "+79160000001"), await call(pool, ids, "c2", "+79160000002")
    await write(db_dsn, answered_talk(old, ids) + answered_talk(recent, ids))
    db.execute("UPDATE contact_events SET at = now() - interval '100 days' WHERE case_id = %s",
               (old.case_id,))
    # the old case's first three delivered, its fourth given up, the rest still owed to the CRM
    db.execute("UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now()"
               " WHERE event_id IN (SELECT id FROM contact_events WHERE case_id = %s ORDER BY id LIMIT 3)",
               (old.case_id,))
    db.execute("UPDATE webhook_deliveries SET status = 'failed' WHERE event_id ="
               " (SELECT id FROM contact_events WHERE case_id = %s ORDER BY id OFFSET 3 LIMIT 1)",
               (old.case_id,))
    async with pool.connection() as conn:
        dry = await contact_events.prune(conn, 90, dry_run=True)
    assert dry == contact_events.Pruned(events=4, deliveries=4, failed=1, held=5)
    assert rows(db, "SELECT count(*) AS n FROM contact_events")[0]["n"] == 18  # a dry run changes nothing
    pruner = EventPruner(pool, 90)
    assert await pruner.prune_once() == dry
    left = rows(db, "SELECT case_id, kind FROM contact_events ORDER BY id")
    assert [e["kind"] for e in left if e["case_id"] == old.case_id] == [
        "ringing_agent", "answered", "talk_ended", "ended", "case_closed"]  # still owed: kept
    assert len([e for e in left if e["case_id"] == recent.case_id]) == 9  # younger than 90 days
    assert rows(db, "SELECT count(*) AS n FROM webhook_deliveries WHERE status <> 'pending'")[0]["n"] == 0
    assert await pruner.prune_once() == contact_events.Pruned(0, 0, 0, held=5)


async def test_events_show_prints_a_cases_webhook_bodies_and_purge_is_a_dry_run_without_yes(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    hop = await call(pool, ids)
    await write(db_dsn, answered_talk(hop, ids))

    async def hotline(*args: str, retention: str = "90") -> Result:  # the CLI runs its own loop
        return await asyncio.to_thread(CliRunner().invoke, main, list(args),
                                       env={"HOTLINE_DSN": db_dsn, "HOTLINE_EVENT_RETENTION": retention})
    shown = await hotline("events", "show", str(hop.case_id))
    assert shown.exit_code == 0, shown.output
    lines = [json.loads(line) for line in shown.output.splitlines()]
    assert [e["kind"] for e in lines][:2] == ["case_opened", "entered_hotline"] and len(lines) == 9
    assert lines[0]["case"] == hop.case_id and lines[0]["at"].endswith("Z")
    missing = await hotline("events", "show", "999999")
    assert missing.exit_code == 1 and "case 999999 does not exist" in missing.output
    db.execute("UPDATE contact_events SET at = now() - interval '40 days'")
    dry = await hotline("events", "purge", "--older-than", "30")
    assert dry.exit_code == 0 and "dry run: would delete 9 event(s)" in dry.output
    assert rows(db, "SELECT count(*) AS n FROM contact_events")[0]["n"] == 9
    unset = await hotline("events", "purge", retention="0")
    assert unset.exit_code == 2 and "event_retention" in unset.output
    done = await hotline("events", "purge", "--yes", retention="30")
    assert done.exit_code == 0 and "deleted 9 event(s) older than 30 day(s)" in done.output
    assert rows(db, "SELECT count(*) AS n FROM contact_events")[0]["n"] == 0


async def test_a_phone_dial_nobody_watched_to_its_end_is_closed_failed_once_no_daemon_could_watch_it(
        pool: AsyncConnectionPool, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    """The daemon stopped while the customer's phone rang: the next one closes the dial as not
    known once it is older than any ring a daemon watches, and leaves a younger one alone."""
    first, second = await call(pool, ids, "c1", "+79160000001"), await call(pool, ids, "c2", "+79160000002")
    await write(db_dsn, answered_talk(first, ids)[:4] + answered_talk(second, ids)[:4])
    switches = Switches(pool)
    old = await switches.issue(first.id, "cli", 335, to_number="+79160000001")
    await switches.issue(second.id, "cli", 335, to_number="+79160000002")  # ringing now: watched
    db.execute("UPDATE switches SET issued_at = now() - interval '7 minutes' WHERE from_hop_id = %s",
               (first.id,))
    sweeper = UnwatchedDials(switches)
    assert sweeper.watched_for_s >= 300 + 5  # a trunk's longest ring and the watcher's grace
    [closed] = await sweeper.sweep()
    assert rows(db, "SELECT from_hop_id, outcome, hangup_cause_text FROM switches ORDER BY id") == [
        {"from_hop_id": first.id, "outcome": "failed", "hangup_cause_text": UNWATCHED_DIAL},
        {"from_hop_id": second.id, "outcome": None, "hangup_cause_text": None}]
    assert rows(db, "SELECT case_id, data FROM contact_events WHERE kind = 'switch_failed'") == [
        {"case_id": first.case_id, "data": {"switch_id": closed, "to": "phone", "outcome": "failed",
                                            "cause_text": UNWATCHED_DIAL}}]
    assert await sweeper.sweep() == []  # once
    assert not await switches.phone_not_answered(old.token, "busy", 17, "User busy")  # closed already
