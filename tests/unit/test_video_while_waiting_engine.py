"""Changing channel while waiting, in the engine: a waiting caller's video key (or a menu's
`video:QUEUE` key) asks for the link, and the video leg takes the phone leg's place in line: same
join time, same visit; the phone leg ends `switched` (tests/browser proves it with Chromium)."""

from __future__ import annotations

from hotline.engine.call_state import CallState
from hotline.provision.model import Agent, Hotline, Menu, MenuOption, Number, Provisioning, Queue, Target

from support.engine import Engine, StandInSwitches, channel, dtmf, every_move_allowed, stasis_start  # noqa: F401

TOKEN = "ab12"
SUPPORT = Target("queue", "support")


def centre(entry: Target = SUPPORT) -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support", video_key="9", ringback=0, announce_period=None)},
        menus={"main": Menu("main", "hello-world", options=(MenuOption("9", Target("video", "support")),
                                                             MenuOption("1", Target("queue", "support"))))},
        hotlines={"city": Hotline("city", entry=entry)},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", capabilities=frozenset({"audio", "video"}),
                              queues=(("support", 0),))})


def anna_is_free(engine: Engine) -> None:
    engine.queues.presence({"anna": True}, {})
    engine.queues.device("anna", "NOT_INUSE")


def video_leg_enters(engine: Engine, token: str = TOKEN) -> None:
    engine.ari.live.add("v1")
    engine.ari.headers["v1"] = {"X-Hotline-Customer": "c0ffee", "X-Hotline-Switch": token}
    engine.ari.send(stasis_start(channel("v1", caller="", name="PJSIP/hotline-web-v1", context="hotline-web"),
                                 "switch", "switch", "video=(vp8)"))


async def two_callers_waiting(engine: Engine) -> None:
    engine.call_in("c1", "84951234567")
    await engine.settle()
    engine.call_in("c2", "84951234567")
    await engine.settle()
    assert engine.queues.length("support") == 2


async def test_the_video_key_asks_for_a_link_and_the_caller_keeps_waiting() -> None:
    engine = Engine(centre())
    await two_callers_waiting(engine)
    engine.ari.send(dtmf("c1", "9"))
    engine.ari.send(dtmf("c1", "5"))  # no key of the queue's: nothing
    await engine.settle()
    assert engine.video_links == [engine.hops.opened[0].id]
    assert engine.call("c1").state is CallState.WAITING
    assert engine.queues.length("support") == 2
    for leg in ("c1", "c2"):
        engine.ari.caller_hangs_up(leg)
    await engine.ended()


async def test_the_video_leg_takes_the_phone_legs_place_ahead_of_a_later_caller() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(), switches=switches)
    await two_callers_waiting(engine)
    phone_hop = engine.hops.opened[0]
    joined_at = engine.queues.waiting["support"][0].joined_at
    switches.replaces(phone_hop, queue_id=1, agent_id=None)
    video_leg_enters(engine)
    await engine.ari.wait_for("hangup")
    await engine.settle()
    assert engine.ari.of("hangup")[0].args[0] == "c1"  # the phone leg goes
    line = engine.queues.waiting["support"]
    assert [(w.channel_id, w.joined_at) for w in line] == [("v1", joined_at), ("c2", line[1].joined_at)]
    assert engine.call("v1").state is CallState.WAITING
    assert [r.args[0] for r in engine.ari.of("start_moh")][-1] == "v1"  # it waits with music
    anna_is_free(engine)
    ring = await engine.ari.wait_for("originate")
    assert ring.args[1] == "agent,v1"  # served before c2, who called later
    engine.ari.answer_leg(str(ring.args[2]), "v1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    assert engine.call("v1").state is CallState.TALKING
    for leg in ("v1", "c2"):
        engine.ari.caller_hangs_up(leg)
    await engine.ended()
    # The visit is the phone leg's hop (1): its join, then, after the switch, its ring, answer and
    # complete; the video leg's own hop (900) is answered by the same agent in the same queue.
    assert [s for s in engine.records.summary() if s[1] in (1, 900)] == [
        ("event", 1, "join"), ("close", 1, "switched"), ("event", 1, "ring"), ("event", 1, "answer"),
        ("talk", 900, ""), ("event", 1, "complete"), ("close", 900, "completed")]
    assert not [s for s in engine.records.summary() if s[2] == "abandon" and s[1] in (1, 900)]


async def test_a_video_leg_arriving_while_its_phone_leg_rings_cuts_the_ring_and_rings_again() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(), logged_in=("anna",), switches=switches)
    engine.call_in("c1", "84951234567")
    first = await engine.ari.wait_for("originate")
    assert first.args[1] == "agent,c1"
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=None)
    video_leg_enters(engine)
    second = await engine.ari.wait_for("originate", 2)
    assert second.args[1] == "agent,v1"
    hung_up = [r.args[0] for r in engine.ari.of("hangup")]
    assert first.args[2] in hung_up and "c1" in hung_up
    noanswer = [r for r in engine.records.records if r.get("event") == "ring_noanswer"]
    assert [r["detail"] for r in noanswer] == ["caller moved to video"]
    engine.ari.caller_hangs_up("v1")
    await engine.ended()
    summary = [s for s in engine.records.summary() if s[1] in (1, 900)]
    assert ("close", 1, "switched") in summary and ("event", 1, "abandon") in summary  # the video leg's
    assert ("close", 900, "abandoned") in summary


