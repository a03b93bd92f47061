"""Blind transfers in the call's state machine, against the recording fake ARI client: the talk
passed to a queue or a hotline inside the same hop, the records it makes in order, and the
refusals that leave the talk untouched. The lab tests (tests/e2e/test_transfer_calls.py) prove the same
on Asterisk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from hotline.asterisk.ari_events import ChannelTransfer, ChannelUserevent, parse_event
from hotline.engine.call_state import CallState
from hotline.engine.queueing.agent_state import AgentStatus
from hotline.engine.queueing.queues import QueueManager
from hotline.engine.transfer import TRANSFER_EVENT, AgentTarget, NumberTarget, transfer_target
from hotline.errors import TransferRefused
from hotline.provision.model import (
    Agent,
    Hotline,
    Menu,
    MenuOption,
    Number,
    Provisioning,
    Queue,
    Target,
    Trunk,
)

from support.engine import APP, NOW, Engine, channel, destroyed, every_move_allowed  # noqa: F401

CITY = "84951234567"


def two_queues(**support: object) -> Provisioning:
    """Hotline `city` into queue `support` (anna); queue `sales` (boris, with video); hotline
    `help` whose entry is a menu."""
    return Provisioning(
        queues={"support": Queue("support", **support), "sales": Queue("sales")},  # type: ignore[arg-type]
        menus={"welcome": Menu("welcome", "hello", options=(MenuOption("1", Target("queue", "sales")),))},
        hotlines={"city": Hotline("city", entry=Target("queue", "support")),
                  "help": Hotline("help", entry=Target("menu", "welcome"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", queues=(("support", 0),)),
                "boris": Agent("boris", "boris", capabilities=frozenset({"audio", "video"}),
                               queues=(("sales", 0),))})


def transfer_asked(channel_id: str, target: str, request: str = "r1") -> ChannelUserevent:
    return ChannelUserevent("ChannelUserevent", APP, NOW, channel=channel(channel_id, state="Up"),
                            eventname=TRANSFER_EVENT,
                            variables={"target": target, "asked_by": "cli", "request": request})


async def talking_with_anna(engine: Engine) -> str:
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    return leg


def transfers(engine: Engine) -> list[tuple[object, ...]]:
    return [(r["target"], r["outcome"], r["detail"]) for r in engine.records.records if r["k"] == "transfer"]


async def test_a_blind_transfer_to_a_queue_ends_the_talk_and_the_caller_waits_there_on_the_same_hop() -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    anna_leg = await talking_with_anna(engine)
    engine.ari.send(transfer_asked("c1", "queue:sales"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    assert engine.ari.of("originate")[1].args[0] == "PJSIP/boris"
    assert anna_leg not in engine.ari.live  # the agent left
    assert "case-101" not in engine.ari.bridge_members  # destroyed: made anew for the next agent
    assert engine.queues.agents["anna"].status(engine.queues.clock()) is AgentStatus.WRAPUP
    assert engine.ari.of("start_moh")[-1].args == ("c1",)  # music at once: the caller is answered
    engine.ari.answer_leg(boris_leg, "c1")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == ["c1", boris_leg]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary() == [
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"),
        ("event", 1, "complete"), ("event", 1, "transfer"), ("transfer", 1, ""),
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"), ("event", 1, "complete"),
        ("close", 1, "completed")]
    complete, moved, noted, joined = engine.records.records[3:7]
    assert complete["detail"] == "transferred to queue:sales" and complete["talk_ms"] is not None
    assert (complete["queue"], moved["queue"], moved["agent"], moved["detail"]) == (2, 2, 1, "queue:sales")
    assert (noted["request"], noted["asked_by"], noted["from_queue"], noted["from_agent"]) \
        == ("r1", "cli", 2, 1)
    assert transfers(engine) == [("queue:sales", "transferred", "")]
    assert joined["queue"] == 1  # sales: counted in that queue's statistics like any caller


async def test_a_video_caller_transferred_to_a_video_agent_gets_a_video_bridge_again() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    engine.call_in("c1", CITY, extra=("video=(vp8)",))
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    engine.ari.send(transfer_asked("c1", "queue:sales"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    engine.ari.answer_leg(boris_leg, "c1")
    await engine.ari.wait_for("add_to_bridge", 2)
    assert [r.args[1] for r in engine.ari.of("create_bridge")] == ["mixing,video_sfu"] * 2
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_transfer_to_a_hotline_follows_its_entry_menu_included() -> None:
    engine = Engine(two_queues(), logged_in=("anna",))
    await talking_with_anna(engine)
    engine.ari.hold_playbacks = True
    engine.ari.send(transfer_asked("c1", "hotline:help"))
    played = await engine.ari.wait_for("play")
    assert played.args == ("c1", "sound:hello")
    assert engine.call("c1").state is CallState.IN_MENU
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert transfers(engine) == [("hotline:help", "transferred", "")]


async def test_a_transfer_to_a_target_gone_from_provisioning_is_refused_and_the_talk_goes_on() -> None:
    engine = Engine(two_queues(wrapup=0), logged_in=("anna",))
    leg = await talking_with_anna(engine)
    engine.ari.send(transfer_asked("c1", "queue:billing"))
    await engine.settle()
    assert engine.call("c1").state is CallState.TALKING
    assert leg in engine.ari.live and engine.ari.bridge_members["case-101"] == ["c1", leg]
    assert transfers(engine) == [("queue:billing", "refused",
                                  "unknown transfer target 'queue:billing': there is no queue 'billing'")]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary()[-2:] == [("event", 1, "complete"), ("close", 1, "completed")]
    assert engine.records.records[-2]["detail"] == "caller hung up"


async def test_a_transfer_asked_of_a_caller_still_waiting_is_refused_and_it_waits_on() -> None:
    engine = Engine(two_queues())  # nobody logged in: the caller waits
    engine.call_in("c1", CITY)
    await engine.ari.wait_for("start_moh")
    engine.ari.send(transfer_asked("c1", "queue:sales", request="r9"))
    await engine.settle()
    assert engine.call("c1").state is CallState.WAITING
    refused = [r for r in engine.records.records if r["k"] == "transfer"]
    assert [(r["request"], r["outcome"], r["detail"]) for r in refused] == [
        ("r9", "refused", "no live talk (the call is waiting)")]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary()[-1] == ("close", 1, "abandoned")


async def test_a_caller_hanging_up_in_the_target_queue_is_that_queues_abandon() -> None:
    engine = Engine(two_queues(), logged_in=("anna",))  # boris logged out: the caller waits in sales
    await talking_with_anna(engine)
    engine.ari.send(transfer_asked("c1", "queue:sales"))
    await engine.ari.wait_for("start_moh")
    await engine.settle()
    assert engine.call("c1").state is CallState.WAITING
    assert engine.call("c1").preferred_agent is None  # not rung back to the agent who passed it on
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary()[-3:] == [("event", 1, "join"), ("event", 1, "abandon"),
                                             ("close", 1, "abandoned")]
    assert engine.records.records[-2]["queue"] == 1


def test_a_transfer_target_is_a_queue_or_a_hotline_named_once() -> None:
    prov = two_queues()
    assert transfer_target(prov, "queue:sales") == Target("queue", "sales")
    assert transfer_target(prov, "help") == Target("hotline", "help")
    assert transfer_target(prov, " sales ") == Target("queue", "sales")
    with pytest.raises(TransferRefused, match="unknown transfer target 'billing'"):
        transfer_target(prov, "billing")
    with pytest.raises(TransferRefused, match="there is no queue 'help'"):
        transfer_target(prov, "queue:help")
    with pytest.raises(TransferRefused, match="hotline:NAME, agent:NAME or number:NUMBER"):
        transfer_target(prov, "menu:welcome")
    both = Provisioning(queues={"x": Queue("x")}, hotlines={"x": Hotline("x", entry=Target("queue", "x"))})
    with pytest.raises(TransferRefused, match="names more than one target: say queue:x or hotline:x"):
        transfer_target(both, "x")


def test_an_agent_target_is_named_by_the_agent_or_by_its_endpoint_as_a_phone_refers_to_it() -> None:
    prov = two_queues()
    prov = Provisioning(queues=prov.queues, hotlines=prov.hotlines, menus=prov.menus,
                        agents={**prov.agents, "vera": Agent("vera", "desk-7")})
    assert transfer_target(prov, "agent:boris") == AgentTarget("boris")
    assert str(transfer_target(prov, "boris")) == "agent:boris"
    assert transfer_target(prov, "desk-7") == AgentTarget("vera")  # a REFER's Refer-To user
    assert transfer_target(prov, "agent:desk-7") == AgentTarget("vera")
    with pytest.raises(TransferRefused, match="there is no agent 'olga'"):
        transfer_target(prov, "agent:olga")
    clash = Provisioning(queues={"anna": Queue("anna")}, agents={"anna": Agent("anna", "anna")})
    with pytest.raises(TransferRefused, match="say queue:anna or agent:anna"):
        transfer_target(clash, "anna")


def test_a_user_event_from_asterisk_parses_with_its_variables() -> None:
    raw = {"type": "ChannelUserevent", "application": "hotline", "timestamp": "2026-12-02T10:00:00.000+0000",
           "eventname": TRANSFER_EVENT, "userevent": {"target": "queue:sales", "asked_by": "cli"},
           "channel": {"id": "c1", "name": "PJSIP/sipp-trunk-1", "state": "Up",
                       "caller": {"number": "100", "name": ""}, "connected": {"number": "", "name": ""},
                       "dialplan": {"context": "hotline-inbound", "exten": "s", "priority": 1},
                       "creationtime": "2026-12-02T10:00:00.000+0000"}}
    event = parse_event(raw)
    assert isinstance(event, ChannelUserevent)
    assert (event.channel.id, event.eventname, dict(event.variables)) == (
        "c1", TRANSFER_EVENT, {"target": "queue:sales", "asked_by": "cli"})


async def test_a_transferred_caller_waiting_when_the_daemon_restarts_is_back_in_line_not_taken_for_a_talk(
) -> None:
    engine = Engine(two_queues(), logged_in=("boris",))
    answered = datetime.now(UTC) - timedelta(seconds=60)  # by anna, in support; the transfer cleared her
    engine.hops.leave_open(70, "c7", queue_id=1, agent_id=None, answered_at=answered,
                           queued_at=answered + timedelta(seconds=50))  # then joined sales
    engine.ari.left_by_last_daemon("c7")
    await engine.router.reconcile()
    await engine.ari.wait_for("originate")
    assert engine.ari.of("originate")[0].args[0] == "PJSIP/boris"  # rung from its place in sales
    assert engine.call("c7").state is CallState.RINGING
    assert engine.records.summary() == [("event", 70, "ring")]  # no second join, no talk resumed
    engine.ari.caller_hangs_up("c7")
    await engine.ended()
    assert engine.records.summary()[-1] == ("close", 70, "abandoned")


def refer(agent_leg: str, destination: str = "", *, protocol_id: str | None = None,
          state: str | None = None) -> ChannelTransfer:
    """The agent's phone sent REFER on its leg, as Asterisk hands it to an ari-only channel."""
    return ChannelTransfer("ChannelTransfer", APP, NOW, source_channel_id=agent_leg,
                           connected_channel_id="c1", destination=destination, protocol_id=protocol_id,
                           state=state)


