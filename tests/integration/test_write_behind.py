"""What calls record, written behind them (hotline.store.write_behind), against the lab's real
PostgreSQL: order kept across batches, a refused record loses only itself, records dated when
they happened, nothing lost through an outage or a stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from hotline.lab import Lab
from hotline.store.contacts import Contacts
from hotline.store.db import APPLICATION_NAME, open_pool
from hotline.store.hops import Hop, NewHop
from hotline.store.records import (
    QueueEvent,
    Record,
    by_channel,
    close_hop_record,
    hold_end_record,
    hold_record,
    ivr_digit_record,
    late_hop_record,
    queue_event_record,
    refused_record,
    survey_answer_record,
    survey_record,
)
from hotline.store.write_behind import WriteBehind

from support.checks import rows

pytestmark = pytest.mark.lab


@pytest.fixture
def queue_id(db: psycopg.Connection) -> int:
    return int(db.execute("INSERT INTO queues (name) VALUES ('support') RETURNING id").fetchone()[0])


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=4, timeout=1.0)
    async with pool:
        yield pool


@pytest.fixture
async def records(pool: AsyncConnectionPool) -> AsyncIterator[WriteBehind]:
    writer = WriteBehind(pool, patience_s=30)
    writer.start()
    yield writer
    await writer.close()


async def open_hop(pool: AsyncConnectionPool, channel: str, entered_at: datetime | None = None) -> Hop:
    return await Contacts(pool).open_case_with_hop(
        NewHop(node="n1", channel_id=channel, channel_name=f"PJSIP/trunk-{channel}", channel_kind="pstn",
               media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num="+79161234567",
               caller_name="", entered_at=entered_at), "+79161234567")


def event(hop: Hop, queue_id: int, name: str, **fields: object) -> QueueEvent:
    return QueueEvent(queue_id=queue_id, case_id=hop.case_id, hop_id=hop.id, event=name, **fields)  # type: ignore[arg-type]


async def test_records_of_many_calls_are_written_in_the_order_they_were_made(
        pool: AsyncConnectionPool, records: WriteBehind, queue_id: int, db: psycopg.Connection) -> None:
    hops = [await open_hop(pool, f"c{i}") for i in range(3)]
    made = []
    for n in range(300):  # far more than one round trip carries while the first is on its way
        hop = hops[n % 3]
        records.submit(queue_event_record(event(hop, queue_id, "ring", detail=str(n))))
        made.append((hop.id, str(n)))
    for hop in hops:
        await records.write(close_hop_record(hop.id, "completed", cause=16))
    written = rows(db, "SELECT hop_id, detail FROM queue_events ORDER BY id")
    assert [(r["hop_id"], r["detail"]) for r in written] == made
    assert rows(db, "SELECT count(*) AS n FROM hops WHERE end_reason = 'completed'") == [{"n": 3}]


async def test_a_record_the_database_refuses_loses_only_itself(
        pool: AsyncConnectionPool, queue_id: int, db: psycopg.Connection) -> None:
    hop = await open_hop(pool, "c1")
    records = WriteBehind(pool, patience_s=30)  # started once all four wait: one batch
    records.submit(queue_event_record(event(hop, queue_id, "join", position=1)))
    no_place = queue_event_record(event(hop, queue_id, "join", position=0))
    refused = asyncio.ensure_future(records.write(no_place))
    await asyncio.sleep(0)
    records.submit(ivr_digit_record(hop.id, "5"))
    abandoned = asyncio.ensure_future(records.write(queue_event_record(
        event(hop, queue_id, "abandon", position=1, wait_ms=900))))
    await asyncio.sleep(0)
    assert records.pending == 4
    records.start()
    try:
        await abandoned
        with pytest.raises(psycopg.errors.CheckViolation):  # no place 0 in a line
            await refused
    finally:
        await records.close()
    assert [r["event"] for r in rows(db, "SELECT event FROM queue_events ORDER BY id")] == ["join", "abandon"]
    assert rows(db, "SELECT ivr_path, queue_id FROM hops") == [{"ivr_path": "5", "queue_id": queue_id}]


async def test_records_are_dated_when_they_happened_not_when_written(
        pool: AsyncConnectionPool, records: WriteBehind, queue_id: int, db: psycopg.Connection) -> None:
    entered = datetime.now(UTC) - timedelta(minutes=5)
    hop = await open_hop(pool, "c1", entered)
    joined = entered + timedelta(seconds=10)
    answered, ended = joined + timedelta(seconds=40), joined + timedelta(seconds=100)
    records.submit(queue_event_record(event(hop, queue_id, "join", position=1, at=joined)))
    records.submit(queue_event_record(event(hop, queue_id, "answer", wait_ms=40000, at=answered)))
    await records.write(close_hop_record(hop.id, "completed", cause=16, at=ended))
    assert [r["at"] for r in rows(db, "SELECT at FROM queue_events ORDER BY id")] == [joined, answered]
    assert rows(db, "SELECT queued_at, answered_at, ended_at FROM hops") == [
        {"queued_at": joined, "answered_at": answered, "ended_at": ended}]
    assert rows(db, "SELECT closed_at FROM cases") == [{"closed_at": ended}]


async def test_records_made_during_an_outage_are_written_when_the_database_is_back(
        lab: Lab, pool: AsyncConnectionPool, records: WriteBehind, queue_id: int,
        db: psycopg.Connection) -> None:
    hop = await open_hop(pool, "c1")
    name = db.info.dbname
    with psycopg.connect(lab.admin_dsn(), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT 0')
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s AND application_name = %s", (name, APPLICATION_NAME))
            for n in range(5):
                records.submit(queue_event_record(event(hop, queue_id, "ring", detail=str(n))))
            closed = asyncio.ensure_future(records.write(close_hop_record(hop.id, "completed", cause=16)))
            assert not await records.flush(timeout=2.0)  # still waiting for the database
            assert rows(db, "SELECT id FROM queue_events") == []
        finally:
            admin.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT -1')
    await asyncio.wait_for(closed, 30)
    assert [r["detail"] for r in rows(db, "SELECT detail FROM queue_events ORDER BY id")] == list("01234")
    assert rows(db, "SELECT end_reason FROM hops") == [{"end_reason": "completed"}]


async def test_a_stop_writes_what_is_pending_first(
        pool: AsyncConnectionPool, queue_id: int, db: psycopg.Connection) -> None:
    writer = WriteBehind(pool)
    writer.start()
    hop = await open_hop(pool, "c1")
    for n in range(50):
        writer.submit(queue_event_record(event(hop, queue_id, "ring", detail=str(n))))
    await writer.close()
    assert rows(db, "SELECT count(*) AS n FROM queue_events") == [{"n": 50}]


class ReplyLostOnce(WriteBehind):
    """Its first batch is committed, then the reply is lost: what a connection that drops
    between the commit and its answer does to the write-behind."""

    lost = False

    async def _in_one_statement(self, batch_no: int, records: list[Record]) -> None:
        await super()._in_one_statement(batch_no, records)
        if not self.lost:
            self.lost = True
            raise psycopg.OperationalError("server closed the connection unexpectedly")


async def test_a_batch_whose_reply_was_lost_is_not_written_twice(
        pool: AsyncConnectionPool, queue_id: int, db: psycopg.Connection) -> None:
    hop = await open_hop(pool, "c1")
    writer = ReplyLostOnce(pool, patience_s=30)
    writer.submit(queue_event_record(event(hop, queue_id, "join", position=1)))
    writer.submit(ivr_digit_record(hop.id, "5"))
    answer = queue_event_record(event(hop, queue_id, "answer", wait_ms=900))
    answered = asyncio.ensure_future(writer.write(answer))
    await asyncio.sleep(0)
    writer.start()
    try:
        await asyncio.wait_for(answered, 10)  # written once, then "retried"
        await writer.write(close_hop_record(hop.id, "completed", cause=16))  # the next batch
    finally:
        await writer.close()
    assert writer.lost
    assert [r["event"] for r in rows(db, "SELECT event FROM queue_events ORDER BY id")] == ["join", "answer"]
    assert rows(db, "SELECT ivr_path, end_reason FROM hops") == [{"ivr_path": "5", "end_reason": "completed"}]
    assert rows(db, "SELECT node, last_batch FROM record_writers") == [{"node": writer.node, "last_batch": 2}]


async def test_a_busy_refusal_written_behind_is_one_closed_case_with_its_ended_hop_even_if_retried(
        pool: AsyncConnectionPool, db: psycopg.Connection) -> None:
    leg = NewHop(node="n1", channel_id="b1", channel_name="PJSIP/trunk-b1", channel_kind="pstn",
                 media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num="89160000002",
                 caller_name="", entered_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    refused = refused_record(leg, "+79160000002", "busy", 17, "User busy")
    await Contacts(pool).write([refused])
    await Contacts(pool).write([refused])  # a record retried alone after its batch was refused
    assert rows(db, "SELECT seq, end_reason, hangup_cause, caller_num, line FROM hops") == [
        {"seq": 1, "end_reason": "busy", "hangup_cause": 17, "caller_num": "89160000002", "line": None}]
    assert rows(db, "SELECT customer_key, status FROM cases") == [
        {"customer_key": "+79160000002", "status": "closed"}]


async def test_a_hop_written_late_takes_the_records_that_name_its_channel_and_is_written_once(
        pool: AsyncConnectionPool, db: psycopg.Connection, queue_id: int) -> None:
    """A call served while the database was away: when it ends, its hop and its records go
    through the write-behind, the records naming the hop by its channel."""
    leg = NewHop(node="n1", channel_id="l1", channel_name="PJSIP/trunk-l1", channel_kind="pstn",
                 media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num="89160000003",
                 caller_name="", entered_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    at = datetime(2026, 12, 2, 9, 0, 5, tzinfo=UTC)
    batch = [late_hop_record(leg, "+79160000003"),
             *(by_channel(r, "n1", "l1") for r in (
                 ivr_digit_record(0, "2"),
                 queue_event_record(QueueEvent(queue_id, 0, 0, "join", position=1, at=at)),
                 queue_event_record(QueueEvent(queue_id, 0, 0, "abandon", wait_ms=4000,
                                               at=at + timedelta(seconds=4))),
                 close_hop_record(0, "abandoned", cause=16, at=at + timedelta(seconds=4))))]
    assert await Contacts(pool).write(batch) == 1  # it closed one hop
    await Contacts(pool).write(batch[:1])  # the hop's record retried alone: no second hop
    [hop] = rows(db, "SELECT id, case_id, ivr_path, queue_id, queued_at, end_reason, hangup_cause FROM hops")
    assert (hop["ivr_path"], hop["queue_id"], hop["queued_at"], hop["end_reason"], hop["hangup_cause"]) == (
        "2", queue_id, at, "abandoned", 16)
    assert rows(db, "SELECT case_id, hop_id, event FROM queue_events ORDER BY id") == [
        {"case_id": hop["case_id"], "hop_id": hop["id"], "event": "join"},
        {"case_id": hop["case_id"], "hop_id": hop["id"], "event": "abandon"}]
    assert rows(db, "SELECT customer_key, status FROM cases") == [
        {"customer_key": "+79160000003", "status": "closed"}]


async def test_a_survey_after_a_talk_is_written_in_order_with_the_talk_even_for_a_hop_written_late(
        pool: AsyncConnectionPool, db: psycopg.Connection, queue_id: int) -> None:
    """Migration 039's records in one batch with the others: the survey after the complete, its
    answers with the talk's queue and agent, the hop closed after them; retried alone, none twice."""
    agent = int(db.execute("INSERT INTO agents (name, endpoint) VALUES ('anna', 'anna') RETURNING id")
                .fetchone()[0])
    leg = NewHop(node="n1", channel_id="s1", channel_name="PJSIP/trunk-s1", channel_kind="pstn",
                 media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num="89160000004",
                 caller_name="", entered_at=datetime.now(UTC) - timedelta(seconds=60))
    ended = datetime.now(UTC) - timedelta(seconds=20)
    batch = [late_hop_record(leg, "+79160000004"), *(by_channel(r, "n1", "s1") for r in (
        queue_event_record(QueueEvent(queue_id, 0, 0, "join", position=1, at=ended - timedelta(seconds=35))),
        queue_event_record(QueueEvent(queue_id, 0, 0, "answer", agent_id=agent, wait_ms=5000,
                                      at=ended - timedelta(seconds=30))),
        queue_event_record(QueueEvent(queue_id, 0, 0, "complete", agent_id=agent, talk_ms=30_000,
                                      detail="agent hung up", at=ended)),
        survey_record(0, queue_id, agent, 2, ended),
        survey_answer_record(0, 1, 4, ended + timedelta(seconds=5)),
        survey_answer_record(0, 2, 1, ended + timedelta(seconds=9)),
        close_hop_record(0, "completed", cause=16, at=ended + timedelta(seconds=12))))]
    assert await Contacts(pool).write(batch) == 1
    for record in batch[4:7]:  # retried alone (after their batch was refused): nothing twice
        await Contacts(pool).write([record])
    [hop] = rows(db, "SELECT id, case_id, end_reason FROM hops")
    assert rows(db, "SELECT hop_id, queue_id, agent_id, questions, started_at FROM surveys") == [
        {"hop_id": hop["id"], "queue_id": queue_id, "agent_id": agent, "questions": 2, "started_at": ended}]
    assert rows(db, "SELECT case_id, hop_id, queue_id, agent_id, question, score FROM survey_answers"
                    " ORDER BY question") == [
        {"case_id": hop["case_id"], "hop_id": hop["id"], "queue_id": queue_id, "agent_id": agent,
         "question": q, "score": s} for q, s in ((1, 4), (2, 1))]
    kinds = [r["kind"] for r in rows(db, "SELECT kind FROM contact_events WHERE hop_id = %s ORDER BY id",
                                     hop["id"])]
    assert kinds == ["entered_hotline", "queued", "answered", "talk_ended", "survey_answered",
                     "survey_answered", "ended"]
    assert hop["end_reason"] == "completed"


