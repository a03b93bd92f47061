"""The call's state machine and its queue visit, against a recording fake ARI client (answering
as Asterisk 22 does on the lab) and a record sink: each way a call goes, the races that matter,
and the records each submits, in order. The lab tests (tests/e2e) prove the same on Asterisk."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest

from hotline.engine.call import KEYS_AHEAD
from hotline.engine.call_state import ALLOWED, CallState
from hotline.engine.facts import KEYS_RECORDED_PER_LEG
from hotline.engine.handover import ask_for_the_talk
from hotline.engine.queueing.queues import QueueManager
from hotline.provision.model import Agent, Hotline, Menu, MenuOption, Number, Provisioning, Queue, Target

from support.engine import Engine, destroyed, dtmf, every_move_allowed, stasis_end  # noqa: F401

CITY = "84951234567"


def contact_centre(**queue: object) -> Provisioning:
    """One hotline on one city number, its queue `support` with anna and boris as members."""
    return Provisioning(
        queues={"support": Queue("support", **queue)},  # type: ignore[arg-type]
        menus={"out": Menu("out", "hello", options=(MenuOption("5", Target("hangup")),))},
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={name: Agent(name, name, queues=(("support", 0),)) for name in ("anna", "boris")})


async def answered_by(engine: Engine, agent_leg_no: int = 1, caller: str = "c1") -> str:
    """The agent rung `agent_leg_no`-th picks up; its leg's channel id."""
    leg = str((await engine.ari.wait_for("originate", agent_leg_no)).args[2])
    engine.ari.answer_leg(leg, caller)
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    return leg


def test_the_state_table_ends_in_ended_and_nothing_leaves_it() -> None:
    assert ALLOWED[CallState.ENDED] == frozenset()
    assert all(CallState.LEAVING in ALLOWED[s] for s in CallState if s not in (CallState.LEAVING,
                                                                                CallState.ENDED))
    # a talk ends (its agent hanging up may leave the caller a survey), or a transfer takes the
    # caller on to a queue or a menu
    assert ALLOWED[CallState.TALKING] == {CallState.TALKING, CallState.WAITING, CallState.IN_MENU,
                                          CallState.SURVEY, CallState.LEAVING}


async def test_an_unknown_number_hears_not_in_service_and_its_hop_ends_failed() -> None:
    engine = Engine(contact_centre())
    engine.call_in("c1", "84950000000")
    await engine.ended()
    assert engine.ari.names()[:2] == ["answer", "play"]
    assert engine.ari.of("play")[0].args[1] == "sound:ss-noservice"
    assert engine.ari.of("hangup")[0].args == ("c1", "normal")
    assert engine.records.summary() == [("close", 1, "failed")]
    assert engine.records.records[0]["cause"] == 16


async def test_a_call_answered_by_an_agent_records_join_ring_answer_complete_in_order() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = await answered_by(engine)
    call = engine.call("c1")
    assert call.state is CallState.TALKING
    assert engine.ari.bridge_members["case-101"] == ["c1", leg]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary() == [("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"),
                                        ("event", 1, "complete"), ("close", 1, "completed")]
    assert engine.records.records[3]["detail"] == "caller hung up"
    assert engine.records.records[4]["cause"] == 16  # a BYE (cause 0 from Asterisk) is normal clearing
    assert ("hangup", (leg, "normal")) in [(r.name, r.args) for r in engine.ari.requests]
    assert engine.ari.of("destroy_bridge")[0].args == ("case-101",)
    assert call.state is CallState.ENDED


