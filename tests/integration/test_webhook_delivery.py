"""The deliverer against the lab's PostgreSQL and a receiver in this process: a URL failing for
one case holds back only that case's later events, retried with the backoff, given up after the
last try and the line going on; a receiver that does not answer is a timeout, not a hang."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from hotline.config import DeliveryTiming
from hotline.engine.webhook_deliverer import WebhookDeliverer
from hotline.store import webhooks
from hotline.store.contacts import Contacts
from hotline.store.db import open_pool
from hotline.store.hops import Hop, NewHop

from support.checks import rows
from support.daemon import free_tcp_port

pytestmark = pytest.mark.lab

SECRET = "0123456789abcdef0123"
FAST = DeliveryTiming(poll_s=0.05, timeout_s=0.5, retry_first_s=0.1, retry_max_s=0.2, attempts=3)


class Crm:
    """Takes every POST but those of `refuse_case` (503) and answers none while `silent`."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.taken: list[dict[str, Any]] = []
        self.tries: dict[int, int] = {}  # event id -> POSTs seen
        self.refuse_case: int | None = None
        self.silent = False

    async def take(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        self.tries[event["id"]] = self.tries.get(event["id"], 0) + 1
        if self.silent:
            await asyncio.sleep(5)
        if event["case"] == self.refuse_case:
            return web.Response(status=503)
        self.taken.append(event)
        return web.Response(status=200)


@pytest.fixture
async def crm() -> AsyncIterator[Crm]:
    receiver = Crm()
    app = web.Application()
    app.router.add_post("/h", receiver.take)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    yield receiver
    await runner.cleanup()


@pytest.fixture
async def pool(db_dsn: str, db: psycopg.Connection, crm: Crm) -> AsyncIterator[AsyncConnectionPool]:
    db.execute("INSERT INTO queues (name) VALUES ('support')")
    db.execute("INSERT INTO hotlines (name, entry_queue_id) SELECT 'city', id FROM queues")
    opened: AsyncConnectionPool = await open_pool(db_dsn, max_size=4)
    async with opened:
        async with opened.connection() as conn:
            await webhooks.add(conn, "crm", f"http://127.0.0.1:{crm.port}/h", SECRET, hotlines=None,
                               events=None)
        yield opened


async def call(pool: AsyncConnectionPool, channel: str, caller: str) -> Hop:
    return await Contacts(pool).open_case_with_hop(NewHop(
        node="n1", channel_id=channel, channel_name=f"PJSIP/trunk-{channel}", channel_kind="pstn",
        media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num=caller,
        caller_name="", entered_at=datetime.now(UTC)), caller)


async def rounds_until_idle(deliverer: WebhookDeliverer, limit_s: float = 10) -> None:
    """Delivery rounds until nothing is pending and due-or-waiting (backoffs included)."""
    async with asyncio.timeout(limit_s):
        while True:
            if await deliverer.round() == 0:
                async with deliverer.pool.connection() as conn:
                    cur = await conn.execute("SELECT count(*) FROM webhook_deliveries"
                                             " WHERE status = 'pending'")
                    row = await cur.fetchone()
                if row is not None and row[0] == 0:
                    return
                await asyncio.sleep(FAST.poll_s)


async def test_a_case_the_crm_refuses_holds_back_only_itself_then_is_given_up_in_order(
        pool: AsyncConnectionPool, crm: Crm, db: psycopg.Connection) -> None:
    refused, fine = await call(pool, "c1", "+79160000001"), await call(pool, "c2", "+79160000002")
    crm.refuse_case = refused.case_id
    deliverer = WebhookDeliverer(pool, FAST)
    try:
        await rounds_until_idle(deliverer)
    finally:
        await deliverer.close()
    fine_ids = [r["id"] for r in rows(db, "SELECT id FROM contact_events WHERE case_id = %s ORDER BY id",
                                      fine.case_id)]
    assert [e["id"] for e in crm.taken] == fine_ids  # all of the fine case, in order, once
    refused_ids = [r["id"] for r in rows(db, "SELECT id FROM contact_events WHERE case_id = %s ORDER BY id",
                                         refused.case_id)]
    # each of the refused case's events tried `attempts` times, one after the other (never two at once)
    assert [crm.tries[i] for i in refused_ids] == [FAST.attempts] * len(refused_ids)
    assert rows(db, "SELECT status, attempts, last_error FROM webhook_deliveries WHERE case_id = %s"
                    " ORDER BY event_id", refused.case_id) == [
        {"status": "failed", "attempts": 3, "last_error": "HTTP 503 Service Unavailable"}] * len(refused_ids)


async def test_a_receiver_that_does_not_answer_is_a_timeout_retried_later(
        pool: AsyncConnectionPool, crm: Crm, db: psycopg.Connection) -> None:
    await call(pool, "c1", "+79160000001")
    crm.silent = True
    deliverer = WebhookDeliverer(pool, DeliveryTiming(timeout_s=0.5, retry_first_s=60))
    try:
        started = asyncio.get_running_loop().time()
        assert await deliverer.round() == 1
        assert asyncio.get_running_loop().time() - started < 3  # the 5 s the receiver takes: cut at 0.5
    finally:
        await deliverer.close()
    [head] = rows(db, "SELECT status, attempts, last_error, next_try_at > now() AS later, claimed_by"
                      " FROM webhook_deliveries ORDER BY event_id LIMIT 1")
    assert head == {"status": "pending", "attempts": 1, "last_error": "no answer within 0.5 s", "later": True,
                    "claimed_by": None}
