"""A callback asked outside any queue's line, through the real engine around the recording fake
ARI client: a menu key `callback:QUEUE`, a breakout key naming another queue, and a closed
hotline's `callback:QUEUE` (its expiry counted from the next opening)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.provision.model import (
    Holiday,
    Hotline,
    Menu,
    MenuOption,
    Number,
    OpeningHours,
    Provisioning,
    Queue,
    Target,
    Trunk,
)

from support.engine import Engine, StandInCallbacks, dtmf, every_move_allowed  # noqa: F401

pytestmark = pytest.mark.asyncio

CITY = "84951234567"
MOSCOW = ZoneInfo("Europe/Moscow")


def contact_centre(hotline: Hotline) -> Provisioning:
    """Queues `sales` (id 1) and `support` (id 2, breakout menu `out`), a menu `main` whose key 3
    asks for a callback in sales, a trunk dialling +7916 numbers."""
    return Provisioning(
        queues={"sales": Queue("sales"), "support": Queue("support", breakout_menu="out")},
        menus={"main": Menu("main", "hello", options=(MenuOption("3", Target("callback", "sales")),
                                                      MenuOption("1", Target("queue", "support")))),
               "out": Menu("out", "hello", options=(MenuOption("7", Target("callback", "sales")),))},
        hotlines={"city": hotline},
        numbers={"+74951234567": Number("+74951234567", "city")},
        trunks={"carrier": Trunk("carrier", "sipp-carrier", "+74951234567", ("+7916",))})


def engine_with(hotline: Hotline) -> Engine:
    return Engine(contact_centre(hotline), callbacks=StandInCallbacks())


def closed_today(closed: Target) -> Hotline:
    """Open 09:00-18:00 every day, but today (Moscow) is a holiday."""
    return Hotline("city", entry=Target("menu", "main"), closed=closed, closed_prompt="closed",
                   hours=tuple(OpeningHours(d, time(9), time(18)) for d in range(1, 8)),
                   holidays=(Holiday(datetime.now(MOSCOW).date()),))


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


async def test_a_menu_key_callback_queue_stores_a_request_joining_that_queue_now() -> None:
    engine = engine_with(Hotline("city", entry=Target("menu", "main")))
    engine.call_in("c1", CITY, caller="89165551234")
    await wait_for_media(engine, "sound:hello")
    before = datetime.now(UTC)
    engine.ari.send(dtmf("c1", "3"))
    await wait_for_media(engine, "sound:digits/1")  # "if correct press 1"
    engine.ari.send(dtmf("c1", "1"))
    await engine.ended()
    assert engine.callbacks is not None
    [request] = engine.callbacks.requests
    assert (request.queue_id, request.case_id, request.hop_id, request.number) == (1, 101, 1, "+79165551234")
    assert before <= request.joined_at <= request.due_at <= datetime.now(UTC)
    assert played(engine)[-2:] == ["sound:auth-thankyou", "sound:vm-goodbye"]
    assert engine.records.summary() == [("digit", 1, "3"), ("event", 1, "join"), ("event", 1, "callback"),
                                        ("close", 1, "callback")]
    join, asked = engine.records.records[1], engine.records.records[2]
    assert (join["queue"], join["position"], asked["queue"], asked["wait_ms"]) == (1, 1, 1, 0)
    assert join["at"] == request.joined_at.isoformat()
    assert asked["detail"] == "callback 1 to +79165551234"
    assert engine.ari.of("hangup")[-1].args[0] == "c1"


async def test_a_menu_caller_who_gives_no_number_hears_goodbye_and_nothing_is_stored() -> None:
    engine = engine_with(Hotline("city", entry=Target("menu", "main")))
    engine.call_in("c1", "84951234567", caller="anonymous")  # no caller id to offer: type one
    await wait_for_media(engine, "sound:hello")
    engine.ari.send(dtmf("c1", "3"))
    for attempt in (1, 2, 3):
        await wait_for_media(engine, "sound:vm-enter-num-to-call", attempt)
        engine.ari.send(dtmf("c1", "#"))  # nothing typed
    await engine.ended()
    assert engine.callbacks is not None and engine.callbacks.requests == []
    assert [s for s in engine.records.summary() if s[0] != "digit"] == [("close", 1, "completed")]


async def test_a_breakout_key_naming_another_queue_leaves_the_line_and_asks_there() -> None:
    engine = engine_with(Hotline("city", entry=Target("queue", "support")))
    engine.call_in("c1", CITY, caller="89165551234")
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "7"))
    await wait_for_media(engine, "sound:digits/1")
    engine.ari.send(dtmf("c1", "1"))
    await engine.ended()
    assert engine.callbacks is not None
    [request] = engine.callbacks.requests
    support_join = engine.records.records[0]
    assert request.queue_id == 1 and request.joined_at.isoformat() > support_join["at"]  # sales, from now
    records = zip(engine.records.records, engine.records.summary(), strict=True)
    assert [(r.get("queue"), s) for r, s in records] == [
        (2, ("event", 1, "join")), (2, ("event", 1, "exit_key")), (None, ("digit", 1, "7")),
        (1, ("event", 1, "join")), (1, ("event", 1, "callback")), (None, ("close", 1, "callback"))]


async def test_a_closed_hotline_says_its_prompt_then_takes_a_request_expiring_after_its_opening() -> None:
    engine = engine_with(closed_today(Target("callback", "sales")))
    engine.call_in("c1", CITY, caller="89165551234")
    await wait_for_media(engine, "sound:digits/1")
    engine.ari.send(dtmf("c1", "1"))
    await engine.ended()
    assert played(engine)[:2] == ["sound:closed", "sound:vm-num-i-have"]
    assert engine.callbacks is not None
    [request] = engine.callbacks.requests
    tomorrow = datetime.now(MOSCOW).date() + timedelta(days=1)
    assert request.joined_at <= request.due_at <= datetime.now(UTC)  # the placer holds it till the opening
    opening = datetime.combine(tomorrow, time(9), MOSCOW)
    assert request.expires_at == opening + timedelta(hours=4)  # the queue's expiry, from the opening
    assert engine.records.summary() == [
        ("event", 1, "join"), ("event", 1, "callback"), ("close", 1, "callback")]


async def test_a_closed_hotline_caller_who_gives_no_number_ends_closed() -> None:
    engine = engine_with(closed_today(Target("callback", "sales")))
    engine.call_in("c1", CITY, caller="89165551234")
    await wait_for_media(engine, "sound:digits/1")
    engine.ari.send(dtmf("c1", "2"))  # not this number
    for attempt in (1, 2):
        await wait_for_media(engine, "sound:vm-enter-num-to-call", attempt)
        engine.ari.send(dtmf("c1", "#"))  # nothing typed
    await engine.ended()
    assert engine.callbacks is not None and engine.callbacks.requests == []
    assert [s for s in engine.records.summary() if s[0] != "digit"] == [("close", 1, "closed")]


async def test_the_closed_action_hangup_asks_nothing() -> None:
    engine = engine_with(closed_today(Target("hangup")))
    engine.call_in("c1", CITY, caller="89165551234")
    await engine.ended()
    assert played(engine) == ["sound:closed"]
    assert engine.records.summary() == [("close", 1, "closed")]


async def test_a_bare_callback_key_stored_before_it_named_a_queue_still_only_hangs_up() -> None:
    prov = contact_centre(Hotline("city", entry=Target("menu", "main")))
    main = dataclasses.replace(prov.menus["main"], options=(MenuOption("3", Target("callback")),))
    stored = dataclasses.replace(prov, menus={**prov.menus, "main": main})
    engine = Engine(stored, callbacks=StandInCallbacks())
    engine.call_in("c1", CITY, caller="89165551234")
    await wait_for_media(engine, "sound:hello")
    engine.ari.send(dtmf("c1", "3"))
    await engine.ended()
    assert engine.callbacks is not None and engine.callbacks.requests == []
    assert "sound:vm-num-i-have" not in played(engine)
    assert engine.records.summary() == [("digit", 1, "3"), ("close", 1, "completed")]
