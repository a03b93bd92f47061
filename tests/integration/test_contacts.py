"""Cases, hops and queue events as the daemon writes them (hotline.store.contacts), against the
lab's real PostgreSQL: line limits, one close per hop, what each queue event changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from hotline.store.contacts import Contacts, LinesBusy
from hotline.store.db import open_pool
from hotline.store.hops import Hop, NewHop
from hotline.store.records import QueueEvent

from support.checks import rows

pytestmark = pytest.mark.lab


@pytest.fixture
def number_id(db: psycopg.Connection) -> int:
    db.execute("INSERT INTO queues (name) VALUES ('support')")
    db.execute("INSERT INTO agents (name, endpoint) VALUES ('ivanov', 'ivanov')")
    db.execute("INSERT INTO hotlines (name, entry_queue_id) SELECT 'city', id FROM queues")
    return int(db.execute("INSERT INTO numbers (number, kind, hotline_id, line_limit)"
                          " SELECT '+74951234567', 'city', id, 2 FROM hotlines RETURNING id").fetchone()[0])


@pytest.fixture
async def contacts(db_dsn: str) -> AsyncIterator[Contacts]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=4)
    async with pool:
        yield Contacts(pool)


def leg(channel: str, number_id: int | None) -> NewHop:
    return NewHop(node="n1", channel_id=channel, channel_name=f"PJSIP/trunk-{channel}", channel_kind="pstn",
                  media="audio", dialled="84951234567", dialled_e164="+74951234567",
                  caller_num="+79161234567", caller_name="Caller", number_id=number_id)


async def test_legs_take_the_lowest_free_lines_and_the_one_past_the_limit_is_refused(
        contacts: Contacts, number_id: int, db: psycopg.Connection) -> None:
    first = await contacts.open_case_with_hop(leg("c1", number_id), "+79161234567", line_limit=2)
    second = await contacts.open_case_with_hop(leg("c2", number_id), "+79161234567", line_limit=2)
    assert (first.line, second.line) == (1, 2)
    with pytest.raises(LinesBusy):
        await contacts.open_case_with_hop(leg("c3", number_id), "+79161234567", line_limit=2)
    assert len(rows(db, "SELECT id FROM cases")) == 2  # the refused leg left no case behind
    await contacts.close_hop(first.id, "completed", cause=16)
    third = await contacts.open_case_with_hop(leg("c4", number_id), "+79161234567", line_limit=2)
    assert third.line == 1


async def test_many_legs_arriving_at_once_on_a_limited_number_take_distinct_lines_first_time(
        contacts: Contacts, number_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Legs take lines one at a time in the database: nobody loses a race and retries (under
    # overload such retries once piled up until calls waited seconds for their hop).
    attempts = count_opens(monkeypatch)
    opened = await asyncio.gather(*(contacts.open_case_with_hop(leg(f"u{i}", number_id), "k", line_limit=40)
                                    for i in range(30)))
    assert sorted(h.line for h in opened if h.line is not None) == list(range(1, 31))
    assert attempts() == 30


async def test_legs_on_an_unlimited_number_take_no_line_and_never_wait_for_each_other(
        contacts: Contacts, number_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = count_opens(monkeypatch)
    opened = await asyncio.gather(*(contacts.open_case_with_hop(leg(f"u{i}", number_id), "k", line_limit=None)
                                    for i in range(30)))
    assert {(h.number_id, h.line) for h in opened} == {(number_id, None)}
    assert len({h.case_id for h in opened}) == 30 and attempts() == 30


def count_opens(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many times Contacts._open ran (a leg that lost a race for a line runs it again)."""
    attempts = 0
    original = Contacts._open

    async def counted(self: Contacts, *args: object) -> object:
        nonlocal attempts
        attempts += 1
        return await original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Contacts, "_open", counted)
    return lambda: attempts


async def test_legs_racing_for_the_last_line_get_it_once(contacts: Contacts, number_id: int) -> None:
    results = await asyncio.gather(*(contacts.open_case_with_hop(leg(f"r{i}", number_id), "k", line_limit=2)
                                     for i in range(6)), return_exceptions=True)
    taken = sorted(r.line for r in results if not isinstance(r, BaseException) and r.line is not None)
    assert taken == [1, 2]
    assert sum(isinstance(r, LinesBusy) for r in results) == 4




