"""Recording a placed callback's talk, through the real engine (router, queue manager, placer,
callback talk) around the recording fake ARI client: by its queue's record mode (its hotline's
when the queue sets none), from the customer joining the bridge to the talk's end, on the
outbound leg's hop with its agent and queue; on demand by the user event the CLI sends about
the customer's leg; and after a restart, the recording Asterisk went on with adopted. The lab
test (tests/e2e/test_recording_callback_calls.py) proves the file on Asterisk."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from test_callback_placer import TIMING, StandInStore, agent_answers, contact_centre, customer_leg
from test_callback_talk_adoption import AGENT_LEG, CUSTOMER_LEG, left_talking
from test_talk_recording import recordings, user_event

from hotline.engine.callback_placer import CallbackPlacer
from hotline.engine.callback_talk import RECORDING_NOT_ADOPTED
from hotline.engine.recording import RECORDING_EVENT
from hotline.provision.model import Provisioning
from hotline.store.callbacks import CallbackRequest
from hotline.store.hops import Hop
from hotline.store.recordings import OpenRecording

from support.engine import Engine, channel, every_move_allowed, stasis_start  # noqa: F401

pytestmark = pytest.mark.asyncio


class HotlineStore(StandInStore):
    """The outbound leg's hop in the hotline the customer called (city, id 1), as the store opens it."""

    async def open_hop(self, callback: CallbackRequest, *, node: str, channel_id: str, caller_id: str) -> Hop:
        return dataclasses.replace(await super().open_hop(callback, node=node, channel_id=channel_id,
                                                          caller_id=caller_id), hotline_id=1)


@asynccontextmanager
async def placed(prov: Provisioning) -> AsyncIterator[tuple[Engine, str, str, CallbackPlacer]]:
    """A callback of queue support placed in `prov`: anna answered, then the customer; yields the
    engine, the agent's and customer's legs (both in the case's bridge) and the placer."""
    engine = Engine(prov, logged_in=("anna",))
    placer = CallbackPlacer(engine.ctx, HotlineStore(joined_at=datetime.now(UTC)), TIMING)
    task = asyncio.create_task(placer.run())
    try:
        agent = await agent_answers(engine)
        customer = await customer_leg(engine)
        engine.ari.live.add(customer)
        engine.ari.send(stasis_start(channel(customer, "+79165551234", state="Up"), "callback", "1"))
        await engine.ari.wait_for("add_to_bridge", 2)
        await engine.settle()
        yield engine, agent, customer, placer
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await placer.close()


def kinds(engine: Engine) -> list[object]:
    return [r["k"] if r["k"] != "event" else r["event"] for r in engine.records.records]


async def test_a_callback_of_a_queue_that_records_always_is_recorded_from_the_bridge_to_the_end() -> None:
    async with placed(contact_centre(record="always")) as (engine, agent, customer, _):
        bridge, name, fmt = (await engine.ari.wait_for("record_bridge")).args
        assert (bridge, fmt) == ("case-101", "wav")
        adds = [i for i, r in enumerate(engine.ari.requests) if r.name == "add_to_bridge"]
        assert engine.ari.names().index("record_bridge") > adds[1]  # once the customer is in
        engine.ari.caller_hangs_up(customer)
        await engine.ari.wait_for("destroy_bridge")
        await engine.settle()
        # one recording on the outbound hop (7), of anna (1) in support (1)
        assert recordings(engine) == [("rec_start", name, 7, 1, 1), ("rec_end", name, None, None, None)]
        assert kinds(engine).index("answer") < kinds(engine).index("rec_start")
        assert kinds(engine).index("complete") < kinds(engine).index("rec_end") < kinds(engine).index("close")
        assert engine.ari.names().index("stop_recording") < engine.ari.names().index("destroy_bridge")
        assert agent not in engine.ari.live


async def test_a_callback_of_a_queue_that_records_never_asks_asterisk_for_nothing() -> None:
    async with placed(contact_centre()) as (engine, _, customer, _):
        engine.ari.caller_hangs_up(customer)
        await engine.ari.wait_for("destroy_bridge")
        await engine.settle()
        assert "record_bridge" not in engine.ari.names() and recordings(engine) == []