async def test_holds_of_a_talk_are_written_with_who_held_once_each_and_an_open_one_closed_with_the_hop(
        pool: AsyncConnectionPool, db: psycopg.Connection, queue_id: int) -> None:
    """Migration 042's records for a hop written late: the agent's hold and its end, the customer's
    hold left open (closed by the hop's end); retried alone, none twice."""
    agent = int(db.execute("INSERT INTO agents (name, endpoint) VALUES ('anna', 'anna') RETURNING id")
                .fetchone()[0])
    leg = NewHop(node="n1", channel_id="h1", channel_name="PJSIP/trunk-h1", channel_kind="pstn",
                 media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num="89160000005",
                 caller_name="", entered_at=datetime.now(UTC) - timedelta(seconds=60))
    answered = datetime.now(UTC) - timedelta(seconds=50)
    ended = answered + timedelta(seconds=40)
    batch = [late_hop_record(leg, "+79160000005"), *(by_channel(r, "n1", "h1") for r in (
        queue_event_record(QueueEvent(queue_id, 0, 0, "join", position=1,
                                      at=answered - timedelta(seconds=5))),
        queue_event_record(QueueEvent(queue_id, 0, 0, "answer", agent_id=agent, wait_ms=5000, at=answered)),
        hold_record(0, "agent", queue_id, agent, answered + timedelta(seconds=10)),
        hold_end_record(0, "agent", answered + timedelta(seconds=22)),
        hold_record(0, "customer", queue_id, agent, answered + timedelta(seconds=30)),
        close_hop_record(0, "completed", cause=16, at=ended)))]
    assert await Contacts(pool).write(batch) == 1
    for record in batch[3:6]:
        await Contacts(pool).write([record])
    [hop] = rows(db, "SELECT id, case_id FROM hops")
    assert rows(db, "SELECT case_id, hop_id, queue_id, agent_id, held_by, started_at, ended_at FROM holds"
                    " ORDER BY id") == [
        {"case_id": hop["case_id"], "hop_id": hop["id"], "queue_id": queue_id, "agent_id": agent,
         "held_by": "agent", "started_at": answered + timedelta(seconds=10),
         "ended_at": answered + timedelta(seconds=22)},
        {"case_id": hop["case_id"], "hop_id": hop["id"], "queue_id": queue_id, "agent_id": agent,
         "held_by": "customer", "started_at": answered + timedelta(seconds=30), "ended_at": ended}]
    events = rows(db, "SELECT kind, agent, data FROM contact_events WHERE kind LIKE 'hold_%%' ORDER BY id")
    assert [(e["kind"], e["agent"], e["data"]["held_by"], e["data"].get("hold_ms")) for e in events] == [
        ("hold_started", "anna", "agent", None), ("hold_ended", "anna", "agent", 12000),
        ("hold_started", "anna", "customer", None), ("hold_ended", "anna", "customer", 10000)]


