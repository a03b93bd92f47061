"""Placing a queued callback, through the real engine (router, queue manager, placer) around the
recording fake ARI client and a stand-in store: its place in the line, the agent rung first and
whispered to, the customer dialled through the trunk, the answer made durable before the bridge,
a retry or a give-up when the customer does not answer."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest

from hotline.engine.callback_placer import CallbackPlacer, Timing, whisper_media
from hotline.provision.model import Agent, Hotline, Number, OpeningHours, Provisioning, Queue, Target, Trunk
from hotline.store.callbacks import CallbackRequest
from hotline.store.hops import Hop

from support.engine import Engine, channel, destroyed, every_move_allowed, stasis_start  # noqa: F401

pytestmark = pytest.mark.asyncio

CITY = "84951234567"
NUMBER = "+79165551234"
TIMING = Timing(tick_s=0.02, lease_s=3, ring_grace_s=0.3)


def contact_centre(**queue: object) -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support", **{"callback_key": "5", "ringback": 0, **queue})},  # type: ignore[arg-type]
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", queues=(("support", 0),))},
        trunks={"carrier": Trunk("carrier", "sipp-carrier", "+74951234567", ("+7916",), ring_timeout=1)})


class StandInStore:
    """One request (id 1, case 101), claimable once it is pending and due; every step logged."""

    def __init__(self, joined_at: datetime, attempts: int = 0) -> None:
        now = datetime.now(UTC)
        self.request = CallbackRequest(
            id=1, case_id=101, hop_id=1, queue_id=1, number=NUMBER, joined_at=joined_at, requested_at=now,
            due_at=now, expires_at=now + timedelta(hours=4), attempts=attempts, status="pending",
            placed_by=None, lease_until=None, ended_at=None, detail="")
        self.log: list[tuple[object, ...]] = []
        self.waits_for_opening = False
        self.language: str | None = None  # the asking leg's, which the outbound hop takes

    async def recover(self) -> list[int]:
        return []

    async def expire(self) -> list[int]:
        return []

    async def claim(self, queue_ids: list[int], run: str, lease_s: int) -> CallbackRequest | None:
        r = self.request
        if r.status != "pending" or r.due_at > datetime.now(UTC) or r.queue_id not in queue_ids:
            return None
        self.request = dataclasses.replace(r, status="placing", placed_by=run)
        self.log.append(("claim",))
        return self.request

    async def renew(self, callback_id: int, run: str, lease_s: int) -> None:
        self.log.append(("renew",))

    async def release(self, callback_id: int, run: str) -> None:
        self.request = dataclasses.replace(self.request, status="pending", placed_by=None)
        self.log.append(("release",))

    async def defer(self, callback_id: int, run: str, due_at: datetime) -> None:
        self.request = dataclasses.replace(self.request, status="pending", placed_by=None, due_at=due_at)
        self.waits_for_opening = True
        self.log.append(("defer", due_at))

    async def wake_for_opening(self) -> list[int]:
        self.log.append(("wake",))
        if self.request.status != "pending" or not self.waits_for_opening:
            return []
        self.request = dataclasses.replace(self.request, due_at=datetime.now(UTC))
        return [self.request.id]

    async def hotline_of(self, callback: CallbackRequest) -> int | None:
        return 1  # "city", the only hotline

    async def answered(self, callback_id: int, run: str) -> None:
        r = self.request
        self.request = dataclasses.replace(r, status="answered", attempts=r.attempts + 1)
        self.log.append(("answered",))

    async def unanswered(self, callback_id: int, run: str, *, retry_at: datetime | None,
                         give_up_as: str = "failed", detail: str = "") -> None:
        r = self.request
        self.request = dataclasses.replace(r, attempts=r.attempts + 1, placed_by=None,
                                           status="pending" if retry_at else give_up_as,
                                           due_at=retry_at or r.due_at, detail=detail)
        self.log.append(("unanswered", retry_at is not None, give_up_as, detail))

    async def open_hop(self, callback: CallbackRequest, *, node: str, channel_id: str, caller_id: str) -> Hop:
        self.log.append(("open_hop", channel_id, caller_id))
        return Hop(id=7, case_id=callback.case_id, seq=2, node=node, channel_id=channel_id,
                   channel_kind="pstn",
                   dialled=callback.number, dialled_e164=callback.number, caller_num=caller_id,
                   entered_at=datetime.now(UTC), ended_at=None, end_reason=None, hangup_cause=None,
                   language=self.language)


@pytest.fixture
async def placing() -> AsyncIterator[tuple[Engine, StandInStore, CallbackPlacer]]:
    engine = Engine(contact_centre(), logged_in=("anna",))
    store = StandInStore(joined_at=datetime.now(UTC) - timedelta(seconds=30))
    placer = CallbackPlacer(engine.ctx, store, TIMING)
    task = asyncio.create_task(placer.run())
    yield engine, store, placer
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await placer.close()


def originated(engine: Engine) -> list[tuple[object, ...]]:
    return [r.args for r in engine.ari.of("originate")]


async def agent_answers(engine: Engine) -> str:
    request = await engine.ari.wait_for("originate")
    endpoint, args, leg = request.args
    assert (endpoint, args) == ("PJSIP/anna", "agent,callback-1")  # the agent is rung first
    engine.ari.answer_leg(str(leg), "callback-1")
    return str(leg)


async def customer_leg(engine: Engine) -> str:
    request = await engine.ari.wait_for("originate", 2)
    endpoint, args, leg = request.args
    assert (endpoint, args) == (f"PJSIP/{NUMBER}@sipp-carrier", "callback,1")
    return str(leg)


async def test_the_agent_is_rung_first_whispered_to_then_the_customer_is_dialled_and_bridged(
        placing: tuple[Engine, StandInStore, CallbackPlacer]) -> None:
    engine, store, _ = placing
    agent = await agent_answers(engine)
    whisper = await engine.ari.wait_for("play")
    assert whisper.args == (agent, whisper_media(NUMBER))
    assert whisper.args[1] == "sound:vm-tocallback,digits:79165551234"
    customer = await customer_leg(engine)
    assert ("open_hop", customer, "+74951234567") in store.log  # the hotline's number as caller id
    assert engine.ari.bridge_members["case-101"] == [agent]  # the agent waits in the case's bridge
    engine.ari.live.add(customer)
    engine.ari.send(stasis_start(channel(customer, NUMBER, state="Up"), "callback", "1"))
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert store.log[-1] == ("answered",)  # durable before the customer joined the bridge
    assert engine.ari.bridge_members["case-101"] == [agent, customer]
    engine.ari.caller_hangs_up(customer)
    await engine.ari.wait_for("destroy_bridge")
    await engine.settle()
    records = engine.records.records
    assert [r["k"] for r in records] == ["event", "talk", "event", "event", "close"]
    assert all(r["hop"] == 7 for r in records) and records[-1]["reason"] == "completed"
    # the talk is counted like any: the agent's ring (written once the hop exists), answer, complete
    events = [r for r in records if r["k"] == "event"]
    assert [(e["event"], e["detail"]) for e in events] == [
        ("ring", ""), ("answer", ""), ("complete", "caller hung up")]
    anna = engine.ctx.directory.snapshot.id_of("agents", "anna")
    assert anna is not None and {e["agent"] for e in events} == {anna}
    assert events[2]["talk_ms"] is not None and events[2]["talk_ms"] >= 0
    assert ("hangup", agent) in [(r.name, r.args[0]) for r in engine.ari.requests]
    assert store.request.status == "answered"
    assert engine.queues.agents["anna"].available(time.time())  # the talk counted, wrap-up 0: free


async def test_the_customer_is_dialled_in_the_language_of_the_call_that_asked(
        placing: tuple[Engine, StandInStore, CallbackPlacer]) -> None:
    engine, store, _ = placing
    store.language = "ru"
    await agent_answers(engine)
    customer = await customer_leg(engine)
    assert engine.ari.variables[customer] == {"CHANNEL(language)": "ru"}
    engine.ari.caller_hangs_up(customer)
    await engine.settle()


async def test_the_agent_is_rung_and_whispered_to_in_the_language_of_the_call_that_asked() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    store = StandInStore(joined_at=datetime.now(UTC) - timedelta(seconds=30))
    store.request = dataclasses.replace(store.request, language="ru")
    placer = CallbackPlacer(engine.ctx, store, TIMING)
    task = asyncio.create_task(placer.run())
    try:
        agent = await agent_answers(engine)
        assert engine.ari.variables[agent] == {"CHANNEL(language)": "ru"}
        await customer_leg(engine)
        whisper = next(r.args for r in engine.ari.of("play") if r.args[0] == agent)
        assert whisper[1] == whisper_media(NUMBER, "ru")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await placer.close()


async def test_a_customer_who_does_not_answer_is_tried_again_after_the_interval(
        placing: tuple[Engine, StandInStore, CallbackPlacer]) -> None:
    engine, store, _ = placing
    agent = await agent_answers(engine)
    customer = await customer_leg(engine)
    engine.ari.send(destroyed(customer, cause=19, text="No user responding"))
    await engine.ari.wait_for("destroy_bridge")
    await engine.settle()
    assert store.log[-1] == ("unanswered", True, "failed", "not answered (No user responding)")
    assert store.request.status == "pending" and store.request.attempts == 1
    retry_in = (store.request.due_at - datetime.now(UTC)).total_seconds()
    assert 290 < retry_in <= 300  # the queue's interval (default 300 s)
    assert engine.records.records[-1]["reason"] == "failed" and engine.records.records[-1]["cause"] == 19
    # the agent answered, the customer did not: a ring_noanswer that is no miss of the agent's
    assert [(r["event"], r["detail"]) for r in engine.records.records if r["k"] == "event"] == [
        ("ring", ""), ("ring_noanswer", "caller gone")]
    assert agent not in engine.ari.live
    await asyncio.sleep(0.1)
    assert len(engine.ari.of("originate")) == 2  # not placed again before its time


async def test_the_last_unanswered_try_gives_the_callback_up() -> None:
    engine = Engine(contact_centre(callback_retries=1), logged_in=("anna",))
    store = StandInStore(joined_at=datetime.now(UTC), attempts=1)
    placer = CallbackPlacer(engine.ctx, store, TIMING)
    task = asyncio.create_task(placer.run())
    try:
        await agent_answers(engine)
        await customer_leg(engine)  # and nobody answers: our own ring timeout ends it
        await engine.ari.wait_for("destroy_bridge", timeout=4)
        await engine.settle()
        assert store.log[-1][:3] == ("unanswered", False, "failed")
        assert store.request.status == "failed"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_live_caller_who_joined_earlier_goes_first_and_the_callback_keeps_its_place() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    store = StandInStore(joined_at=datetime.now(UTC) + timedelta(seconds=1))  # joined after the caller
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("originate")  # anna rings for the caller
    placer = CallbackPlacer(engine.ctx, store, TIMING)
    task = asyncio.create_task(placer.run())
    try:
        await asyncio.sleep(0.2)
        assert [a[2] for a in originated(engine)][0].startswith("c1-agent-")
        assert len(originated(engine)) == 1  # anna is busy with the caller: the callback waits
        assert store.log[0] == ("claim",)
        engine.ari.caller_hangs_up("c1")  # the caller gives up: anna is free, the callback's turn
        request = await engine.ari.wait_for("originate", 2)
        assert request.args[1] == "agent,callback-1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await placer.close()
    assert store.log[-1] == ("release",)  # stopped before the answer: back in the line


async def test_the_agent_hanging_up_during_the_whisper_sends_the_callback_to_the_next_agent(
        placing: tuple[Engine, StandInStore, CallbackPlacer]) -> None:
    engine, store, _ = placing
    engine.ari.hold_playbacks = True
    agent = await agent_answers(engine)
    await engine.ari.wait_for("play")
    engine.ari.caller_hangs_up(agent)
    request = await engine.ari.wait_for("originate", 2, timeout=4)
    assert request.args[1] == "agent,callback-1"  # anna again, once her phone is free
    assert not any(entry[0] == "open_hop" for entry in store.log)  # the customer was never dialled


async def test_a_callback_whose_hotline_is_closed_waits_for_its_next_opening() -> None:
    closed_today = Hotline("city", entry=Target("queue", "support"), time_zone="UTC",
                           hours=(OpeningHours(1, clock(0, 0), clock(0, 1)),))  # Mondays 00:00-00:01
    prov = dataclasses.replace(contact_centre(), hotlines={"city": closed_today})
    engine = Engine(prov, logged_in=("anna",))
    store = StandInStore(joined_at=datetime.now(UTC))
    placer = CallbackPlacer(engine.ctx, store, TIMING)
    await placer.tick()
    await asyncio.sleep(0.05)
    [(step, due)] = [entry for entry in store.log if entry[0] == "defer"]
    assert isinstance(due, datetime) and due > datetime.now(UTC)
    assert (due.weekday(), due.hour, due.minute) == (0, 0, 0)  # the next Monday, 00:00 UTC
    assert engine.ari.of("originate") == []  # nobody rung while it is closed
    assert store.request.status == "pending"
    await placer.close()


async def test_a_callback_waiting_for_its_hotline_is_looked_at_again_when_its_hours_change() -> None:
    """Opened earlier while it waits: placed at once, not at the old opening; agents' presence
    changing alone (a reload with the same hours) wakes nothing."""
    closed_today = Hotline("city", entry=Target("queue", "support"), time_zone="UTC",
                           hours=(OpeningHours(1, clock(0, 0), clock(0, 1)),))  # Mondays 00:00-00:01
    prov = dataclasses.replace(contact_centre(), hotlines={"city": closed_today})
    engine = Engine(prov, logged_in=("anna",))
    store = StandInStore(joined_at=datetime.now(UTC))
    placer = CallbackPlacer(engine.ctx, store, TIMING)
    await placer.tick()
    await asyncio.sleep(0.05)
    assert [entry[0] for entry in store.log] == ["claim", "defer"]
    placer.provisioning_changed(engine.ctx.directory.snapshot)  # the same hours
    await placer.tick()
    assert ("wake",) not in store.log
    always_open = dataclasses.replace(closed_today, hours=())
    opened = dataclasses.replace(engine.ctx.directory.snapshot,
                                 prov=dataclasses.replace(prov, hotlines={"city": always_open}))
    engine.ctx.directory.snapshot = opened
    placer.provisioning_changed(opened)
    await placer.tick()
    assert store.log[2:4] == [("wake",), ("claim",)]
    request = await engine.ari.wait_for("originate")
    assert request.args[1] == "agent,callback-1"  # placed now: anna rung
    await placer.close()
