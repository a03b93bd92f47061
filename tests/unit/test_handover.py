"""The switch to video in the engine: the customer's video leg takes over the phone leg's talk,
and what both legs record comes out as one ordered batch (tests/browser proves it with Chromium)."""

from __future__ import annotations

from hotline.engine.call_state import CallState
from hotline.provision.model import Agent, Hotline, Number, Provisioning, Queue, Target

from support.engine import Engine, StandInSwitches, channel, every_move_allowed, stasis_start  # noqa: F401

TOKEN = "ab12"


def video_centre() -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support")},
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", capabilities=frozenset({"audio", "video"}),
                              queues=(("support", 0),))})


async def phone_talking_with_anna(engine: Engine) -> str:
    engine.call_in("c1", "84951234567")
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    assert engine.call("c1").state is CallState.TALKING
    return leg


def video_leg_enters(engine: Engine, token: str) -> None:
    engine.ari.live.add("v1")
    engine.ari.headers["v1"] = {"X-Hotline-Customer": "c0ffee", "X-Hotline-Switch": token}
    engine.ari.send(stasis_start(channel("v1", caller="", name="PJSIP/hotline-web-v1", context="hotline-web"),
                                 "switch", "switch", "video=(vp8)"))


async def test_a_video_leg_takes_over_the_talk_and_the_records_of_both_legs_come_in_order() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(video_centre(), logged_in=("anna",), switches=switches)
    agent_leg = await phone_talking_with_anna(engine)
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=1)
    video_leg_enters(engine, TOKEN)
    await engine.ari.wait_for("hangup")  # the phone leg goes once the talk is handed over
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == [agent_leg, "v1"]  # the agent never left it
    assert engine.call("v1").state is CallState.TALKING
    engine.ari.caller_hangs_up("v1")
    await engine.ended()
    # One batch, as the write-behind applies it: the phone leg's visit (hop 1), the video leg
    # taking the talk over (hop 900), the phone leg ending switched, then the talk's complete on
    # the visit's hop and the video leg's end.
    assert engine.records.summary() == [
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"),
        ("talk", 900, ""), ("close", 1, "switched"),
        ("event", 1, "complete"), ("close", 900, "completed")]
    talk = engine.records.records[3]
    assert (talk["queue"], talk["agent"]) == (1, 1)
    assert [r.args[0] for r in engine.ari.of("hangup")] == ["c1", agent_leg]
    assert engine.queues.agents["anna"].calls_completed("support") == 1  # one talk across both legs


async def test_a_forged_token_is_refused_before_answer_and_records_nothing() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(video_centre(), logged_in=("anna",), switches=switches)
    await phone_talking_with_anna(engine)
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=1)
    records_before = list(engine.records.records)
    video_leg_enters(engine, "ffff")
    await engine.ari.wait_for("hangup")
    assert engine.ari.of("hangup")[0].args == ("v1", "rejected")
    assert [r.args[0] for r in engine.ari.of("answer")] == ["c1"]  # the video leg was never answered
    assert engine.records.records == records_before
    assert engine.call("c1").state is CallState.TALKING  # the phone talk goes on
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_switch_leg_from_outside_the_web_context_is_refused_and_no_header_is_read() -> None:
    # A trunk caller who dials `switch` (or forges the entry) brings no token the daemon listens to.
    switches = StandInSwitches(TOKEN)
    engine = Engine(video_centre(), logged_in=("anna",), switches=switches)
    await phone_talking_with_anna(engine)
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=1)
    engine.ari.live.add("v1")
    engine.ari.headers["v1"] = {"X-Hotline-Switch": TOKEN}
    engine.ari.send(stasis_start(channel("v1"), "switch", "switch", "video=(vp8)"))
    await engine.ari.wait_for("hangup")
    assert engine.ari.of("hangup")[0].args == ("v1", "rejected")
    assert engine.ari.of("channel_variable") == []
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_video_leg_whose_phone_leg_ended_enters_the_hotline_and_rings_that_agent_first() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(video_centre(), logged_in=("anna",), switches=switches)
    await phone_talking_with_anna(engine)
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=1)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    video_leg_enters(engine, TOKEN)
    second = await engine.ari.wait_for("originate", 2)
    assert second.args[0] == "PJSIP/anna"
    assert [s for s in engine.records.summary() if s[1] == 900] == [("event", 900, "join"),
                                                                     ("event", 900, "ring")]
    engine.ari.caller_hangs_up("v1")
    await engine.ended()