def details(db: psycopg.Connection) -> list[str]:
    return [r["detail"] for r in rows(db, "SELECT detail FROM queue_events ORDER BY id")]


async def test_past_its_memory_bound_an_outage_goes_to_the_spool_and_nothing_is_lost(
        lab: Lab, pool: AsyncConnectionPool, queue_id: int, db: psycopg.Connection, tmp_path: Path) -> None:
    hop = await open_hop(pool, "c1")
    writer = WriteBehind(pool, patience_s=60, max_pending=10, max_batch=4, spool_dir=tmp_path)
    writer.start()
    try:
        with lab.database_cut_off(db.info.dbname, APPLICATION_NAME):
            for n in range(25):
                writer.submit(queue_event_record(event(hop, queue_id, "ring", detail=f"{n:02d}")))
            assert writer.pending < 10 + 4  # memory holds at most its bound and the batch in flight
            assert writer.spooled_records >= 20 and len(list(tmp_path.glob("*.jsonl"))) == 2
            assert not await writer.flush(timeout=1.0)
        assert await writer.flush(timeout=30)
    finally:
        await writer.close()
    assert details(db) == [f"{n:02d}" for n in range(25)]  # each once, in the order recorded
    assert list(tmp_path.iterdir()) == []  # every segment written, then deleted