async def test_the_agent_hanging_up_ends_the_talk_and_the_caller_is_hung_up() -> None:
    engine = Engine(contact_centre(wrapup=0), logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = await answered_by(engine)
    engine.ari.send(stasis_end(leg))
    await engine.ended()
    assert [r.args for r in engine.ari.of("hangup")][-1] == ("c1", "normal")
    assert engine.records.summary()[-2:] == [("event", 1, "complete"), ("close", 1, "completed")]
    assert engine.records.records[-2]["detail"] == "agent hung up"
    assert engine.queues.agents["anna"].calls_completed("support") == 1


async def test_a_caller_hanging_up_while_an_agent_rings_is_abandoned_and_the_agent_freed() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary() == [("event", 1, "join"), ("event", 1, "ring"),
                                        ("event", 1, "ring_noanswer"), ("event", 1, "abandon"),
                                        ("close", 1, "abandoned")]
    assert engine.records.records[2]["detail"] == "caller gone"
    assert engine.records.records[3]["position"] == 1
    assert engine.ari.of("hangup")[0].args == (leg, "normal")
    assert engine.queues.agents["anna"].available(time.time())


async def test_an_agent_answering_just_after_the_caller_left_is_hung_up_not_bridged() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.caller_hangs_up("c1")
    engine.ari.answer_leg(leg, "c1")  # its StasisStart is behind the caller's hangup in the inbox
    await engine.ended()
    assert engine.ari.of("add_to_bridge") == []
    assert leg not in engine.ari.live  # hung up
    assert [s[2] for s in engine.records.summary()] == [
        "join", "ring", "ring_noanswer", "abandon", "abandoned"]
    assert engine.queues.agents["anna"].calls_completed("support") == 0


async def test_a_caller_gone_between_the_agents_answer_and_the_bridge_is_an_abandon() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.live.discard("c1")  # gone in Asterisk; its events not delivered yet
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("destroy_bridge")
    engine.ari.send(stasis_end("c1"))
    engine.ari.send(destroyed("c1", 0, "Unknown"))
    await engine.ended()
    assert [s[2] for s in engine.records.summary()] == [
        "join", "ring", "ring_noanswer", "abandon", "abandoned"]
    assert engine.records.records[2]["detail"] == "caller gone before the bridge"
    assert engine.records.records[3]["position"] is None  # out of line once the agent answered
    anna = engine.queues.agents["anna"]
    assert anna.available(time.time()) and anna.calls_completed("support") == 0  # no call counted


async def test_an_agent_gone_before_the_bridge_puts_the_caller_back_in_line_for_the_next_agent() -> None:
    engine = Engine(contact_centre(strategy="linear"), logged_in=("anna", "boris"))
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    engine.ari.live.discard(leg)  # anna's phone hangs up the moment it answered
    second = await engine.ari.wait_for("originate", 2)
    assert second.args[0] == "PJSIP/boris"
    await answered_by(engine, 2)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert [(r.get("event"), r.get("agent"), r.get("detail")) for r in engine.records.records] == [
        ("join", None, ""), ("ring", 1, ""), ("ring_noanswer", 1, "agent gone before the bridge"),
        ("ring", 2, ""), ("answer", 2, ""), ("complete", 2, "caller hung up"), (None, None, None)]
    assert engine.queues.agents["anna"].calls_completed("support") == 0


async def test_two_agents_answering_a_ringall_the_first_is_bridged_the_second_hung_up() -> None:
    engine = Engine(contact_centre(strategy="ringall"), logged_in=("anna", "boris"))
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("originate", 2)
    first, second = (str(r.args[2]) for r in engine.ari.of("originate"))
    engine.ari.answer_leg(first, "c1")
    engine.ari.answer_leg(second, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == ["c1", first]
    assert second not in engine.ari.live
    assert [(r["event"], r["agent"]) for r in engine.records.records] == [
        ("join", None), ("ring", 1), ("ring", 2), ("ring_noanswer", 2), ("answer", 1)]
    assert engine.records.records[3]["detail"] == "answered by anna"
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_all_lines_held_the_caller_gets_busy_and_the_refusal_is_recorded() -> None:
    engine = Engine(contact_centre())
    engine.hops.lines_busy = True
    engine.call_in("c1", CITY)
    await engine.ended()
    assert engine.ari.requests[-1].name == "hangup" and engine.ari.requests[-1].args == ("c1", "busy")
    assert engine.ari.of("answer") == []
    [refused] = engine.records.records
    assert (refused["k"], refused["reason"], refused["cause"], refused["dialled_e164"]) == (
        "refused", "busy", 17, "+74951234567")


async def test_the_database_away_when_the_hop_opens_the_call_is_served_and_recorded_later(
        caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(contact_centre(max_wait=1, overflow=Target("hangup")))
    engine.hops.down = True
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")  # served: waiting in the queue with music
    assert engine.records.records == []  # nothing to attach them to yet
    engine.hops.down = False
    await engine.ended()
    assert "database unavailable" in caplog.text
    # Written when the call ended, through the write-behind: its hop, then its records naming it
    # by its channel (the database gives it its id).
    assert engine.records.summary() == [("late", "c1", ""), ("event", "c1", "join"),
                                        ("event", "c1", "overflow"), ("close", "c1", "overflow")]
    assert engine.hops.opened == []  # not asked again: the write-behind waits out outages


async def test_a_waiting_caller_sleeps_until_the_queue_wakes_it_no_polling() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.queues.device("anna", "INUSE")  # on a call of its own
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    call = engine.call("c1")
    reads = 0
    read = call.next_event

    async def counted(timeout: float | None = None) -> object:
        nonlocal reads
        reads += 1
        return await read(timeout)
    call.next_event = counted  # type: ignore[method-assign,assignment]
    await asyncio.sleep(1.5)
    # Asleep in one read of its inbox: no timer came back to look at the queue (it used to, each second).
    assert reads == 0 and engine.ari.of("originate") == []
    engine.queues.device("anna", "NOT_INUSE")  # the queue manager's QueueTurn wakes it at once
    await engine.ari.wait_for("originate", timeout=0.2)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_an_agents_wrap_up_ending_wakes_the_next_caller_by_its_deadline() -> None:
    engine = Engine(contact_centre(wrapup=1), logged_in=("anna",))
    engine.call_in("c1", CITY)
    await answered_by(engine)
    engine.call_in("c2", CITY)  # waits: anna is busy
    await engine.ari.wait_for("start_moh")
    engine.ari.caller_hangs_up("c1")
    await engine.settle()
    ended = time.monotonic()
    await engine.ari.wait_for("originate", 2, timeout=2.0)
    assert 0.9 < time.monotonic() - ended < 1.5  # rung when the wrap-up ended, not before
    engine.ari.caller_hangs_up("c2")
    await engine.ended()


async def test_a_breakout_key_leaves_the_queue_for_its_target() -> None:
    engine = Engine(contact_centre(breakout_menu="out"))
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "3"))  # no option: ignored, as app_queue does
    engine.ari.send(dtmf("c1", "5"))
    await engine.ended()
    assert engine.records.summary() == [("event", 1, "join"), ("event", 1, "exit_key"), ("digit", 1, "5"),
                                        ("close", 1, "completed")]
    assert engine.records.records[1]["detail"] == "5"


async def test_a_handover_asked_while_the_phone_leg_hangs_up_is_refused_at_once() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.call_in("c1", CITY)
    await answered_by(engine)
    phone = engine.call("c1")
    engine.ari.live.discard("c1")
    engine.ari.send(stasis_end("c1"))  # hanging up: ChannelDestroyed not there yet
    await engine.ari.wait_for("destroy_bridge")
    assert phone.state is CallState.LEAVING
    started = time.monotonic()
    assert await ask_for_the_talk(phone, "v1") is None
    assert time.monotonic() - started < 0.5  # not the 5 s a silent leg would cost
    engine.ari.send(destroyed("c1"))
    await engine.ended()
    assert engine.records.summary()[-1] == ("close", 1, "completed")


async def test_a_video_caller_rings_an_audio_agent_once_its_video_wait_from_its_join_is_over() -> None:
    engine = Engine(contact_centre(prefer_video_agents=True, video_fallback=1), logged_in=("anna",))
    engine.call_in("c1", CITY, extra=("video=(vp8)",))
    await engine.ari.wait_for("originate", timeout=2.0)
    join, ring = (datetime.fromisoformat(str(r["at"])) for r in engine.records.records[:2])
    assert (engine.records.records[0]["event"], engine.records.records[1]["event"]) == ("join", "ring")
    assert timedelta(seconds=1) <= ring - join < timedelta(seconds=1.5)  # a deadline, not a poll
    [waiter] = engine.queues.waiting["support"]
    assert abs(join.timestamp() - waiter.joined_at) < 1e-6  # dated from the instant its waits count from
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_video_caller_rings_an_audio_agent_even_when_it_wakes_on_the_edge_of_its_video_wait(
        ) -> None:
    """The caller wakes at the end of its video-only wait and asks the queues for agents; when the
    queues' clock reads a hair before that end (a timer fired early by uvloop's millisecond
    rounding, or the instant fell between two reads of the clock), the queues still say video
    only. The caller must then wait for that end again, not sleep on with no deadline at all
    (seen on the lab: the audio agent never rung, 1 run in 18). The queues' clock lags 2 ms here."""
    queues = QueueManager(clock=lambda: time.time() - 0.002)
    engine = Engine(contact_centre(prefer_video_agents=True, video_fallback=0.3), logged_in=("anna",),
                    queues=queues)
    engine.call_in("c1", CITY, extra=("video=(vp8)",))
    await engine.ari.wait_for("originate", timeout=2.0)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_waiting_caller_cut_by_asterisk_shutting_down_failed_and_is_no_abandon() -> None:
    engine = Engine(contact_centre())  # nobody logged in: the caller waits
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    engine.ari.asterisk_shuts_down("c1")
    await engine.ended()
    assert engine.records.summary() == [("event", 1, "join"), ("close", 1, "failed")]
    assert (engine.records.records[-1]["cause"], engine.records.records[-1]["cause_text"]) == (
        None, "cut by Asterisk shutting down")


@pytest.mark.parametrize("heard_first_on", ["caller", "agent"])
async def test_a_talk_cut_by_asterisk_shutting_down_fails_with_the_cut_as_its_cause(
        heard_first_on: str) -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = await answered_by(engine)
    engine.ari.asterisk_shuts_down("c1" if heard_first_on == "caller" else leg)
    await engine.ended()
    assert [s[2] for s in engine.records.summary()] == ["join", "ring", "answer", "complete", "failed"]
    assert engine.records.records[-2]["detail"] == "cut by Asterisk shutting down"  # the talk's end
    assert engine.records.records[-1]["cause_text"] == "cut by Asterisk shutting down"  # the hop's


async def test_a_caller_hanging_up_is_still_abandoned_with_normal_clearing() -> None:
    engine = Engine(contact_centre())
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary() == [("event", 1, "join"), ("event", 1, "abandon"),
                                        ("close", 1, "abandoned")]
    assert engine.records.records[-1]["cause"] == 16


async def test_once_the_database_is_known_away_later_callers_are_served_without_asking_it(
        caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(contact_centre(max_wait=1, overflow=Target("hangup")))
    engine.hops.down = True
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    assert engine.hops.asked == 1  # c1 asked once: refused at once, it is served without retrying
    asked = engine.hops.asked
    engine.call_in("c2", CITY)
    await engine.ari.wait_for("start_moh", 2)
    assert engine.hops.asked == asked  # c2 was served without a query to wait for
    assert "database known away" in caplog.text
    engine.hops.down = False  # the probe finds it back; both calls were served without it
    await engine.ended()
    for leg in ("c1", "c2"):
        assert [r for r in engine.records.summary() if r[1] == leg] == [
            ("late", leg, ""), ("event", leg, "join"), ("event", leg, "overflow"), ("close", leg, "overflow")]
    assert caplog.text.count("database away (") == 1  # one outage, noticed once
async def test_a_caller_flooding_keys_in_a_menu_records_only_the_first_keys_and_is_still_served() -> None:
    prov = contact_centre()
    prov.menus["loop"] = Menu("loop", "hello", timeout=5, options=(MenuOption("#", Target("repeat")),
                                                                    MenuOption("1", Target("hangup"))))
    prov.hotlines["city"] = Hotline("city", entry=Target("menu", "loop"))
    engine = Engine(prov)
    engine.ari.hold_playbacks = True  # each key stops the prompt; the next prompt waits for the next key
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("play")
    for _ in range(KEYS_RECORDED_PER_LEG + 200):  # as fast as the menu takes them
        engine.ari.send(dtmf("c1", "#"))
        await engine.settle(0.001)
    engine.ari.send(dtmf("c1", "1"))  # the menu still answers: this key leaves it
    await engine.ended()
    digits = [r for r in engine.records.records if r["k"] == "digit"]
    assert len(digits) == KEYS_RECORDED_PER_LEG and {r["digit"] for r in digits} == {"#"}
    assert engine.records.summary()[-1] == ("close", 1, "completed")



def looping_menu() -> Provisioning:
    prov = contact_centre()
    prov.menus["loop"] = Menu("loop", "hello", timeout=5, options=(MenuOption("#", Target("repeat")),))
    prov.hotlines["city"] = Hotline("city", entry=Target("menu", "loop"))
    return prov


async def test_keys_typed_ahead_past_the_bound_are_dropped_not_answered_one_by_one(
        caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(looping_menu())
    engine.ari.hold_playbacks = True
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("play")
    await engine.settle()
    for _ in range(500):  # all in before the call reads one
        engine.ari.send(dtmf("c1", "#"))
    await engine.ari.wait_for("stop_playback", KEYS_AHEAD, timeout=5)
    await engine.settle(0.2)  # time for more, had more been kept
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    digits = [r for r in engine.records.records if r["k"] == "digit"]
    assert len(digits) == KEYS_AHEAD and len(engine.ari.of("stop_playback")) == KEYS_AHEAD
    assert engine.records.summary()[-1] == ("close", 1, "abandoned")
    assert caplog.text.count("keys pressed ahead and not read yet") == 1


async def test_a_prompt_refused_because_the_caller_just_hung_up_is_an_abandon_not_a_failure() -> None:
    engine = Engine(looping_menu())
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("answer")
    engine.ari.caller_hangs_up("c1")  # gone before the prompt: ARI answers the play 404
    await engine.ended()
    assert engine.records.summary() == [("close", 1, "abandoned")]


async def test_an_agent_answering_a_ring_whose_call_is_over_is_hung_up_so_the_agent_is_free() -> None:
    engine = Engine(contact_centre(), logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.caller_hangs_up("c1")
    await engine.ended()  # the call is over; its ring was cancelled, but this phone answered anyway
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("hangup", 2)
    await engine.ended()
    assert engine.ari.of("hangup")[-1].args[0] == leg and leg not in engine.ari.live
