"""A waiting caller asking to be called back, through the real engine (router, call, queue visit)
around the recording fake ARI client: the number confirmed, the request stored with the join
time, the call ended 'callback' with a queue 'callback' event, never an abandon."""

from __future__ import annotations

import pytest

from hotline.engine.callback_number import spoken_digits
from hotline.provision.model import Hotline, Menu, MenuOption, Number, Provisioning, Queue, Target, Trunk

from support.engine import Engine, StandInCallbacks, dtmf, every_move_allowed  # noqa: F401

pytestmark = pytest.mark.asyncio

CITY = "84951234567"


def contact_centre(**queue: object) -> Provisioning:
    """One hotline, its queue `support` offering callbacks on key 5 (nobody logged in: the caller
    waits), a breakout menu whose key 7 asks for a callback in it too, a trunk dialling +7916 numbers."""
    return Provisioning(
        queues={"support": Queue("support", **{"callback_key": "5", **queue})},  # type: ignore[arg-type]
        menus={"out": Menu("out", "hello", options=(MenuOption("7", Target("callback", "support")),))},
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        trunks={"carrier": Trunk("carrier", "sipp-carrier", "+74951234567", ("+7916",))})


def engine_with(**queue: object) -> Engine:
    return Engine(contact_centre(**queue), callbacks=StandInCallbacks())


async def confirm(engine: Engine, key: str = "1", count: int = 1) -> None:
    """The caller hears "if correct press 1" (the `count`-th time) and presses `key`."""
    await wait_for_media(engine, "sound:digits/1", count)
    engine.ari.send(dtmf("c1", key))


async def wait_for_media(engine: Engine, media: str, count: int = 1) -> None:
    for n in range(1, 200):
        request = await engine.ari.wait_for("play", n)
        if request.args[1] == media:
            count -= 1
            if count == 0:
                return
    raise AssertionError(f"{media} never played")


def played(engine: Engine) -> list[object]:
    return [r.args[1] for r in engine.ari.of("play")]


async def test_the_callback_key_stores_a_request_with_the_join_time_and_ends_the_call() -> None:
    engine = engine_with()
    engine.call_in("c1", CITY, caller="89165551234")
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "5"))
    await confirm(engine)
    await engine.ended()
    assert engine.callbacks is not None
    [request] = engine.callbacks.requests
    assert (request.case_id, request.hop_id, request.queue_id, request.number) == (101, 1, 1, "+79165551234")
    hop = engine.hops.opened[0]
    join = next(r for r in engine.records.records if r.get("event") == "join")
    assert request.joined_at.isoformat() == join["at"]  # the caller's place in line, not the time they asked
    assert request.expires_at is not None
    assert (request.expires_at - request.due_at).total_seconds() == 4 * 3600
    assert played(engine)[:3] == ["sound:vm-num-i-have", spoken_digits("+79165551234"),
                                  "sound:if-correct-press"]
    assert played(engine)[-2:] == ["sound:auth-thankyou", "sound:vm-goodbye"]
    assert engine.records.summary() == [("event", 1, "join"), ("digit", 1, "5"), ("event", 1, "callback"),
                                        ("close", 1, "callback")]
    assert engine.records.records[2]["detail"] == "callback 1 to +79165551234"
    assert hop.id == 1 and engine.ari.of("hangup")[-1].args[0] == "c1"


async def test_a_caller_who_gives_no_number_waits_on_at_their_place_and_their_hangup_is_an_abandon() -> None:
    engine = engine_with()
    engine.call_in("c1", CITY, caller="89165551234")
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "5"))
    await confirm(engine, key="2")  # not this number: type one
    await wait_for_media(engine, "sound:vm-enter-num-to-call")
    for key in ("8", "0", "0", "#"):  # 800: no trunk dials it
        engine.ari.send(dtmf("c1", key))
    await wait_for_media(engine, "sound:vm-enter-num-to-call", 2)  # refused; the last try
    engine.ari.send(dtmf("c1", "#"))  # nothing typed
    await engine.ari.wait_for("start_moh", 2)  # back in line with music
    assert engine.callbacks is not None and engine.callbacks.requests == []
    assert played(engine).count("sound:pm-invalid-option") == 2
    assert "digits:800" not in played(engine) and "sound:auth-thankyou" not in played(engine)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert [s for s in engine.records.summary() if s[0] != "digit"] == [
        ("event", 1, "join"), ("event", 1, "abandon"), ("close", 1, "abandoned")]


async def test_a_breakout_key_callback_to_this_queue_asks_for_the_callback_keeping_the_place() -> None:
    engine = engine_with(breakout_menu="out")
    engine.call_in("c1", CITY, caller="89165551234")
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "7"))
    await confirm(engine)
    await engine.ended()
    assert engine.callbacks is not None and [r.number for r in engine.callbacks.requests] == ["+79165551234"]
    assert engine.records.summary()[-1] == ("close", 1, "callback")


async def test_the_position_announcement_offers_the_callback_and_its_key_cuts_it_short() -> None:
    engine = engine_with(announce_period=1)
    engine.ari.hold_playbacks = True
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    announcement = await engine.ari.wait_for("play", timeout=3)
    assert str(announcement.args[1]).endswith("sound:vm-tocallback,sound:vm-press,digits:5")
    engine.ari.send(dtmf("c1", "5"))
    await engine.ari.wait_for("stop_playback")
    await wait_for_media(engine, "sound:vm-num-i-have")


async def test_a_request_the_database_cannot_take_promises_nothing_and_the_caller_waits_on() -> None:
    engine = engine_with()
    assert engine.callbacks is not None
    engine.callbacks.down = True
    engine.ari.hold_playbacks = False
    engine.call_in("c1", CITY, caller="89165551234")
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "5"))
    await confirm(engine)
    await wait_for_media(engine, "sound:please-try-call-later")
    await engine.ari.wait_for("start_moh", 2)
    assert "sound:auth-thankyou" not in played(engine)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary()[-1] == ("close", 1, "abandoned")


async def test_a_queue_without_a_callback_key_ignores_the_key() -> None:
    engine = engine_with(callback_key=None)
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "5"))
    await engine.settle()
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert "sound:vm-num-i-have" not in played(engine)