async def test_agents_are_rung_with_their_refer_handed_to_the_app() -> None:
    engine = Engine(two_queues(), logged_in=("anna",))
    leg = await talking_with_anna(engine)
    assert engine.ari.variables[leg] == {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_refer_from_the_agents_phone_is_done_told_to_the_phone_then_the_agent_leaves() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    leg = await talking_with_anna(engine)
    engine.ari.send(refer(leg, "sales"))
    await engine.ari.wait_for("originate", 2)
    told = engine.ari.names().index("transfer_progress")
    assert engine.ari.requests[told].args == (leg, "channel_answered")
    hung_up = [i for i, r in enumerate(engine.ari.requests) if r.name == "hangup" and r.args[0] == leg]
    assert hung_up and hung_up[0] > told  # the phone hears 200 before its BYE
    engine.ari.send(refer(leg, "sales", state="channel_answered"))  # Asterisk's echo: nothing more
    await engine.settle()
    assert len(engine.ari.of("transfer_progress")) == 1
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    [noted] = [r for r in engine.records.records if r["k"] == "transfer"]
    assert (noted["asked_by"], noted["target"], noted["outcome"], noted["request"]) == (
        "phone", "queue:sales", "transferred", None)


async def test_a_refer_to_nothing_provisioned_is_declined_to_the_phone_and_the_talk_goes_on() -> None:
    engine = Engine(two_queues(), logged_in=("anna",))
    leg = await talking_with_anna(engine)
    engine.ari.send(refer(leg, "5551234"))
    await engine.ari.wait_for("transfer_progress")
    assert engine.ari.of("transfer_progress")[0].args == (leg, "channel_declined")
    assert engine.call("c1").state is CallState.TALKING and leg in engine.ari.live
    engine.ari.send(refer(leg, protocol_id="abc@host"))  # attended: Refer-To with Replaces
    await engine.ari.wait_for("transfer_progress", 2)
    assert engine.ari.of("transfer_progress")[1].args == (leg, "channel_declined")
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert transfers(engine) == [
        ("5551234", "refused", "unknown transfer target '5551234': no queue, hotline or agent has that name"),
        ("(none)", "refused", "no consult call from the agent's phone is under way")]
    assert [r["kind"] for r in engine.records.records if r["k"] == "transfer"] == ["blind", "attended"]


async def test_a_refer_on_a_leg_no_talk_holds_is_declined() -> None:
    engine = Engine(two_queues())
    engine.ari.live.add("stray-agent-leg")
    engine.ari.send(refer("stray-agent-leg", "sales"))
    await engine.ari.wait_for("transfer_progress")
    assert engine.ari.of("transfer_progress")[0].args == ("stray-agent-leg", "channel_declined")


def test_a_refer_from_asterisk_parses_with_its_destination_and_legs() -> None:
    chan = {"id": "c1-agent-1", "name": "PJSIP/anna-1", "state": "Up", "caller": {"number": "", "name": ""},
            "connected": {"number": "", "name": ""}, "creationtime": "2026-12-02T10:00:00.000+0000",
            "dialplan": {"context": "hotline-agents", "exten": "s", "priority": 1}}
    raw = {"type": "ChannelTransfer", "application": "hotline", "timestamp": "2026-12-02T10:00:00.000+0000",
           "refer_to": {"requested_destination": {"destination": "sales"}},
           "referred_by": {"source_channel": chan, "connected_channel": {**chan, "id": "c1"}}}
    event = parse_event(raw)
    assert isinstance(event, ChannelTransfer)
    assert (event.source_channel_id, event.connected_channel_id, event.destination, event.protocol_id,
            event.state) == ("c1-agent-1", "c1", "sales", None, None)


# -- to one agent ------------------------------------------------------------------------------------


async def test_a_blind_transfer_to_an_agent_rings_that_agent_from_the_talks_queue_and_bridges_them(
) -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    anna_leg = await talking_with_anna(engine)
    engine.ari.send(transfer_asked("c1", "agent:boris"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    assert engine.ari.of("originate")[1].args[0] == "PJSIP/boris"  # boris is no member of support
    assert anna_leg not in engine.ari.live
    engine.ari.answer_leg(boris_leg, "c1")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == ["c1", boris_leg]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary() == [
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"),
        ("event", 1, "complete"), ("event", 1, "transfer"), ("transfer", 1, ""),
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"), ("event", 1, "complete"),
        ("close", 1, "completed")]
    joined, rung, answered = engine.records.records[6:9]
    assert {joined["queue"], rung["queue"], answered["queue"]} == {2}  # support's visit again
    assert (rung["agent"], answered["agent"]) == (2, 2)  # boris
    assert transfers(engine) == [("agent:boris", "transferred", "")]


async def test_an_agent_who_does_not_answer_a_transfer_leaves_the_caller_first_in_the_queues_line() -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    await talking_with_anna(engine)
    engine.call_in("c2", CITY)  # waits behind: anna talks, then wraps up
    await engine.ari.wait_for("start_moh")
    engine.ari.send(transfer_asked("c1", "agent:boris"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    engine.ari.caller_hangs_up(boris_leg)  # boris declines
    await engine.settle()
    assert engine.call("c1").state is CallState.WAITING
    assert [w.channel_id for w in engine.queues.waiting["support"]] == ["c1", "c2"]
    assert len(engine.ari.of("originate")) == 2  # anna in wrap-up is not rung back
    noanswer = [r for r in engine.records.records if r.get("event") == "ring_noanswer"]
    assert [(r["queue"], r["agent"]) for r in noanswer] == [(2, 2)]  # support, boris
    for call in ("c1", "c2"):
        engine.ari.caller_hangs_up(call)
    await engine.ended()


async def test_a_queue_that_sends_an_unanswered_transfer_back_rings_the_transferring_agent_in_wrap_up(
) -> None:
    engine = Engine(two_queues(wrapup=30, transfer_no_answer="agent"), logged_in=("anna", "boris"))
    await talking_with_anna(engine)
    engine.ari.send(transfer_asked("c1", "agent:boris"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    engine.ari.caller_hangs_up(boris_leg)
    back = await engine.ari.wait_for("originate", 3)
    assert back.args[0] == "PJSIP/anna"
    engine.ari.answer_leg(str(back.args[2]), "c1")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert engine.call("c1").state is CallState.TALKING
    assert engine.queues.agents["anna"].status(engine.queues.clock()) is AgentStatus.BUSY
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary()[6:] == [
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "ring_noanswer"), ("event", 1, "ring"),
        ("event", 1, "answer"), ("event", 1, "complete"), ("close", 1, "completed")]


@pytest.mark.parametrize(("make", "why"), [
    (lambda q: q.presence({"anna": True}, {}), "agent boris is logged out"),
    (lambda q: q.presence({"anna": True, "boris": True}, {"boris": "lunch"}), "agent boris is paused"),
    (lambda q: q.device("boris", "INUSE"), "agent boris is busy (in a talk)"),
])
async def test_a_transfer_to_an_agent_who_cannot_take_it_is_refused_and_the_talk_goes_on(
        make: Callable[[QueueManager], None], why: str) -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    leg = await talking_with_anna(engine)
    make(engine.queues)
    engine.ari.send(transfer_asked("c1", "agent:boris"))
    await engine.settle()
    assert engine.call("c1").state is CallState.TALKING
    assert engine.ari.bridge_members["case-101"] == ["c1", leg]
    assert transfers(engine) == [("agent:boris", "refused", why)]
    engine.ari.send(transfer_asked("c1", "agent:anna", request="r2"))
    await engine.settle()
    assert transfers(engine)[-1] == ("agent:anna", "refused",
                                     "agent anna is the one talking with the customer")
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


# -- to an outside number ------------------------------------------------------------------------------

CARRIER = Trunk("carrier", "sipp-carrier", "+74951234567", ("+7495", "+7916"))


def with_trunk(prov: Provisioning) -> Provisioning:
    return Provisioning(queues=prov.queues, menus=prov.menus, hotlines=prov.hotlines, numbers=prov.numbers,
                        agents=prov.agents, trunks={"carrier": CARRIER})


def test_a_number_target_is_taken_only_within_a_trunks_prefixes() -> None:
    prov = with_trunk(two_queues())
    assert transfer_target(prov, "number:+79161234567") == NumberTarget("+79161234567")
    assert transfer_target(prov, "8 (916) 123-45-67") == NumberTarget("+79161234567")  # as a phone dials it
    assert str(transfer_target(prov, "89161234567")) == "number:+79161234567"
    with pytest.raises(TransferRefused, match=r"transfer to \+78095551234 refused: no trunk may dial "
                                              r"'\+78095551234': \+78095551234 is outside trunk carrier"):
        transfer_target(prov, "+78095551234")
    with pytest.raises(TransferRefused, match="'number:12' is not a valid telephone number"):
        transfer_target(prov, "number:12")
    with pytest.raises(TransferRefused, match="no trunk is provisioned"):
        transfer_target(two_queues(), "+79161234567")


async def test_a_transfer_to_a_number_dials_it_through_the_trunk_and_bridges_the_far_end_on_a_hop_of_its_own(
) -> None:
    engine = Engine(with_trunk(two_queues(wrapup=30)), logged_in=("anna",))
    anna_leg = await talking_with_anna(engine)
    engine.ari.send(transfer_asked("c1", "+79161234567"))
    dialled = await engine.ari.wait_for("originate", 2)
    assert dialled.args[0] == "PJSIP/+79161234567@sipp-carrier"
    far = str(dialled.args[2])
    assert engine.ari.placed_as[far] == ("+74951234567", "ulaw,alaw")  # the hotline's number, audio
    assert anna_leg not in engine.ari.live
    assert engine.ari.of("start_moh")[-1].args[0] == "c1"  # music while the number rings
    await engine.settle()
    [outbound] = [h for h in engine.hops.opened if h.channel_id == far]
    assert (outbound.case_id, outbound.dialled, outbound.caller_num, outbound.channel_kind) == (
        101, "+79161234567", "+74951234567", "pstn")
    engine.ari.answer_leg(far, "c1")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == ["c1", far]
    engine.ari.caller_hangs_up(far)  # the far end hangs up: the customer is hung up too
    await engine.ended()
    assert "c1" not in engine.ari.live
    assert transfers(engine) == [("number:+79161234567", "transferred", "")]
    closes = [(r["hop"], r["reason"]) for r in engine.records.records if r["k"] == "close"]
    assert closes == [(outbound.id, "completed"), (1, "completed")]


async def test_a_number_that_does_not_answer_sends_the_caller_first_into_the_queues_line() -> None:
    engine = Engine(with_trunk(two_queues(wrapup=30)), logged_in=("anna",))
    await talking_with_anna(engine)
    engine.call_in("c2", CITY)  # waits: anna talks, then wraps up
    await engine.ari.wait_for("start_moh")
    engine.ari.send(transfer_asked("c1", "number:+74951112233"))
    far = str((await engine.ari.wait_for("originate", 2)).args[2])
    await engine.settle()
    engine.ari.send(destroyed(far, 17, "User busy"))
    await engine.settle()
    assert engine.call("c1").state is CallState.WAITING
    assert [w.channel_id for w in engine.queues.waiting["support"]] == ["c1", "c2"]
    [outbound] = [h for h in engine.hops.opened if h.channel_id == far]
    [closed] = [r for r in engine.records.records if r["k"] == "close"]
    assert (closed["hop"], closed["reason"], closed["cause"]) == (outbound.id, "failed", 17)
    for call in ("c1", "c2"):
        engine.ari.caller_hangs_up(call)
    await engine.ended()


async def test_a_number_outside_every_trunk_is_refused_and_the_talk_goes_on() -> None:
    engine = Engine(with_trunk(two_queues()), logged_in=("anna",))
    leg = await talking_with_anna(engine)
    engine.ari.send(transfer_asked("c1", "+78095551234"))
    await engine.settle()
    assert engine.call("c1").state is CallState.TALKING
    assert engine.ari.bridge_members["case-101"] == ["c1", leg]
    assert len(engine.ari.of("originate")) == 1  # anna's only: nothing dialled
    [(target, outcome, why)] = transfers(engine)
    assert (target, outcome) == ("+78095551234", "refused") and "outside trunk carrier" in why
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


# -- attended (consult) ----------------------------------------------------------------------------------


def consult_step(channel_id: str, step: str, target: str = "", request: str = "r1") -> ChannelUserevent:
    return ChannelUserevent("ChannelUserevent", APP, NOW, channel=channel(channel_id, state="Up"),
                            eventname=TRANSFER_EVENT,
                            variables={"target": target, "asked_by": "cli", "request": request,
                                       "kind": "attended", "step": step})


def attended_rows(engine: Engine) -> list[tuple[object, ...]]:
    return [(r["request"], r["kind"], r["target"], r["outcome"], r["detail"])
            for r in engine.records.records if r["k"] == "transfer"]


async def consulting_boris(engine: Engine) -> tuple[str, str]:
    """anna talks with c1, then consults boris, who answers: anna's leg and boris's."""
    anna_leg = await talking_with_anna(engine)
    engine.ari.send(consult_step("c1", "begin", "agent:boris"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    assert engine.ari.of("originate")[1].args[0] == "PJSIP/boris"
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == [anna_leg]  # the customer out, on hold
    assert engine.ari.of("start_moh")[-1].args[0] == "c1"
    engine.ari.answer_leg(boris_leg, "c1")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == [anna_leg, boris_leg]  # anna and boris talk
    return anna_leg, boris_leg


async def test_an_attended_transfer_completed_leaves_the_customer_with_the_consulted_agent() -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris(engine)
    engine.ari.send(consult_step("c1", "complete", request="r2"))
    await engine.ari.wait_for("add_to_bridge", 3)
    await engine.settle()
    assert anna_leg not in engine.ari.live
    assert engine.ari.bridge_members["case-101"] == [boris_leg, "c1"]
    assert engine.ari.of("stop_moh")[-1].args == ("c1",)
    clock = engine.queues.clock()
    assert engine.queues.agents["anna"].status(clock) is AgentStatus.WRAPUP
    assert engine.queues.agents["boris"].status(clock) is AgentStatus.BUSY
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert attended_rows(engine) == [("r1", "attended", "agent:boris", "consulting", ""),
                                     ("r2", "attended", "agent:boris", "transferred", "")]
    assert engine.records.summary() == [
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"), ("transfer", 1, ""),
        ("event", 1, "complete"), ("event", 1, "transfer"), ("transfer", 1, ""),
        ("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"), ("event", 1, "complete"),
        ("close", 1, "completed")]
    answered = [r for r in engine.records.records if r.get("event") == "answer"]
    assert [r["agent"] for r in answered] == [1, 2]  # anna, then boris


async def test_an_attended_transfer_cancelled_takes_the_customer_back_to_the_agent() -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris(engine)
    engine.ari.send(consult_step("c1", "cancel", request="r2"))
    await engine.settle()
    assert boris_leg not in engine.ari.live
    assert engine.ari.bridge_members["case-101"] == [anna_leg, "c1"]
    assert engine.queues.agents["boris"].status(engine.queues.clock()) is AgentStatus.FREE  # no wrap-up
    assert engine.call("c1").state is CallState.TALKING
    assert attended_rows(engine)[-1] == ("r2", "attended", "agent:boris", "cancelled", "cancelled by cli")
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_consulted_agent_who_declines_leaves_the_customer_with_the_agent() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    anna_leg = await talking_with_anna(engine)
    engine.ari.send(consult_step("c1", "begin", "agent:boris"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    await engine.settle()
    engine.ari.send(consult_step("c1", "complete", request="r2"))  # too early: refused
    await engine.settle()
    engine.ari.live.discard(boris_leg)
    engine.ari.send(destroyed(boris_leg, 21, "Call Rejected"))
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == [anna_leg, "c1"]
    assert engine.queues.agents["boris"].status(engine.queues.clock()) is AgentStatus.FREE
    assert attended_rows(engine)[1:] == [
        ("r2", "attended", "agent:boris", "refused", "agent:boris has not answered yet"),
        (None, "attended", "agent:boris", "unanswered", "agent:boris did not answer (cause 21)")]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_the_customer_hanging_up_on_hold_ends_the_consult_too() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris(engine)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert anna_leg not in engine.ari.live and boris_leg not in engine.ari.live
    clock = engine.queues.clock()
    assert engine.queues.agents["boris"].status(clock) is AgentStatus.FREE
    assert attended_rows(engine)[-1] == (None, "attended", "agent:boris", "cancelled", "caller hung up")
    assert engine.records.summary()[-2:] == [("event", 1, "complete"), ("close", 1, "completed")]


@pytest.mark.parametrize(("step", "target", "why"), [
    ("complete", "", "no attended transfer is under way"),
    ("begin", "queue:sales", "an attended transfer goes to an agent (agent:NAME), not to queue:sales"),
    ("begin", "agent:anna", "agent anna is the one talking with the customer"),
    ("later", "", "an attended transfer has no step 'later'"),
])
async def test_attended_steps_that_cannot_be_taken_are_refused_and_the_talk_goes_on(
        step: str, target: str, why: str) -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    leg = await talking_with_anna(engine)
    engine.ari.send(consult_step("c1", step, target))
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == ["c1", leg]
    assert [row[3:] for row in attended_rows(engine)] == [("refused", why)]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_customer_on_hold_in_a_consult_when_the_daemon_restarts_is_back_with_the_agent() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    answered = datetime.now(UTC) - timedelta(seconds=60)
    hop = engine.hops.leave_open(71, "c5", queue_id=2, agent_id=1, answered_at=answered,
                                 queued_at=answered)  # talking with anna in support
    engine.ari.left_by_last_daemon("c5")
    engine.ari.left_by_last_daemon("c5-agent-1", "agent,c5", name="PJSIP/anna-00000001")
    engine.ari.left_by_last_daemon("c5-agent-2", "agent,c5", name="PJSIP/boris-00000002")
    engine.ari.bridge_members[f"case-{hop.case_id}"] = ["c5-agent-1", "c5-agent-2"]  # the customer on hold
    await engine.router.reconcile()
    await engine.settle()
    assert engine.call("c5").state is CallState.TALKING
    assert engine.ari.bridge_members[f"case-{hop.case_id}"] == ["c5-agent-1", "c5"]
    assert "c5-agent-2" not in engine.ari.live and "c5-agent-1" in engine.ari.live
    assert engine.ari.of("stop_moh")[-1].args == ("c5",)
    engine.ari.caller_hangs_up("c5")
    await engine.ended()
    assert engine.records.summary()[-2:] == [("event", 71, "complete"), ("close", 71, "completed")]
