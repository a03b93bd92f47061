"""The switch key against SMS pumping, in the lab's real PostgreSQL with a real gateway command:
one live link per leg, a caller's repeat presses within the cooldown send nothing, a case gets at
most switch_links_per_case links sent, a caller's refusal is recorded once per leg, browser legs
are never offered a switch, deliveries run a few at a time, and the command sees none of the
daemon's environment."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from hotline.config import Settings
from hotline.errors import SwitchNotPossible
from hotline.store.case_timeline import case_timeline
from hotline.store.contacts import Contacts
from hotline.store.db import open_pool
from hotline.store.hops import Hop, NewHop
from hotline.store.records import QueueEvent
from hotline.store.switches import (
    Switches,
    TokenState,
    case_phone_number,
    customer_video_talk,
)
from hotline.web.switch_links import DELIVERIES_AT_ONCE, SwitchKey, SwitchLinks

from support.checks import rows

pytestmark = pytest.mark.lab

CALLER = "+79161234567"
# The SMS gateway: one JSON line per run (its environment, and when it started and ended), and a
# pause, so that runs overlapping in time would show.
GATEWAY = """\
import json, os, sys, time
started = time.monotonic()
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"env": dict(os.environ), "start": started, "end": time.monotonic()}) + "\\n")
"""


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=8)
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


@pytest.fixture
def sent(tmp_path: Path) -> Path:
    return tmp_path / "sent.jsonl"


def gateway_settings(tmp_path: Path, sent: Path, pause_s: float = 0.0, **more: str) -> Settings:
    script = tmp_path / "gateway.py"
    script.write_text(GATEWAY)
    return replace(Settings(), switch_link_command=f"{sys.executable} {script} {sent} {pause_s}", **more)


def runs(sent: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in sent.read_text().splitlines()] if sent.exists() else []


async def answered_call(pool: AsyncConnectionPool, ids: dict[str, int], channel: str = "p1",
                        kind: str = "pstn") -> Hop:
    contacts = Contacts(pool)
    leg = NewHop(node="n1", channel_id=channel, channel_name=f"PJSIP/x-{channel}", channel_kind=kind,
                 media="video" if kind == "webrtc" else "audio", dialled="84951234567",
                 dialled_e164="+74951234567", caller_num=CALLER, caller_name="Caller",
                 hotline_id=ids["hotline"])
    hop = await contacts.open_case_with_hop(leg, f"{CALLER}-{channel}")
    for event in ("join", "answer"):
        await contacts.queue_event(QueueEvent(ids["queue"], hop.case_id, hop.id, event,
                                              agent_id=ids["agent"] if event == "answer" else None))
    return hop


async def test_a_callers_repeat_presses_within_the_cooldown_send_nothing_more(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection, tmp_path: Path,
        sent: Path) -> None:
    phone = await answered_call(pool, ids)
    links = SwitchLinks(Switches(pool), gateway_settings(tmp_path, sent, switch_link_cooldown="60"))
    quiet = [await links.caller_asks(phone.id) for _ in range(5)]
    assert len(runs(sent)) == 1
    assert len(rows(db, "SELECT id FROM switches")) == 1
    assert quiet[0] == 60 and all(55 < q <= 60 for q in quiet[1:])  # the rest of the cooldown
    assert rows(db, "SELECT hop_id FROM switch_refusals") == []  # held, not refused

    # After the cooldown (the link issued 61 s ago, still valid), a press sends a new link.
    db.execute("UPDATE switches SET issued_at = issued_at - interval '61 seconds'")
    await links.caller_asks(phone.id)
    assert len(runs(sent)) == 2
    assert len(rows(db, "SELECT id FROM switches WHERE expires_at > now()")) == 1  # one live link per leg


async def test_a_case_is_sent_at_most_its_links_and_a_callers_refusal_is_recorded_once(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection, tmp_path: Path,
        sent: Path, caplog: pytest.LogCaptureFixture) -> None:
    phone = await answered_call(pool, ids)
    links = SwitchLinks(Switches(pool), gateway_settings(tmp_path, sent, switch_links_per_case="2"))
    first = await links.request(phone.id, "agent:ivanov")
    second = await links.request(phone.id, "cli")
    assert (first.delivered, second.delivered) == (["command"], ["command"])
    assert await Switches(pool).check(first.issued.token) is TokenState.EXPIRED  # one live link per leg

    assert 55 < await links.caller_asks(phone.id) <= 60  # the agent's link is fresh: nothing more
    db.execute("UPDATE switches SET issued_at = issued_at - interval '61 seconds'")  # past the cooldown
    for _ in range(20):
        assert await links.caller_asks(phone.id) == float("inf")
    assert len(runs(sent)) == 2
    assert rows(db, "SELECT hop_id, case_id, reason FROM switch_refusals") == [
        {"hop_id": phone.id, "case_id": phone.case_id,
         "reason": "the case has had its 2 switch links (switch_links_per_case)"}]
    refused_lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused_lines) == 1 and f"hop {phone.id}" in refused_lines[0].getMessage()
    async with pool.connection() as conn:
        timeline = [m.what for m in (await case_timeline(conn, phone.case_id)).moments()]
    assert timeline.count("switch to video asked by the caller, refused: the case has had its 2 switch "
                          "links (switch_links_per_case)") == 1  # what `hotline case show` prints

    # The agent still gets a link to read out; it is not sent.
    third = await links.request(phone.id, "agent:ivanov")
    assert third.delivered == [] and "switch_links_per_case" in third.held_back
    assert await Switches(pool).check(third.issued.token) is TokenState.VALID
    assert len(runs(sent)) == 2


async def test_a_browser_leg_is_never_offered_a_switch_by_its_key(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection, tmp_path: Path,
        sent: Path) -> None:
    video = await answered_call(pool, ids, "w1", kind="webrtc")
    links = SwitchLinks(Switches(pool), gateway_settings(tmp_path, sent))
    assert await links.caller_asks(video.id) == float("inf")
    assert await links.caller_asks(video.id) == float("inf")
    assert rows(db, "SELECT id FROM switches") == [] and runs(sent) == []
    assert rows(db, "SELECT hop_id, reason FROM switch_refusals") == [
        {"hop_id": video.id, "reason": "the call is a browser's, on video already"}]
    # Its agent may still move it to another browser (the agent page's button).
    assert (await links.request(video.id, "agent:ivanov")).delivered == ["command"]


async def test_a_leg_that_is_not_talking_cannot_ask(pool: AsyncConnectionPool, ids: dict[str, int],
                                                     tmp_path: Path, sent: Path) -> None:
    links = SwitchLinks(Switches(pool), gateway_settings(tmp_path, sent))
    with pytest.raises(SwitchNotPossible, match="does not exist"):
        await links.caller_asks(999_999)
    assert runs(sent) == []


async def test_a_flood_of_presses_across_calls_runs_a_few_deliveries_at_a_time(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection, tmp_path: Path,
        sent: Path) -> None:
    legs = [await answered_call(pool, ids, f"f{i}") for i in range(12)]
    key = SwitchKey(SwitchLinks(Switches(pool), gateway_settings(tmp_path, sent, pause_s=0.3)))
    try:
        for _ in range(10):  # every caller holds the key down
            for leg in legs:
                key.press(leg.id)
            await asyncio.sleep(0.05)
        async with asyncio.timeout(20):  # every caller sent one link
            while len(runs(sent)) < len(legs):
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # any second send would have run by now
    finally:
        await key.close()
    assert len(runs(sent)) == len(legs) == len(rows(db, "SELECT id FROM switches"))
    spans = [(float(r["start"]), float(r["end"])) for r in runs(sent)]  # type: ignore[arg-type]
    overlapping = max(sum(s <= start < e for s, e in spans) for start, _ in spans)
    assert 1 < overlapping <= DELIVERIES_AT_ONCE


async def test_the_gateway_command_gets_only_its_payload_and_a_minimal_path(
        pool: AsyncConnectionPool, ids: dict[str, int], tmp_path: Path, sent: Path,
        monkeypatch: pytest.MonkeyPatch, db_dsn: str) -> None:
    monkeypatch.setenv("HOTLINE_DSN", db_dsn)
    monkeypatch.setenv("HOTLINE_ARI_URL", "http://hotline:ari-secret@127.0.0.1:8088")
    phone = await answered_call(pool, ids)
    link = await SwitchLinks(Switches(pool), gateway_settings(tmp_path, sent)).request(phone.id, "cli")
    [run] = runs(sent)
    env = dict(run["env"])  # type: ignore[call-overload]
    assert "HOTLINE_DSN" not in env and "HOTLINE_ARI_URL" not in env
    assert {k: v for k, v in env.items() if k.startswith("HOTLINE_")} == {
        "HOTLINE_SWITCH_LINK": link.link, "HOTLINE_CALLER": CALLER, "HOTLINE_CASE": str(phone.case_id),
        "HOTLINE_EXPIRES": link.issued.expires_at.isoformat(timespec="seconds")}
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin" and env["LANG"] == "C.UTF-8"


async def waiting_call(pool: AsyncConnectionPool, ids: dict[str, int], channel: str = "w1") -> Hop:
    """A phone leg in line: joined, not answered by anyone."""
    contacts = Contacts(pool)
    leg = NewHop(node="n1", channel_id=channel, channel_name=f"PJSIP/x-{channel}", channel_kind="pstn",
                 media="audio", dialled="84951234567", dialled_e164="+74951234567", caller_num=CALLER,
                 caller_name="Caller", hotline_id=ids["hotline"])
    hop = await contacts.open_case_with_hop(leg, f"{CALLER}-{channel}")
    await contacts.queue_event(QueueEvent(ids["queue"], hop.case_id, hop.id, "join"))
    return hop


async def test_a_waiting_callers_video_key_sends_a_link_with_the_same_limits(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection, tmp_path: Path,
        sent: Path) -> None:
    phone = await waiting_call(pool, ids)
    links = SwitchLinks(Switches(pool), gateway_settings(tmp_path, sent, switch_links_per_case="1"))
    with pytest.raises(SwitchNotPossible, match="not talking with an agent"):
        await links.caller_asks(phone.id)  # the talking switch key needs an agent
    assert await links.caller_asks(phone.id, waiting=True) == 60  # the video key does not
    assert await links.caller_asks(phone.id, waiting=True) > 55  # held: the link is fresh
    [run] = runs(sent)
    assert run["env"]["HOTLINE_CASE"] == str(phone.case_id)  # type: ignore[index]
    [issued] = rows(db, "SELECT from_hop_id, requested_by FROM switches")
    assert issued == {"from_hop_id": phone.id, "requested_by": "caller"}

    db.execute("UPDATE switches SET issued_at = issued_at - interval '61 seconds'")  # past the cooldown
    assert await links.caller_asks(phone.id, waiting=True) == float("inf")
    assert rows(db, "SELECT hop_id, reason FROM switch_refusals") == [
        {"hop_id": phone.id, "reason": "the case has had its 1 switch links (switch_links_per_case)"}]
    assert len(runs(sent)) == 1

    db.execute("UPDATE hops SET ended_at = now(), end_reason = 'abandoned' WHERE id = %s", (phone.id,))
    with pytest.raises(SwitchNotPossible, match="has ended"):
        await links.caller_asks(phone.id, waiting=True)


async def test_a_customers_page_finds_its_own_video_talk_and_the_case_its_phone_number(
        pool: AsyncConnectionPool, ids: dict[str, int], db: psycopg.Connection) -> None:
    browser = "0123456789abcdef"
    web = await answered_call(pool, ids, "w1", kind="webrtc")
    db.execute("UPDATE cases SET customer_key = %s WHERE id = %s", (f"web:{browser}", web.case_id))
    phone = await answered_call(pool, ids, "p1")
    issued = await Switches(pool).issue(phone.id, "cli", 300)
    video = await Switches(pool).use(issued.token, NewHop(
        node="n1", channel_id="v1", channel_name="PJSIP/hotline-web-v1", channel_kind="webrtc",
        media="video", dialled="switch", dialled_e164=None, caller_num="", caller_name=""))
    db.execute("UPDATE hops SET answered_at = now(), agent_id = %s WHERE id = %s",
               (ids["agent"], video.hop.id))
    async with pool.connection() as conn:
        own = await customer_video_talk(conn, browser=browser, token="")
        by_link = await customer_video_talk(conn, browser="ffffffffffffffff", token=issued.token)
        nobody = await customer_video_talk(conn, browser="ffffffffffffffff", token="")
        forged = await customer_video_talk(conn, browser=browser, token="ab" * 32)
        assert (own.hop_id, own.channel_id, own.switches) == (web.id, "w1", 0)  # type: ignore[union-attr]
        assert (by_link.hop_id, by_link.case_id, by_link.switches) == (  # type: ignore[union-attr]
            video.hop.id, phone.case_id, 1)
        assert nobody is None and forged is None
        assert await case_phone_number(conn, phone.case_id) == CALLER  # the phone call's, not the video's
        assert await case_phone_number(conn, web.case_id) is None
    db.execute("UPDATE hops SET ended_at = now(), end_reason = 'completed' WHERE id = %s", (web.id,))
    async with pool.connection() as conn:
        assert await customer_video_talk(conn, browser=browser, token="") is None  # its call is over
