"""Switch tokens in the lab's real PostgreSQL (hotline.store.switches): issued only for a live,
answered leg; stored as a hash; used once, within their lifetime, opening the video leg's hop in
the same case; and the link reaches the customer through the configured command."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from hotline.config import Settings
from hotline.errors import SwitchNotPossible, SwitchRefused
from hotline.store.case_timeline import case_timeline
from hotline.store.contacts import Contacts
from hotline.store.db import open_pool
from hotline.store.hops import Hop, NewHop
from hotline.store.records import QueueEvent, close_hop_record, queue_event_record, talk_taken_over_record
from hotline.store.switches import Switches, TokenState
from hotline.store.write_behind import WriteBehind
from hotline.web.app import start_web
from hotline.web.switch_links import SwitchLinks

from support.checks import rows

pytestmark = pytest.mark.lab


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=4)
    async with pool:
        yield pool


@pytest.fixture
def ids(db: psycopg.Connection) -> dict[str, int]:
    queue = db.execute("INSERT INTO queues (name) VALUES ('support') RETURNING id").fetchone()[0]
    agent = db.execute("INSERT INTO agents (name, endpoint) VALUES ('ivanov', 'ivanov')"
                       " RETURNING id").fetchone()[0]
    hotline = db.execute("INSERT INTO hotlines (name, entry_queue_id) VALUES ('city', %s) RETURNING id",
                         (queue,)).fetchone()[0]
    return {"queue": queue, "agent": agent, "hotline": hotline}


def phone_leg(channel: str, hotline: int) -> NewHop:
    return NewHop(node="n1", channel_id=channel, channel_name=f"PJSIP/trunk-{channel}", channel_kind="pstn",
                  media="audio", dialled="84951234567", dialled_e164="+74951234567",
                  caller_num="+79161234567", caller_name="Caller", hotline_id=hotline)


def video_leg(channel: str) -> NewHop:
    return NewHop(node="n1", channel_id=channel, channel_name=f"PJSIP/hotline-web-{channel}",
                  channel_kind="webrtc", media="video", dialled="switch", dialled_e164=None,
                  caller_num="hotline-web", caller_name="")


async def answered_call(pool: AsyncConnectionPool, ids: dict[str, int], channel: str = "p1") -> Hop:
    contacts = Contacts(pool)
    hop = await contacts.open_case_with_hop(phone_leg(channel, ids["hotline"]), "+79161234567")
    for event in ("join", "answer"):
        await contacts.queue_event(QueueEvent(ids["queue"], hop.case_id, hop.id, event,
                                              agent_id=ids["agent"] if event == "answer" else None))
    return hop


async def test_a_token_is_stored_only_as_its_hash_and_opens_the_video_leg_in_the_same_case_once(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection) -> None:
    phone = await answered_call(pool, ids)
    switches = Switches(pool)
    issued = await switches.issue(phone.id, "cli", ttl_s=300)
    assert len(issued.token) == 64 and issued.case_id == phone.case_id and issued.caller_num == "+79161234567"
    [stored] = rows(db, "SELECT token_sha256 FROM switches")
    assert bytes(stored["token_sha256"]) == hashlib.sha256(issued.token.encode()).digest()
    assert issued.token.encode() not in bytes(stored["token_sha256"])
    assert await switches.check(issued.token) is TokenState.VALID

    use = await switches.use(issued.token, video_leg("v1"))
    assert (use.hop.case_id, use.hop.seq, use.from_hop_id, use.from_hop_live) == (
        phone.case_id, 2, phone.id, True)
    assert (use.queue_id, use.agent_id, use.hotline_id) == (ids["queue"], ids["agent"], ids["hotline"])
    [switch] = rows(db, "SELECT from_hop_id, to_hop_id, used_at, issued_at FROM switches")
    assert (switch["from_hop_id"], switch["to_hop_id"]) == (phone.id, use.hop.id)
    assert switch["used_at"] >= switch["issued_at"]
    [video] = rows(db, "SELECT channel_kind, media, hotline_id FROM hops WHERE id = %s", use.hop.id)
    assert video == {"channel_kind": "webrtc", "media": "video", "hotline_id": ids["hotline"]}

    assert await switches.check(issued.token) is TokenState.USED
    with pytest.raises(SwitchRefused) as refused:
        await switches.use(issued.token, video_leg("v2"))
    assert refused.value.state is TokenState.USED
    assert len(rows(db, "SELECT id FROM hops")) == 2  # the reuse opened nothing


async def test_forged_and_expired_tokens_open_nothing(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection) -> None:
    phone = await answered_call(pool, ids)
    switches = Switches(pool)
    issued = await switches.issue(phone.id, "agent:ivanov", ttl_s=300)
    forged = issued.token[:-1] + ("0" if issued.token[-1] != "0" else "1")
    for token in (forged, "", "0" * 64):
        assert await switches.check(token) is TokenState.UNKNOWN
        with pytest.raises(SwitchRefused):
            await switches.use(token, video_leg("v-forged"))
    db.execute("UPDATE switches SET expires_at = now() - interval '1 second',"
               " issued_at = now() - interval '1 hour'")
    assert await switches.check(issued.token) is TokenState.EXPIRED
    with pytest.raises(SwitchRefused) as refused:
        await switches.use(issued.token, video_leg("v-late"))
    assert refused.value.state is TokenState.EXPIRED
    assert [r["id"] for r in rows(db, "SELECT id FROM hops")] == [phone.id]


async def test_two_browsers_racing_with_one_link_get_one_leg_in(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection) -> None:
    phone = await answered_call(pool, ids)
    switches = Switches(pool)
    issued = await switches.issue(phone.id, "cli", ttl_s=300)
    results = await asyncio.gather(*(switches.use(issued.token, video_leg(f"v{i}")) for i in range(4)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, SwitchRefused) for r in results if isinstance(r, BaseException))
    assert len(rows(db, "SELECT id FROM hops WHERE case_id = %s", phone.case_id)) == 2


async def test_only_a_live_answered_leg_can_be_switched(
        pool: AsyncConnectionPool, ids: dict[str, int]) -> None:
    contacts, switches = Contacts(pool), Switches(pool)
    waiting = await contacts.open_case_with_hop(phone_leg("w1", ids["hotline"]), "+79161234567")
    with pytest.raises(SwitchNotPossible, match="not talking with an agent"):
        await switches.issue(waiting.id, "cli", ttl_s=300)
    ended = await answered_call(pool, ids, "e1")
    await contacts.close_hop(ended.id, "completed", cause=16)
    with pytest.raises(SwitchNotPossible, match="has ended"):
        await switches.issue(ended.id, "cli", ttl_s=300)
    with pytest.raises(SwitchNotPossible, match="does not exist"):
        await switches.issue(999_999, "cli", ttl_s=300)


async def test_the_link_reaches_the_customer_through_the_configured_command(
        pool: AsyncConnectionPool, ids: dict[str, int], tmp_path: Path) -> None:
    phone = await answered_call(pool, ids)
    out = tmp_path / "sms.txt"
    script = tmp_path / "send_sms.py"
    script.write_text("import os, sys\n"
                      f"open({str(out)!r}, 'w').write(os.environ['HOTLINE_CALLER'] + ' '"
                      " + os.environ['HOTLINE_SWITCH_LINK'])\n")
    settings = replace(Settings(), web_url="https://video.example.ru/", switch_link_ttl="120",
                       switch_link_command=f"{sys.executable} {script}")
    link = await SwitchLinks(Switches(pool), settings).request(phone.id, "caller")
    assert link.link == f"https://video.example.ru/switch/{link.issued.token}"
    assert (link.delivered, link.failures) == (["command"], [])
    assert out.read_text() == f"+79161234567 {link.link}"
    assert 110 < (link.issued.expires_at - datetime.now(UTC)).total_seconds() <= 120  # switch_link_ttl


async def test_a_failing_gateway_is_reported_and_the_link_is_still_given_out(
        pool: AsyncConnectionPool, ids: dict[str, int]) -> None:
    phone = await answered_call(pool, ids)
    fails = f"{sys.executable} -c 'import sys; sys.exit(\"no credit\")'"
    settings = replace(Settings(), switch_link_command=fails)
    link = await SwitchLinks(Switches(pool), settings).request(phone.id, "cli")
    assert link.delivered == [] and link.failures == ["command: exited with 1: no credit"]
    assert await Switches(pool).check(link.issued.token) is TokenState.VALID


async def test_the_link_reaches_the_customer_through_the_configured_webhook(
        pool: AsyncConnectionPool, ids: dict[str, int]) -> None:
    phone = await answered_call(pool, ids)
    received: list[dict[str, str]] = []

    async def gateway(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=202)
    app = web.Application()
    app.router.add_post("/sms", gateway)
    runner = await start_web(app, "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        settings = replace(Settings(), switch_link_webhook=f"http://127.0.0.1:{port}/sms")
        link = await SwitchLinks(Switches(pool), settings).request(phone.id, "cli")
        failing = replace(settings, switch_link_webhook=f"http://127.0.0.1:{port}/nowhere")
        refused = await SwitchLinks(Switches(pool), failing).request(phone.id, "cli")
    finally:
        await runner.cleanup()
    assert (link.delivered, link.failures) == (["webhook"], [])
    assert received == [{"switch_link": link.link, "caller": "+79161234567", "case": str(phone.case_id),
                         "expires": link.issued.expires_at.isoformat(timespec="seconds")}]
    assert refused.failures == ["webhook: HTTP 404"] and refused.link  # reported, and still given out


async def test_a_switched_talks_records_written_behind_in_one_batch_leave_the_rows_a_supervisor_reads(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection) -> None:
    """What the engine submits for a phone call moved to video (tests/unit/test_handover.py makes
    the same sequence): the video hop answered by the phone leg's agent ('talk', migration 014),
    the phone hop ended switched, the one complete on the hop that joined the queue."""
    phone = await answered_call(pool, ids)
    issued = await Switches(pool).issue(phone.id, "caller", ttl_s=300)
    video = (await Switches(pool).use(issued.token, video_leg("v1"))).hop
    writer = WriteBehind(pool, patience_s=30)
    writer.start()
    try:
        writer.submit(talk_taken_over_record(video.id, ids["queue"], ids["agent"]))
        writer.submit(close_hop_record(phone.id, "switched", cause=16))
        writer.submit(queue_event_record(QueueEvent(ids["queue"], phone.case_id, phone.id, "complete",
                                                    agent_id=ids["agent"], talk_ms=61000,
                                                    detail="caller hung up")))
        writer.submit(close_hop_record(video.id, "completed", cause=16))
        assert await writer.flush(10)
    finally:
        await writer.close()
    assert rows(db, "SELECT seq, media, end_reason, queue_id, agent_id, answered_at IS NOT NULL AS answered"
                    " FROM hops ORDER BY seq") == [
        {"seq": 1, "media": "audio", "end_reason": "switched", "queue_id": ids["queue"],
         "agent_id": ids["agent"], "answered": True},
        {"seq": 2, "media": "video", "end_reason": "completed", "queue_id": ids["queue"],
         "agent_id": ids["agent"], "answered": True}]
    events = rows(db, "SELECT hop_id, event FROM queue_events ORDER BY id")
    assert [(r["hop_id"], r["event"]) for r in events] == [
        (phone.id, "join"), (phone.id, "answer"), (phone.id, "complete")]
    assert rows(db, "SELECT status FROM cases") == [{"status": "closed"}]


async def test_a_phone_dial_records_how_it_ended_and_case_show_says_it(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection) -> None:
    video = await answered_call(pool, ids)
    switches = Switches(pool)
    link = await switches.issue(video.id, "cli", ttl_s=300)  # a video link: no dial to end
    assert not await switches.phone_not_answered(link.token, "busy", 17, "User busy")
    busy = await switches.issue(video.id, "agent:ivanov", ttl_s=60, to_number="+79161234567")
    assert await switches.phone_not_answered(busy.token, "busy", 17, "User busy")
    assert not await switches.phone_not_answered(busy.token, "failed", 0, "")  # once
    rang_out = await switches.issue(video.id, "cli", ttl_s=60, to_number="+79161234567")
    assert await switches.phone_not_answered(rang_out.token, "no_answer", 19, "No Answer")
    answered = await switches.issue(video.id, "cli", ttl_s=60, to_number="+79161234567")
    used = await switches.use(answered.token, phone_leg("ph1", ids["hotline"]))
    assert not await switches.phone_not_answered(answered.token, "failed", 16, "Normal Clearing")
    assert rows(db, "SELECT to_number, outcome, hangup_cause, hangup_cause_text, outcome_at IS NOT NULL AS at"
                    " FROM switches ORDER BY id") == [
        {"to_number": None, "outcome": None, "hangup_cause": None, "hangup_cause_text": None, "at": False},
        {"to_number": "+79161234567", "outcome": "busy", "hangup_cause": 17, "hangup_cause_text": "User busy",
         "at": True},
        {"to_number": "+79161234567", "outcome": "no_answer", "hangup_cause": 19,
         "hangup_cause_text": "No Answer", "at": True},
        {"to_number": "+79161234567", "outcome": "answered", "hangup_cause": None, "hangup_cause_text": None,
         "at": True}]
    with pytest.raises(psycopg.errors.CheckViolation):  # a video link has no dial outcome
        db.execute("UPDATE switches SET outcome = 'busy', outcome_at = now() WHERE to_number IS NULL")
    db.rollback()

    async with pool.connection() as conn:
        said = [m.what for m in (await case_timeline(conn, video.case_id)).moments()]
    assert "move to phone asked by agent:ivanov: calling +79161234567" in said
    assert "moved to phone: busy (cause 17 User busy)" in said
    assert "moved to phone: no answer (cause 19 No Answer)" in said
    assert f"the phone answered: this leg joined, replacing hop {video.seq}" in said
    assert used.hop.case_id == video.case_id
    assert sum(w.startswith("switch to video asked by cli") for w in said) == 1  # the link
