"""From video to phone, in the engine: a move asked for a video talk dials the customer's phone
through the trunk that allows it, with a switch token on the channel; answered, the phone leg
joins the case's bridge and takes the talk over, and the video leg ends `switched` (the lab test,
tests/browser/test_video_to_phone.py, proves it with Chromium and a sipp phone behind the trunk)."""

from __future__ import annotations

import pytest

from hotline.asterisk.ari_events import ChannelUserevent
from hotline.engine.call_state import CallState
from hotline.engine.phone_switch import PHONE_SWITCH_EVENT, dial_outcome, phone_number
from hotline.errors import NotAPhoneNumber, PhoneSwitchRefused
from hotline.provision.model import Agent, Hotline, Number, Provisioning, Queue, Target, Trunk

from support.engine import (  # noqa: F401
    APP,
    NOW,
    Engine,
    StandInSwitches,
    channel,
    destroyed,
    every_move_allowed,
    stasis_start,
)

TOKEN = "cd34"
CUSTOMER = "+79161234567"
CARRIER = Trunk("carrier", "sipp-carrier", "+74951234567", ("+7916",))


def centre() -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support")},
        hotlines={"video": Hotline("video", entry=Target("queue", "support"))},
        numbers={"video-desk": Number("video-desk", "video", "video", 10),
                 "+74951234567": Number("+74951234567", "video")},
        agents={"anna": Agent("anna", "anna", capabilities=frozenset({"audio", "video"}),
                              queues=(("support", 0),))},
        trunks={"carrier": CARRIER})


def asked(channel_id: str, number: str) -> ChannelUserevent:
    return ChannelUserevent("ChannelUserevent", APP, NOW, channel=channel(channel_id, state="Up"),
                            eventname=PHONE_SWITCH_EVENT,
                            variables={"number": number, "asked_by": "cli", "request": "r1"})


async def video_talking_with_anna(engine: Engine) -> str:
    engine.ari.live.add("w1")
    engine.ari.headers["w1"] = {"X-Hotline-Customer": "c0ffee"}
    engine.ari.send(stasis_start(channel("w1", caller="", name="PJSIP/hotline-web-w1", context="hotline-web"),
                                 "inbound", "video-desk", "video=(vp8)"))
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "w1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    assert engine.call("w1").state is CallState.TALKING
    return leg


async def test_the_customers_phone_is_dialled_and_takes_the_talk_over_from_the_video_leg() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(), logged_in=("anna",), switches=switches)
    agent_leg = await video_talking_with_anna(engine)
    video_hop = engine.hops.opened[0]
    engine.ari.send(asked("w1", "8 916 123-45-67"))  # as people type it; dialled in E.164
    dialled = await engine.ari.wait_for("originate", 2)
    assert dialled.args[:2] == (f"PJSIP/{CUSTOMER}@sipp-carrier", f"phone,{CUSTOMER}")
    phone_leg = str(dialled.args[2])
    assert engine.ari.variables[phone_leg] == {"HOTLINE_SWITCH_TOKEN": TOKEN}  # never a Stasis argument
    assert switches.issued == [(video_hop.id, "cli")] and switches.to_numbers == [CUSTOMER]
    assert engine.call("w1").state is CallState.TALKING  # ringing the phone changes nothing yet

    switches.replaces(video_hop, queue_id=1, agent_id=1)
    engine.ari.live.add(phone_leg)
    engine.ari.headers[phone_leg] = {"HOTLINE_SWITCH_TOKEN": TOKEN}
    engine.ari.send(stasis_start(channel(phone_leg, caller="+74951234567", state="Up",
                                         name=f"PJSIP/sipp-carrier-{phone_leg}"), "phone", CUSTOMER))
    await engine.ari.wait_for("hangup")
    await engine.settle()
    assert engine.ari.of("hangup")[0].args[0] == "w1"  # the video leg goes
    assert engine.ari.bridge_members["case-101"] == [agent_leg, phone_leg]  # the agent never left
    assert engine.call(phone_leg).state is CallState.TALKING
    engine.ari.caller_hangs_up(phone_leg)
    await engine.ended()
    assert [s for s in engine.records.summary() if s[1] in (video_hop.id, 900)] == [
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"),
        ("talk", 900, ""), ("close", 1, "switched"), ("event", 1, "complete"), ("close", 900, "completed")]
    assert switches.not_answered == []  # answered: the token's use says so


@pytest.mark.parametrize(("cause", "text", "outcome"), [
    (17, "User busy", "busy"), (19, "No answer", "no_answer"), (21, "Call Rejected", "failed")])
async def test_a_phone_that_does_not_answer_is_recorded_and_the_video_talk_goes_on(
        cause: int, text: str, outcome: str) -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(), logged_in=("anna",), switches=switches)
    agent_leg = await video_talking_with_anna(engine)
    engine.ari.send(asked("w1", CUSTOMER))
    phone_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    engine.ari.send(destroyed(phone_leg, cause=cause, text=text))  # busy, rang out, or refused
    await engine.settle()
    assert switches.not_answered == [(TOKEN, outcome, cause, text)]
    assert engine.call("w1").state is CallState.TALKING  # the video talk as it was
    assert engine.ari.bridge_members["case-101"] == ["w1", agent_leg]
    assert engine.ari.of("hangup") == []
    engine.ari.caller_hangs_up("w1")
    await engine.ended()


def test_an_unanswered_dial_is_busy_no_answer_or_failed_by_its_cause_and_how_long_it_rang() -> None:
    assert dial_outcome(17, 1.0, 30) == "busy"
    assert dial_outcome(19, 5.0, 30) == dial_outcome(18, 5.0, 30) == "no_answer"
    assert dial_outcome(0, 30.2, 30) == dial_outcome(16, 29.5, 30) == "no_answer"  # rang out at the timeout
    assert dial_outcome(0, 12.0, 12) == "no_answer"  # the trunk's own timeout
    assert dial_outcome(0, 3.0, 30) == dial_outcome(21, 1.0, 30) == dial_outcome(None, 0.1, 30) == "failed"


@pytest.mark.parametrize("number", ["+74957654321", "8 916 12", "", "+79161234567;user=phone"])
async def test_a_number_no_trunk_may_dial_is_refused_and_nothing_is_dialled(number: str) -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(), logged_in=("anna",), switches=switches)
    await video_talking_with_anna(engine)
    engine.ari.send(asked("w1", number))
    await engine.settle(0.1)
    assert len(engine.ari.of("originate")) == 1 and switches.issued == []  # only anna was ever dialled
    assert engine.call("w1").state is CallState.TALKING
    engine.ari.caller_hangs_up("w1")
    await engine.ended()


async def test_a_phone_call_is_not_moved_to_another_phone() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(), logged_in=("anna",), switches=switches)
    engine.call_in("c1", "84951234567")
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    engine.ari.send(asked("c1", CUSTOMER))
    await engine.settle(0.1)
    assert len(engine.ari.of("originate")) == 1 and switches.issued == []
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


def test_phone_number_is_e164_inside_a_trunks_prefixes() -> None:
    assert phone_number("8 (916) 123-45-67", [CARRIER], "RU") == CUSTOMER
    with pytest.raises(PhoneSwitchRefused, match="outside trunk carrier's allowed prefixes"):
        phone_number("+7 495 765-43-21", [CARRIER], "RU")
    with pytest.raises(NotAPhoneNumber, match="not a valid telephone number"):  # the pages have a code
        phone_number("call me", [CARRIER], "RU")
    with pytest.raises(PhoneSwitchRefused, match="no trunk is provisioned"):
        phone_number(CUSTOMER, [], "RU")