async def test_a_menu_video_key_sends_the_link_and_puts_the_caller_in_its_queue() -> None:
    engine = Engine(centre(Target("menu", "main")))
    engine.call_in("c1", "84951234567")
    await engine.ari.wait_for("play")
    engine.ari.send(dtmf("c1", "9"))
    await engine.settle()
    assert engine.video_links == [engine.hops.opened[0].id]
    assert engine.call("c1").state is CallState.WAITING
    assert engine.queues.length("support") == 1
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert ("digit", 1, "9") in engine.records.summary() and ("event", 1, "join") in engine.records.summary()


async def test_a_video_leg_whose_phone_leg_is_in_a_menu_enters_the_hotline_and_the_phone_goes_on() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(Target("menu", "main")), switches=switches)
    engine.ari.hold_playbacks = True  # the phone leg listens to the menu's greeting
    engine.call_in("c1", "84951234567")
    await engine.ari.wait_for("play")
    await engine.settle()
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=None)
    video_leg_enters(engine)
    await engine.ari.wait_for("play", 2)  # the video leg hears the menu itself
    assert engine.call("c1").state is CallState.IN_MENU
    assert "c1" not in [r.args[0] for r in engine.ari.of("hangup")]
    for leg in ("c1", "v1"):
        engine.ari.caller_hangs_up(leg)
    await engine.ended()


async def test_the_announcement_says_which_key_moves_to_video() -> None:
    prov = centre()
    prov.queues["support"] = Queue("support", video_key="*", ringback=0, announce_period=5)
    engine = Engine(prov)
    engine.call_in("c1", "84951234567")
    played = await engine.ari.wait_for("play", timeout=7.0)
    assert str(played.args[1]).endswith("sound:vm-press,digits:*")
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_video_leg_whose_phone_leg_was_answered_meanwhile_takes_over_the_talk() -> None:
    switches = StandInSwitches(TOKEN)
    engine = Engine(centre(), logged_in=("anna",), switches=switches)
    engine.call_in("c1", "84951234567")
    ring = await engine.ari.wait_for("originate")
    switches.replaces(engine.hops.opened[0], queue_id=1, agent_id=1)
    engine.ari.answer_leg(str(ring.args[2]), "c1")  # anna answers as the link is opened
    video_leg_enters(engine)
    await engine.ari.wait_for("hangup")
    await engine.settle()
    assert engine.ari.of("hangup")[0].args[0] == "c1"
    assert engine.ari.bridge_members["case-101"] == [str(ring.args[2]), "v1"]
    assert engine.call("v1").state is CallState.TALKING
    engine.ari.caller_hangs_up("v1")
    await engine.ended()
    assert [s for s in engine.records.summary() if s[1] in (1, 900)] == [
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"),
        ("talk", 900, ""), ("close", 1, "switched"), ("event", 1, "complete"), ("close", 900, "completed")]
