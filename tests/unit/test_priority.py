"""Caller priority: how a line orders its callers (higher priority first, equal priority
longest-waiting first), where a call's priority comes from (its number, its region route, its menu
key: the most specific wins), what it records, and how provisioning reads, checks and writes it.
The lab test (tests/e2e/test_priority_calls.py) proves the same with sipp on Asterisk."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest

from hotline.asterisk.ari_events import ChannelUserevent
from hotline.cli.edits import with_priority
from hotline.engine.call_state import CallState
from hotline.engine.queueing.queues import QueueManager
from hotline.engine.transfer import TRANSFER_EVENT
from hotline.errors import ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import (
    Agent,
    Hotline,
    Menu,
    MenuOption,
    Number,
    Provisioning,
    Queue,
    RegionRoute,
    Target,
)

from support.engine import (  # noqa: F401
    APP,
    NOW,
    Engine,
    StandInSwitches,
    channel,
    dtmf,
    every_move_allowed,
    stasis_start,
)

CITY, VIP, TOLLFREE = "84951234567", "84957654321", "88005553535"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manager(agents: tuple[str, ...] = ("anna",)) -> tuple[QueueManager, Clock]:
    clock = Clock()
    m = QueueManager(clock=clock)
    m.provision(Provisioning(queues={"q": Queue("q", strategy="linear")},
                             agents={a: Agent(a, a, queues=(("q", 0),)) for a in agents}))
    m.presence({a: True for a in agents}, {})
    return m, clock


# -- the line -------------------------------------------------------------------------------------

def test_a_later_caller_with_a_higher_priority_rings_the_one_free_agent_first() -> None:
    m, clock = manager()
    early = m.join("q", "early", priority=0)
    clock.now += 30
    late = m.join("q", "late", priority=5)
    assert m.next_attempt(early) == []
    assert [a.name for a in m.next_attempt(late)] == ["anna"]
    assert m.position(late) == 1 and m.position(early) == 2


def test_equal_priority_is_served_longest_waiting_first() -> None:
    m, clock = manager()
    first = m.join("q", "first", priority=3)
    clock.now += 1
    second = m.join("q", "second", priority=3)
    assert m.next_attempt(second) == []
    assert [a.name for a in m.next_attempt(first)] == ["anna"]


def test_a_line_orders_by_priority_then_join_time() -> None:
    m, clock = manager()
    for name, priority in (("a", 0), ("b", 2), ("c", 0), ("d", 2), ("e", 10)):
        m.join("q", name, priority=priority)
        clock.now += 1
    assert [w.channel_id for w in m.waiting["q"]] == ["e", "b", "d", "a", "c"]


def test_a_caller_restored_after_a_restart_keeps_its_priority_and_join_time() -> None:
    m, clock = manager()
    newcomer = m.join("q", "new", priority=4)
    restored = m.join("q", "old", joined_at=clock.now - 60, priority=4)
    low = m.join("q", "low", joined_at=clock.now - 600, priority=0)
    assert [m.position(w) for w in (restored, newcomer, low)] == [1, 2, 3]


def test_a_higher_priority_joining_does_not_take_an_agent_already_ringing_for_another() -> None:
    m, clock = manager()
    early = m.join("q", "early")
    assert [a.name for a in m.next_attempt(early)] == ["anna"]
    late = m.join("q", "late", priority=9)
    assert m.next_attempt(late) == []  # anna rings for `early`; app_queue does not take her back


# -- the call: where its priority comes from ------------------------------------------------------

def centre(number_priority: int = 0, key_priority: int | None = None,
           route_priority: int | None = None) -> Provisioning:
    """A city hotline straight into `support`, a VIP number whose menu's key 1 leads there too, and
    an 8-800 hotline whose region route for +7916 leads there."""
    return Provisioning(
        queues={"support": Queue("support")},
        menus={"vip": Menu("vip", "hello", options=(
            MenuOption("1", Target("queue", "support"), priority=key_priority),
            MenuOption("2", Target("queue", "support"))))},
        hotlines={"city": Hotline("city", entry=Target("queue", "support")),
                  "vip": Hotline("vip", entry=Target("menu", "vip")),
                  "federal": Hotline("federal", entry=Target("queue", "support"), regions=(
                      RegionRoute("prefix", "+7916", "support", route_priority),))},
        numbers={"+74951234567": Number("+74951234567", "city", priority=number_priority),
                 "+74957654321": Number("+74957654321", "vip", priority=number_priority),
                 "+78005553535": Number("+78005553535", "federal", kind="tollfree", lines=None,
                                        priority=number_priority)},
        agents={"anna": Agent("anna", "anna", queues=(("support", 0),))})


async def joined_with(engine: Engine, channel_id: str) -> int | None:
    await engine.ari.wait_for("start_moh")
    join = next(r for r in engine.records.records if r.get("event") == "join")
    priority = join["priority"]
    assert priority is None or isinstance(priority, int)
    engine.ari.caller_hangs_up(channel_id)
    await engine.ended()
    return priority


async def test_a_caller_joins_with_its_numbers_priority_recorded_on_the_join() -> None:
    engine = Engine(centre(number_priority=3))
    engine.call_in("c1", CITY)
    assert await joined_with(engine, "c1") == 3


async def test_a_menu_keys_priority_wins_over_the_numbers() -> None:
    engine = Engine(centre(number_priority=3, key_priority=8))
    engine.call_in("c1", VIP)
    await engine.ari.wait_for("play")
    engine.ari.send(dtmf("c1", "1"))
    assert await joined_with(engine, "c1") == 8


async def test_a_menu_key_without_a_priority_keeps_the_numbers() -> None:
    engine = Engine(centre(number_priority=3, key_priority=8))
    engine.call_in("c1", VIP)
    await engine.ari.wait_for("play")
    engine.ari.send(dtmf("c1", "2"))
    assert await joined_with(engine, "c1") == 3


async def test_a_region_routes_priority_wins_over_the_numbers() -> None:
    engine = Engine(centre(number_priority=1, route_priority=6))
    engine.call_in("c1", TOLLFREE, caller="+79161234567")
    assert await joined_with(engine, "c1") == 6


async def test_a_caller_outside_the_region_routes_keeps_the_numbers_priority() -> None:
    engine = Engine(centre(number_priority=1, route_priority=6))
    engine.call_in("c1", TOLLFREE, caller="+74951112233")
    assert await joined_with(engine, "c1") == 1


async def test_the_later_caller_with_the_higher_priority_is_rung_when_the_agent_frees() -> None:
    engine = Engine(centre(key_priority=7), logged_in=("anna",))
    engine.queues.device("anna", "INUSE")  # on a call of her own
    engine.call_in("plain", CITY)
    await engine.ari.wait_for("start_moh")
    engine.call_in("vip", VIP)
    await engine.ari.wait_for("play")
    engine.ari.send(dtmf("vip", "1"))
    await engine.ari.wait_for("start_moh", 2)
    assert engine.call("vip").state is CallState.WAITING and engine.call("plain").state is CallState.WAITING
    engine.queues.device("anna", "NOT_INUSE")
    ring = await engine.ari.wait_for("originate")
    assert str(ring.args[2]).startswith("vip-agent-")  # the leg rung for the VIP caller
    assert [w.channel_id for w in engine.queues.waiting["support"]] == ["vip", "plain"]
    engine.ari.caller_hangs_up("vip")
    engine.ari.caller_hangs_up("plain")
    await engine.ended()


async def test_a_video_leg_entering_its_hotline_keeps_the_priority_of_the_leg_it_replaces() -> None:
    switches = StandInSwitches("ab12")
    engine = Engine(centre(number_priority=6), logged_in=("anna",), switches=switches)
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    # The phone leg's hop as the database has it after its join: priority 6.
    switches.replaces(replace(engine.hops.opened[0], priority=6), queue_id=1, agent_id=1)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    engine.ari.live.add("v1")
    engine.ari.headers["v1"] = {"X-Hotline-Customer": "c0ffee", "X-Hotline-Switch": "ab12"}
    engine.ari.send(stasis_start(channel("v1", caller="", name="PJSIP/hotline-web-v1", context="hotline-web"),
                                 "switch", "switch", "video=(vp8)"))
    await engine.ari.wait_for("originate", 2)
    join = next(r for r in engine.records.records if r.get("event") == "join" and r["hop"] == 900)
    assert join["priority"] == 6
    engine.ari.caller_hangs_up("v1")
    await engine.ended()


async def test_a_breakout_key_with_a_priority_takes_the_caller_on_with_it() -> None:
    prov = centre(number_priority=1, key_priority=8)
    prov.queues["lobby"] = Queue("lobby", breakout_menu="vip")
    prov.hotlines["city"] = Hotline("city", entry=Target("queue", "lobby"))
    engine = Engine(prov)
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    engine.ari.send(dtmf("c1", "1"))  # the vip menu's key 1: on to support, priority 8
    await engine.ari.wait_for("start_moh", 2)
    joins = [(r["queue"], r["priority"]) for r in engine.records.records if r.get("event") == "join"]
    assert joins == [(1, 1), (2, 8)]  # lobby (id 1) with the number's, support (id 2) with the key's
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_transferred_caller_waits_in_the_target_queue_with_its_priority() -> None:
    prov = centre(number_priority=4)
    prov.queues["sales"] = Queue("sales")
    engine = Engine(prov, logged_in=("anna",))
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    engine.ari.send(ChannelUserevent("ChannelUserevent", APP, NOW, channel=channel("c1", state="Up"),
                                     eventname=TRANSFER_EVENT,
                                     variables={"target": "queue:sales", "asked_by": "cli", "request": "r1"}))
    await engine.ari.wait_for("start_moh")  # waiting in sales: nobody is a member
    assert [(r["queue"], r["priority"]) for r in engine.records.records if r.get("event") == "join"] == [
        (2, 4), (1, 4)]  # support (id 2), then sales (id 1), both with the number's priority
    assert engine.queues.waiting["sales"][0].priority == 4
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


# -- provisioning ---------------------------------------------------------------------------------

def test_a_number_region_route_and_menu_key_read_their_priorities() -> None:
    prov = parse.provisioning(tomllib.loads("""
        [numbers."8 (495) 123-45-67"]
        hotline = "city"
        priority = 4
        [hotlines.federal]
        entry = "queue:support"
        regions = { "+7916" = { queue = "support", priority = 7 }, "+7913" = "siberia" }
        [menus.main]
        prompt = "hello"
        options = { "1" = { action = "queue:support", priority = 9 }, "2" = "queue:support" }
    """))
    assert prov.numbers["+74951234567"].priority == 4
    routes = {r.match: r for r in prov.hotlines["federal"].regions}
    assert (routes["+7916"].queue, routes["+7916"].priority) == ("support", 7)
    assert routes["+7913"].priority is None
    options = {o.digit: o for o in prov.menus["main"].options}
    assert options["1"].priority == 9 and options["2"].priority is None


def test_a_number_without_a_priority_has_priority_zero() -> None:
    assert parse.number("8 (495) 123-45-67", {"hotline": "city"}).priority == 0


@pytest.mark.parametrize("value", [11, -1, "high", 2.5, True])
def test_a_priority_outside_0_to_10_is_one_clear_error(value: object) -> None:
    with pytest.raises(ProvisionError) as err:
        parse.number("8 (495) 123-45-67", {"hotline": "city", "priority": value})
    assert str(err.value).startswith("numbers.8 (495) 123-45-67.priority: ")
    assert "from 0 to 10" in str(err.value)


def test_a_region_routes_priority_outside_the_range_names_the_route() -> None:
    with pytest.raises(ProvisionError, match=r"^hotlines\.federal\.regions\.\+7916\.priority: 12 must be"):
        parse.hotline("federal", {"entry": "queue:support",
                                  "regions": {"+7916": {"queue": "support", "priority": 12}}})


def test_a_region_route_table_needs_its_queue() -> None:
    with pytest.raises(ProvisionError, match=r"regions\.\+7916\.queue: None is required"):
        parse.hotline("federal", {"entry": "queue:support", "regions": {"+7916": {"priority": 2}}})


@pytest.mark.parametrize("action", ["hangup", "repeat", "callback:support"])
def test_a_priority_on_a_key_that_leads_nowhere_to_wait_is_refused(action: str) -> None:
    with pytest.raises(ProvisionError, match=r"^menus\.main\.options\.1\.priority: 5 is set on a key"):
        parse.option("menus.main.options", "1", {"action": action, "priority": 5})


def test_export_writes_priorities_back_as_the_file_gives_them() -> None:
    prov = Provisioning(
        queues={"support": Queue("support")},
        menus={"main": Menu("main", "hello", options=(MenuOption("1", Target("queue", "support"), priority=9),
                                                       MenuOption("2", Target("queue", "support"))))},
        hotlines={"federal": Hotline("federal", entry=Target("menu", "main"), regions=(
            RegionRoute("prefix", "+7913", "support"), RegionRoute("prefix", "+7916", "support", 7)))},
        numbers={"+74951234567": Number("+74951234567", "federal", priority=4)})
    text = export.to_toml(prov)
    assert parse.provisioning(tomllib.loads(text)) == prov
    doc = tomllib.loads(text)
    assert doc["menus"]["main"]["options"] == {"1": {"action": "queue:support", "priority": 9},
                                               "2": "queue:support"}
    assert doc["hotlines"]["federal"]["regions"] == {"+7913": "support",
                                                     "+7916": {"queue": "support", "priority": 7}}


def test_the_cli_gives_a_route_or_key_its_priority_after_a_comma() -> None:
    assert with_priority({"+7916": "support,priority=7", "+7913": "siberia"}, "queue") == {
        "+7916": {"queue": "support", "priority": "7"}, "+7913": "siberia"}
    with pytest.raises(ProvisionError, match="only 'priority=N' may follow"):
        with_priority({"1": "queue:support,penalty=2"}, "action")


async def test_a_caller_whose_agent_dropped_the_call_is_back_in_line_with_its_priority() -> None:
    prov = centre(key_priority=7)
    prov.agents["boris"] = Agent("boris", "boris", queues=(("support", 0),))
    prov.queues["support"] = Queue("support", strategy="linear")
    engine = Engine(prov, logged_in=("anna", "boris"))
    engine.call_in("vip", VIP)
    await engine.ari.wait_for("play")
    engine.ari.send(dtmf("vip", "1"))
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "vip")
    engine.ari.live.discard(leg)  # anna's phone hangs up the moment it answered
    await engine.ari.wait_for("originate", 2)  # boris rung: the caller is back in line
    assert [(w.channel_id, w.priority) for w in engine.queues.waiting["support"]] == [("vip", 7)]
    engine.ari.caller_hangs_up("vip")
    await engine.ended()


async def test_a_video_leg_taking_a_waiting_phone_legs_place_keeps_its_priority() -> None:
    switches = StandInSwitches("ab12")
    engine = Engine(centre(number_priority=4), switches=switches)
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    switches.replaces(replace(engine.hops.opened[0], priority=4), queue_id=1, agent_id=None)
    engine.ari.live.add("v1")
    engine.ari.headers["v1"] = {"X-Hotline-Customer": "c0ffee", "X-Hotline-Switch": "ab12"}
    engine.ari.send(stasis_start(channel("v1", caller="", name="PJSIP/hotline-web-v1", context="hotline-web"),
                                 "switch", "switch", "video=(vp8)"))
    await engine.ari.wait_for("hangup")  # the phone leg, its place given
    await engine.settle()
    assert [(w.channel_id, w.priority) for w in engine.queues.waiting["support"]] == [("v1", 4)]
    assert engine.call("v1").priority == 4
    engine.ari.caller_hangs_up("v1")
    await engine.ended()


async def test_a_menu_video_key_with_a_priority_puts_the_caller_in_its_queue_with_it() -> None:
    prov = centre(number_priority=1)
    key = MenuOption("3", Target("video", "support"), priority=6)
    prov.menus["vip"] = Menu("vip", "hello", options=(key,))
    engine = Engine(prov)
    engine.call_in("c1", VIP)
    await engine.ari.wait_for("play")
    engine.ari.send(dtmf("c1", "3"))
    assert await joined_with(engine, "c1") == 6
    assert len(engine.video_links) == 1  # and the link was asked for