async def test_an_outage_longer_than_the_patience_is_spooled_not_dropped(
        lab: Lab, pool: AsyncConnectionPool, queue_id: int, db: psycopg.Connection, tmp_path: Path) -> None:
    hop = await open_hop(pool, "c1")
    writer = WriteBehind(pool, patience_s=0.5, spool_dir=tmp_path)
    writer.start()
    try:
        with lab.database_cut_off(db.info.dbname, APPLICATION_NAME):
            for n in range(3):
                writer.submit(queue_event_record(event(hop, queue_id, "ring", detail=str(n))))
            deadline = asyncio.get_running_loop().time() + 10
            while writer.spooled_records < 3 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            assert writer.spooled_records == 3  # on disk past the patience, not lost
            writer.submit(queue_event_record(event(hop, queue_id, "ring", detail="3")))  # after them
        assert await writer.flush(timeout=30)
    finally:
        await writer.close()
    assert details(db) == ["0", "1", "2", "3"]


async def test_a_daemon_started_later_writes_what_a_stopped_one_spooled(
        lab: Lab, pool: AsyncConnectionPool, queue_id: int, db: psycopg.Connection, tmp_path: Path) -> None:
    hop = await open_hop(pool, "c1")
    first = WriteBehind(pool, patience_s=60, spool_dir=tmp_path)
    first.start()
    with lab.database_cut_off(db.info.dbname, APPLICATION_NAME):
        for n in range(4):
            first.submit(queue_event_record(event(hop, queue_id, "ring", detail=str(n))))
        await first.close(timeout=1.0)  # stopping in the outage: the records go to disk
        assert len(list(tmp_path.glob("*.jsonl"))) == 1
    assert details(db) == []
    second = WriteBehind(pool, spool_dir=tmp_path)
    second.start()
    second.submit(queue_event_record(event(hop, queue_id, "ring", detail="4")))  # after the spooled ones
    try:
        assert await second.flush(timeout=30)
    finally:
        await second.close()
    assert details(db) == ["0", "1", "2", "3", "4"]
    assert list(tmp_path.iterdir()) == []