async def test_a_leg_on_no_provisioned_number_holds_no_line(contacts: Contacts) -> None:
    hop = await contacts.open_case_with_hop(leg("x1", None), "k")
    assert hop.line is None and hop.number_id is None and hop.seq == 1


async def test_opening_the_same_channel_twice_returns_the_first_hop(contacts: Contacts, number_id: int,
                                                                    db: psycopg.Connection) -> None:
    first = await contacts.open_case_with_hop(leg("c1", number_id), "k", line_limit=2)
    again = await contacts.open_case_with_hop(leg("c1", number_id), "k", line_limit=2)
    assert again.id == first.id
    assert len(rows(db, "SELECT id FROM hops")) == 1


async def test_a_hop_is_closed_once_and_its_case_with_it(contacts: Contacts, number_id: int,
                                                         db: psycopg.Connection) -> None:
    hop = await contacts.open_case_with_hop(leg("c1", number_id), "k", line_limit=2)
    assert await contacts.close_hop(hop.id, "completed", cause=16, cause_text="Normal Clearing") is True
    assert await contacts.close_hop(hop.id, "failed") is False
    assert rows(db, "SELECT end_reason, hangup_cause, hangup_cause_text FROM hops") == [
        {"end_reason": "completed", "hangup_cause": 16, "hangup_cause_text": "Normal Clearing"}]
    assert rows(db, "SELECT status FROM cases") == [{"status": "closed"}]


async def test_a_case_stays_open_while_another_of_its_hops_is_live(contacts: Contacts, number_id: int,
                                                                   db: psycopg.Connection) -> None:
    hop = await contacts.open_case_with_hop(leg("c1", number_id), "k", line_limit=2)
    db.execute("INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, media, dialled)"
               " VALUES (%s, 2, 'n1', 'video-1', 'webrtc', 'video', 'video')", (hop.case_id,))
    await contacts.close_hop(hop.id, "switched")
    assert rows(db, "SELECT status FROM cases") == [{"status": "open"}]


async def test_join_and_answer_events_stamp_the_hop_and_the_case(contacts: Contacts, number_id: int,
                                                                 db: psycopg.Connection) -> None:
    hop = await contacts.open_case_with_hop(leg("c1", number_id), "k", line_limit=2)
    queue_id = rows(db, "SELECT id FROM queues")[0]["id"]
    agent_id = rows(db, "SELECT id FROM agents")[0]["id"]
    for event in (QueueEvent(queue_id, hop.case_id, hop.id, "join", position=1),
                  QueueEvent(queue_id, hop.case_id, hop.id, "ring", agent_id=agent_id),
                  QueueEvent(queue_id, hop.case_id, hop.id, "answer", agent_id=agent_id, wait_ms=4200,
                             ring_ms=800)):
        await contacts.queue_event(event)
    stamped = rows(db, "SELECT queue_id, agent_id, queued_at IS NOT NULL AS queued,"
                       " answered_at IS NOT NULL AS answered FROM hops")
    assert stamped == [{"queue_id": queue_id, "agent_id": agent_id, "queued": True, "answered": True}]
    assert rows(db, "SELECT last_agent_id FROM cases") == [{"last_agent_id": agent_id}]
    events = rows(db, "SELECT event, agent_id, position, wait_ms, ring_ms FROM queue_events ORDER BY id")
    assert events == [
        {"event": "join", "agent_id": None, "position": 1, "wait_ms": None, "ring_ms": None},
        {"event": "ring", "agent_id": agent_id, "position": None, "wait_ms": None, "ring_ms": None},
        {"event": "answer", "agent_id": agent_id, "position": None, "wait_ms": 4200, "ring_ms": 800}]


async def talked_and_hung_up(contacts: Contacts, number_id: int, channel: str, key: str,
                             db: psycopg.Connection, within: int | None = 900) -> Hop:
    hop = await contacts.open_case_with_hop(leg(channel, number_id), key, continue_within_s=within)
    queue, agent = (db.execute(f"SELECT id FROM {t}").fetchone()[0] for t in ("queues", "agents"))
    await contacts.queue_event(QueueEvent(queue, hop.case_id, hop.id, "answer", agent_id=agent))
    await contacts.close_hop(hop.id, "completed", cause=16)
    return hop


