"""Queued callback requests in the lab's PostgreSQL: the line keeps callers' join times, and two
daemons claiming at once never hold the same request."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from hotline.cli import main
from hotline.errors import CallbackError
from hotline.store import callbacks
from hotline.store.db import connect

from support.checks import rows
from support.provisioning import provision

pytestmark = pytest.mark.lab

PROVISIONING = """
[queues.support]
[queues.sales]
"""


@pytest.fixture
def queues(db_dsn: str, db: psycopg.Connection) -> dict[str, int]:
    provision(db_dsn, PROVISIONING)
    return dict(db.execute("SELECT name, id FROM queues").fetchall())


@pytest.fixture
async def conn(db_dsn: str, queues: dict[str, int]) -> AsyncIterator[AsyncConnection]:
    connection = await connect(db_dsn)
    async with connection:
        yield connection


def ago(seconds: float) -> datetime:
    return datetime.now().astimezone() - timedelta(seconds=seconds)


async def new_case(conn: AsyncConnection, customer: str = "+79161234567") -> int:
    cur = await conn.execute("INSERT INTO cases (customer_key) VALUES (%s) RETURNING id", (customer,))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def ask(conn: AsyncConnection, queue_id: int, *, joined_s_ago: float, due_s_ago: float = 0,
              number: str = "+79161234567", expires_in_s: float | None = 3600) -> callbacks.CallbackRequest:
    return await callbacks.request(
        conn, case_id=await new_case(conn, number), hop_id=None, queue_id=queue_id, number=number,
        joined_at=ago(joined_s_ago), due_at=ago(due_s_ago),
        expires_at=None if expires_in_s is None else ago(-expires_in_s))


async def test_a_request_keeps_the_callers_join_time_and_a_second_press_keeps_the_one_request(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    joined = ago(300)
    case_id = await new_case(conn)
    first = await callbacks.request(conn, case_id=case_id, hop_id=None, queue_id=queues["support"],
                                    number="+79161234567", joined_at=joined, due_at=ago(0), expires_at=None)
    again = await callbacks.request(conn, case_id=case_id, hop_id=None, queue_id=queues["support"],
                                    number="+79161234567", joined_at=ago(0), due_at=ago(0), expires_at=None)
    assert again.id == first.id and again.joined_at == joined
    assert first.status == "pending" and first.attempts == 0
    assert len(await callbacks.open_requests(conn)) == 1


async def test_the_oldest_join_is_claimed_first_and_only_when_due_and_only_of_the_daemons_queues(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    late_asker = await ask(conn, queues["support"], joined_s_ago=600)  # asked last, waited longest
    await ask(conn, queues["support"], joined_s_ago=60)
    await ask(conn, queues["support"], joined_s_ago=900, due_s_ago=-120)  # the next opening: not yet
    await ask(conn, queues["sales"], joined_s_ago=1200)
    claimed = await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60)
    assert claimed is not None and claimed.id == late_asker.id
    assert claimed.status == "placing" and claimed.placed_by == "run-a"
    second = await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60)
    assert second is not None and second.joined_at > claimed.joined_at
    assert await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60) is None


async def test_a_request_claimed_by_one_daemon_is_skipped_by_the_other_even_before_it_commits(
        conn: AsyncConnection, db_dsn: str, queues: dict[str, int]) -> None:
    first = await ask(conn, queues["support"], joined_s_ago=600)
    second = await ask(conn, queues["support"], joined_s_ago=300)
    other = await connect(db_dsn)
    async with other:
        async with conn.transaction():
            mine = await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60)
            theirs = await asyncio.wait_for(  # not waiting for the first claim's lock: skipping it
                callbacks.claim(other, [queues["support"]], "run-b", lease_s=60), 5)
        assert mine is not None and theirs is not None
        assert (mine.id, theirs.id) == (first.id, second.id)
        assert await callbacks.claim(other, [queues["support"]], "run-b", lease_s=60) is None


async def test_two_daemons_claiming_at_once_never_hold_the_same_request(
        conn: AsyncConnection, db_dsn: str, db: psycopg.Connection, queues: dict[str, int]) -> None:
    asked = {(await ask(conn, queues["support"], joined_s_ago=1000 - n)).id for n in range(30)}

    async def daemon(run: str) -> list[int]:
        mine: list[int] = []
        own = await connect(db_dsn)
        async with own:
            while (got := await callbacks.claim(own, [queues["support"]], run, lease_s=60)) is not None:
                mine.append(got.id)
                await asyncio.sleep(0)
        return mine

    a, b, c = await asyncio.gather(daemon("run-a"), daemon("run-b"), daemon("run-c"))
    assert sorted(a + b + c) == sorted(asked)  # every one claimed, none twice
    holders = rows(db, "SELECT placed_by, count(*) AS n FROM callbacks GROUP BY 1")
    assert sum(h["n"] for h in holders) == 30 and all(h["placed_by"] for h in holders)


async def test_an_unanswered_callback_waits_for_its_retry_then_is_given_up(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    req = await ask(conn, queues["support"], joined_s_ago=600)
    assert await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60) is not None
    await callbacks.unanswered(conn, req.id, "run-a", retry_at=ago(-300), detail="no answer")
    assert await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60) is None  # not due yet
    await conn.execute("UPDATE callbacks SET due_at = now() - interval '1 s' WHERE id = %s", (req.id,))
    again = await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60)
    assert again is not None and again.id == req.id
    assert again.attempts == 1 and again.joined_at == req.joined_at
    await callbacks.unanswered(conn, req.id, "run-a", retry_at=None, detail="not answered in 2 attempts")
    [ended] = [r for r in await _all(conn) if r.id == req.id]
    assert (ended.status, ended.attempts, ended.detail) == ("failed", 2, "not answered in 2 attempts")
    assert ended.ended_at is not None and ended.placed_by is None


async def test_an_answered_callback_ends_and_only_its_holder_may_record_it(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    req = await ask(conn, queues["support"], joined_s_ago=60)
    assert await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60) is not None
    with pytest.raises(CallbackError, match=f"callback {req.id} is not being placed by run-b"):
        await callbacks.answered(conn, req.id, "run-b")
    await callbacks.answered(conn, req.id, "run-a")
    [done] = await _all(conn)
    assert (done.status, done.attempts) == ("answered", 1)
    with pytest.raises(CallbackError):
        await callbacks.answered(conn, req.id, "run-a")  # recorded once


async def test_a_dead_daemons_request_goes_back_in_line_when_its_lease_runs_out(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    dead = await ask(conn, queues["support"], joined_s_ago=600)
    alive = await ask(conn, queues["support"], joined_s_ago=300)
    assert (await callbacks.claim(conn, [queues["support"]], "dead-run", lease_s=0)) is not None
    assert (await callbacks.claim(conn, [queues["support"]], "live-run", lease_s=600)) is not None
    await asyncio.sleep(0.05)
    assert await callbacks.recover(conn) == [dead.id]
    with pytest.raises(CallbackError):
        await callbacks.renew(conn, dead.id, "dead-run", lease_s=60)
    await callbacks.renew(conn, alive.id, "live-run", lease_s=60)
    back = await callbacks.claim(conn, [queues["support"]], "live-run", lease_s=60)
    assert back is not None and back.id == dead.id and back.attempts == 0


async def test_a_released_request_keeps_its_place(conn: AsyncConnection, queues: dict[str, int]) -> None:
    first = await ask(conn, queues["support"], joined_s_ago=600)
    await ask(conn, queues["support"], joined_s_ago=300)
    assert (await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60)) is not None
    await callbacks.release(conn, first.id, "run-a")  # no agent took it
    again = await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60)
    assert again is not None and again.id == first.id and again.attempts == 0


async def test_expired_requests_are_ended_and_never_claimed(conn: AsyncConnection,
                                                            queues: dict[str, int]) -> None:
    old = await ask(conn, queues["support"], joined_s_ago=7200, expires_in_s=-1)
    await ask(conn, queues["support"], joined_s_ago=60, expires_in_s=None)
    claimed = await callbacks.claim(conn, [queues["support"]], "run-a", lease_s=60)
    assert claimed is not None and claimed.id != old.id
    assert await callbacks.expire(conn) == [old.id]
    assert await callbacks.expire(conn) == []
    assert {r.id: r.status for r in await _all(conn)}[old.id] == "expired"


async def test_cancel_takes_a_waiting_request_and_refuses_the_rest_in_one_line(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    waiting = await ask(conn, queues["support"], joined_s_ago=60)
    placing = await ask(conn, queues["sales"], joined_s_ago=60)
    assert (await callbacks.claim(conn, [queues["sales"]], "run-a", lease_s=60)) is not None
    done = await callbacks.cancel(conn, waiting.id, "supervisor")
    assert (done.status, done.detail) == ("cancelled", "cancelled by supervisor")
    for callback_id, message in ((waiting.id, "has already ended (cancelled)"),
                                 (placing.id, "is being placed now"), (999_999, "does not exist")):
        with pytest.raises(CallbackError, match=re.escape(message)):
            await callbacks.cancel(conn, callback_id, "supervisor")


async def _all(conn: AsyncConnection) -> list[callbacks.CallbackRequest]:
    cur = conn.cursor(row_factory=psycopg.rows.class_row(callbacks.CallbackRequest))
    await cur.execute(f"SELECT {callbacks.COLUMNS} FROM callbacks ORDER BY id")
    return await cur.fetchall()


async def test_the_callback_leg_is_the_next_hop_of_the_case_which_opens_again_and_closes_with_it(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    case = await new_case(conn)
    await conn.execute(
        "INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled, caller_num, ended_at,"
        " end_reason) VALUES (%s, 1, 'n1', 'asked', 'pstn', '84951234567', '89161234567', now(), 'callback')",
        (case,))
    await conn.execute("UPDATE cases SET status = 'closed', closed_at = now() WHERE id = %s", (case,))
    asked = await one(conn, "SELECT id FROM hops WHERE case_id = %s", case)
    made = await callbacks.request(conn, case_id=case, hop_id=asked, queue_id=queues["support"],
                                   number="+79161234567", joined_at=ago(60), due_at=ago(0), expires_at=None)
    hop = await callbacks.open_hop(conn, made, node="n1", channel_id="callback-1-customer-x",
                                   caller_id="+74951234567")
    assert (hop.case_id, hop.seq, hop.dialled_e164, hop.caller_num, hop.queue_id) == (
        case, 2, "+79161234567", "+74951234567", queues["support"])
    assert await one(conn, "SELECT status FROM cases WHERE id = %s", case) == "open"
    close = [{"k": "close", "hop": hop.id, "reason": "completed"}]
    await conn.execute("SELECT record_call_events(%s)", (Jsonb(close),))
    assert await one(conn, "SELECT status FROM cases WHERE id = %s", case) == "closed"


async def test_a_hop_ended_by_a_callback_request_and_its_queue_event_are_taken(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    case = await new_case(conn)
    cur = await conn.execute(
        "INSERT INTO hops (case_id, seq, node, channel_id, channel_kind, dialled)"
        " VALUES (%s, 1, 'n1', 'c', 'pstn', '84951234567') RETURNING id", (case,))
    hop = (await cur.fetchone() or [0])[0]
    batch = [{"k": "event", "hop": hop, "case": case, "queue": queues["support"], "event": "callback",
              "wait_ms": 5000}, {"k": "close", "hop": hop, "reason": "callback"}]
    await conn.execute("SELECT record_call_events(%s)", (Jsonb(batch),))
    assert await one(conn, "SELECT end_reason FROM hops WHERE id = %s", hop) == "callback"
    events = await one(conn, "SELECT string_agg(event, ',') FROM queue_events WHERE hop_id = %s", hop)
    assert events == "callback"


async def one(conn: AsyncConnection, sql: str, *params: object) -> object:
    row = await (await conn.execute(sql, params)).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def test_the_cli_lists_waiting_callbacks_in_line_order_and_cancels_one(
        db_dsn: str, db: psycopg.Connection, queues: dict[str, int]) -> None:
    async def two() -> list[callbacks.CallbackRequest]:
        conn = await connect(db_dsn)
        async with conn:
            return [await ask(conn, queues["support"], joined_s_ago=30, number="+79161111111"),
                    await ask(conn, queues["support"], joined_s_ago=60, number="+79162222222")]
    later, earlier = asyncio.run(two())
    runner = CliRunner()

    def cli(*args: str) -> Result:
        return runner.invoke(main, ["callback", *args], env={"HOTLINE_DSN": db_dsn})

    listed = cli("list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split()[:4] == ["ID", "QUEUE", "NUMBER", "STATUS"]
    assert [line.split()[2] for line in lines[1:]] == ["+79162222222", "+79161111111"]  # who joined first
    done = cli("cancel", str(earlier.id))
    assert done.exit_code == 0 and f"callback {earlier.id} to +79162222222 cancelled" in done.output
    again = cli("cancel", str(earlier.id))
    assert again.exit_code != 0 and "has already ended (cancelled)" in again.output
    missing = cli("cancel", "999999")
    assert missing.exit_code != 0 and "callback 999999 does not exist" in missing.output
    listed = json.loads(cli("list", "--format", "json").output)
    assert [r["id"] for r in listed] == [later.id]
    with_ended = json.loads(cli("list", "--ended-within", "60", "--format", "json").output)
    assert [(r["id"], r["status"]) for r in with_ended] == [(later.id, "pending"), (earlier.id, "cancelled")]
    detail = rows(db, "SELECT detail FROM callbacks WHERE id = %s", earlier.id)[0]["detail"]
    assert detail.startswith("cancelled by ")


async def test_a_deferred_request_waits_until_its_new_due_time_and_knows_its_hotline(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    made = await ask(conn, queues["support"], joined_s_ago=60)
    assert await callbacks.hotline_of(conn, made) is None  # asked on no hop
    claimed = await callbacks.claim(conn, [queues["support"]], "run-a", 30)
    assert claimed is not None and claimed.id == made.id
    await callbacks.defer(conn, made.id, "run-a", ago(-3600))
    assert await callbacks.claim(conn, [queues["support"]], "run-a", 30) is None  # not before its opening
    [waiting] = await _all(conn)
    assert (waiting.status, waiting.placed_by, waiting.joined_at) == ("pending", None, made.joined_at)
    with pytest.raises(CallbackError, match="is not being placed by run-a"):
        await callbacks.defer(conn, made.id, "run-a", ago(0))


async def test_requests_waiting_for_an_opening_are_woken_when_hours_change_and_no_others(
        conn: AsyncConnection, queues: dict[str, int]) -> None:
    closed = await ask(conn, queues["support"], joined_s_ago=60)
    assert await callbacks.claim(conn, [queues["support"]], "run-a", 30) is not None
    await callbacks.defer(conn, closed.id, "run-a", ago(-3600))  # its hotline opens in an hour
    retried = await ask(conn, queues["sales"], joined_s_ago=50)
    assert await callbacks.claim(conn, [queues["sales"]], "run-a", 30) is not None
    await callbacks.unanswered(conn, retried.id, "run-a", retry_at=ago(-300))  # its retry interval
    assert await callbacks.wake_for_opening(conn) == [closed.id]
    again = await callbacks.claim(conn, [queues["support"], queues["sales"]], "run-b", 30)
    assert again is not None and again.id == closed.id  # due now; the retry still waits
    assert await callbacks.claim(conn, [queues["support"], queues["sales"]], "run-b", 30) is None
    assert await callbacks.wake_for_opening(conn) == []  # claimed: it waits for nothing any more