async def test_a_callback_of_a_queue_without_record_follows_the_hotline_the_customer_called() -> None:
    prov = contact_centre()
    prov = dataclasses.replace(prov, hotlines={"city": dataclasses.replace(prov.hotlines["city"],
                                                                           record="always")})
    async with placed(prov) as (engine, _, customer, _):
        name = (await engine.ari.wait_for("record_bridge")).args[1]
        engine.ari.caller_hangs_up(customer)
        await engine.ari.wait_for("destroy_bridge")
        await engine.settle()
        assert recordings(engine) == [("rec_start", name, 7, 1, 1), ("rec_end", name, None, None, None)]


async def test_an_on_demand_callback_is_recorded_once_asked_about_the_customers_leg_and_paused() -> None:
    async with placed(contact_centre(record="on_demand")) as (engine, _, customer, _):
        assert "record_bridge" not in engine.ari.names()
        engine.ari.send(user_event(customer, RECORDING_EVENT, action="start", asked_by="agent:anna"))
        name = (await engine.ari.wait_for("record_bridge")).args[1]
        engine.ari.send(user_event(customer, RECORDING_EVENT, action="pause", asked_by="cli"))
        assert (await engine.ari.wait_for("pause_recording")).args == (name,)
        engine.ari.send(user_event(customer, RECORDING_EVENT, action="stop", asked_by="cli"))
        await engine.ari.wait_for("stop_recording")
        await engine.settle()
        assert [k for k, *_ in recordings(engine)] == ["rec_start", "rec_pause", "rec_end"]
        assert engine.ari.bridge_members["case-101"]  # the talk goes on, unrecorded
        engine.ari.caller_hangs_up(customer)
        await engine.ari.wait_for("destroy_bridge")
        await engine.settle()
        assert len(engine.ari.of("record_bridge")) == 1 and len(recordings(engine)) == 3


async def test_an_adopted_callback_talk_adopts_the_recording_asterisk_went_on_with() -> None:
    engine = Engine(contact_centre(record="always"), logged_in=("anna",))
    left_talking(engine, agent_id=1, answered_at=datetime.now(UTC) - timedelta(seconds=40))
    engine.hops.recordings[7] = [OpenRecording("rec-cb", "wav", "recording")]
    engine.ari.recordings["rec-cb"] = "recording"

    await engine.router.reconcile()
    await engine.settle()
    assert "record_bridge" not in engine.ari.names()  # no second recording of the same talk
    engine.ari.send(user_event(CUSTOMER_LEG, RECORDING_EVENT, action="pause", asked_by="cli"))
    assert (await engine.ari.wait_for("pause_recording")).args == ("rec-cb",)
    engine.ari.caller_hangs_up(AGENT_LEG)
    await engine.ended()

    assert recordings(engine) == [("rec_pause", "rec-cb", None, None, None),
                                  ("rec_end", "rec-cb", None, None, None)]
    assert [r.args for r in engine.ari.of("stop_recording")] == [("rec-cb",)]
    assert next(r for r in engine.records.records if r["k"] == "rec_end").get("failed") is None
    assert kinds(engine).index("complete") < kinds(engine).index("rec_end") < kinds(engine).index("close")


async def test_a_callback_talk_not_adopted_has_its_recording_stopped_and_closed_failed() -> None:
    engine = Engine(contact_centre(record="always"), logged_in=("anna",))
    left_talking(engine, queue_id=9)  # a queue removed since
    engine.hops.recordings[7] = [OpenRecording("rec-cb", "wav", "recording")]
    engine.ari.recordings["rec-cb"] = "recording"

    await engine.router.reconcile()
    await engine.ended()

    assert [r.args for r in engine.ari.of("stop_recording")] == [("rec-cb",)]
    ended = [(r["name"], r.get("failed")) for r in engine.records.records if r["k"] == "rec_end"]
    assert ended == [("rec-cb", RECORDING_NOT_ADOPTED)]


async def test_a_daemon_stopping_during_a_recorded_callback_leaves_its_recording_to_the_next_one() -> None:
    async with placed(contact_centre(record="always")) as (engine, _, _, placer):
        await engine.ari.wait_for("record_bridge")
        await engine.settle()
        await placer.close()  # SIGTERM: the talk's task cancelled, its legs left in the bridge
        assert [k for k, *_ in recordings(engine)] == ["rec_start"]  # no end: the next daemon adopts it
        assert engine.ari.of("stop_recording") == [] and engine.ari.bridge_members["case-101"]