async def test_a_customer_calling_again_within_the_window_continues_their_case_with_its_last_agent(
        contacts: Contacts, number_id: int, db: psycopg.Connection) -> None:
    first = await talked_and_hung_up(contacts, number_id, "c1", "+79161234567", db)
    again = await contacts.open_case_with_hop(leg("c2", number_id), "+79161234567", continue_within_s=900)
    assert (again.case_id, again.seq) == (first.case_id, 2)
    ivanov = db.execute("SELECT id FROM agents WHERE name = 'ivanov'").fetchone()[0]
    assert again.case_last_agent_id == ivanov
    assert rows(db, "SELECT status, closed_at FROM cases") == [{"status": "open", "closed_at": None}]
    await contacts.close_hop(again.id, "completed", cause=16)
    assert rows(db, "SELECT status FROM cases") == [{"status": "closed"}]  # closed again with its last hop


async def test_a_case_is_not_continued_after_the_window_nor_while_open_nor_for_anonymous_callers(
        contacts: Contacts, number_id: int, db: psycopg.Connection) -> None:
    old = await talked_and_hung_up(contacts, number_id, "c1", "+79161234567", db)
    db.execute("UPDATE cases SET closed_at = now() - interval '901 seconds',"
               " opened_at = now() - interval '1 hour'")
    late = await contacts.open_case_with_hop(leg("c2", number_id), "+79161234567", continue_within_s=900)
    assert late.case_id != old.case_id and late.seq == 1 and late.case_last_agent_id is None
    # c2 is live: a second call from the same number (an office switchboard) is a contact of its own
    meanwhile = await contacts.open_case_with_hop(leg("c3", None), "+79161234567", continue_within_s=900)
    assert meanwhile.case_id not in (old.case_id, late.case_id)
    anonymous = await talked_and_hung_up(contacts, number_id, "c4", "anonymous:sipp-trunk", db)
    again = await contacts.open_case_with_hop(leg("c5", None), "anonymous:sipp-trunk", continue_within_s=900)
    assert again.case_id != anonymous.case_id
    off = await talked_and_hung_up(contacts, number_id, "c6", "+79160000000", db)
    assert (await contacts.open_case_with_hop(leg("c7", None), "+79160000000")).case_id != off.case_id


async def test_two_calls_of_one_customer_at_once_reopen_the_case_for_one_of_them(
        contacts: Contacts, number_id: int, db: psycopg.Connection) -> None:
    first = await talked_and_hung_up(contacts, number_id, "c1", "+79161234567", db)
    both = await asyncio.gather(*(contacts.open_case_with_hop(leg(f"x{i}", None), "+79161234567",
                                                              continue_within_s=900) for i in range(2)))
    assert sorted(h.case_id == first.case_id for h in both) == [False, True]


async def test_a_visit_a_transfer_to_one_agent_or_a_number_began_is_first_in_line_and_no_other(
        contacts: Contacts, number_id: int, db: psycopg.Connection) -> None:
    """What a restarted daemon asks of a waiting caller's hop: did its visit begin first in line?"""
    queue, agent = (db.execute(f"SELECT id FROM {t}").fetchone()[0] for t in ("queues", "agents"))
    seen = {}
    for channel, before in (("c1", None), ("c2", "agent:boris"), ("c3", "number:+79161234567"),
                            ("c4", "queue:sales"), ("c5", "agent:boris;overflowed")):
        hop = await contacts.open_case_with_hop(leg(channel, number_id), channel)
        await contacts.queue_event(QueueEvent(queue, hop.case_id, hop.id, "join", position=1))
        if before is not None:
            target = before.split(";")[0]
            await contacts.queue_event(QueueEvent(queue, hop.case_id, hop.id, "answer", agent_id=agent))
            await contacts.queue_event(QueueEvent(queue, hop.case_id, hop.id, "transfer", agent_id=agent,
                                                  detail=target))
            await contacts.queue_event(QueueEvent(queue, hop.case_id, hop.id, "join", position=1))
            if before.endswith("overflowed"):  # a later visit, begun by an overflow: not first
                await contacts.queue_event(QueueEvent(queue, hop.case_id, hop.id, "overflow"))
                await contacts.queue_event(QueueEvent(queue, hop.case_id, hop.id, "join", position=3))
        seen[channel] = await contacts.joined_first_in_line(hop.id)
    assert seen == {"c1": False, "c2": True, "c3": True, "c4": False, "c5": False}
