"""Holds in a talk, through the engine (the real Router and queue visit) with a recording fake ARI
client: the agent's leg and the customer's leg each going on hold and off it (ChannelHold and
ChannelUnhold, as Asterisk 22 sends them for a re-INVITE sendonly and back), a hold still open when
the talk ends closed with it, and the ARI events parsed from their JSON."""

from __future__ import annotations

from hotline.asterisk.ari_events import ChannelHold, ChannelUnhold, parse_event
from hotline.provision.model import Agent, Hotline, Number, Provisioning, Queue, Target

from support.engine import APP, NOW, Engine, channel, every_move_allowed, stasis_end  # noqa: F401

CITY = "84951234567"


def centre() -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support", wrapup=0)},
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", queues=(("support", 0),))})


def hold(channel_id: str) -> ChannelHold:
    return ChannelHold("ChannelHold", APP, NOW, channel=channel(channel_id))


def unhold(channel_id: str) -> ChannelUnhold:
    return ChannelUnhold("ChannelUnhold", APP, NOW, channel=channel(channel_id))


async def talking(engine: Engine) -> str:
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    return leg


def holds(engine: Engine) -> list[tuple[object, ...]]:
    return [(r["k"], r["hop"], r["by"]) + ((r["queue"], r["agent"]) if r["k"] == "hold" else ())
            for r in engine.records.records if r["k"] in ("hold", "hold_end")]


async def test_holds_of_the_agent_and_the_customer_are_recorded_each_with_who_held() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    leg = await talking(engine)
    for event in (hold(leg), hold(leg), unhold(leg), unhold(leg), hold("c1"), unhold("c1"),
                  hold("someone-else")):
        engine.ari.send(event)  # a repeated hold or unhold is one; another channel's is not this talk's
    await engine.settle()
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    queue_id, agent_id = engine.ctx.directory.snapshot.ids["queues"]["support"], \
        engine.ctx.directory.snapshot.ids["agents"]["anna"]
    assert holds(engine) == [("hold", 1, "agent", queue_id, agent_id), ("hold_end", 1, "agent"),
                             ("hold", 1, "customer", queue_id, agent_id), ("hold_end", 1, "customer")]
    kinds = [r["k"] for r in engine.records.records]
    assert kinds.index("hold_end") < [i for i, r in enumerate(engine.records.records)
                                      if r.get("event") == "complete"][0]


async def test_a_hold_still_open_when_the_agent_hangs_up_ends_with_the_talk() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    leg = await talking(engine)
    engine.ari.send(hold(leg))
    await engine.settle()
    engine.ari.send(stasis_end(leg))
    await engine.ended()
    assert holds(engine)[1:] == [("hold_end", 1, "agent")]
    kinds = [r.get("event") or r["k"] for r in engine.records.records]
    assert kinds.index("hold_end") == kinds.index("complete") - 1  # closed as the talk ends, first
    end, complete = (engine.records.records[kinds.index(k)] for k in ("hold_end", "complete"))
    assert end["at"] <= complete["at"]


def test_hold_events_parse_from_asterisks_json() -> None:
    raw_channel = {"id": "1733.5", "name": "PJSIP/anna-00000002", "state": "Up",
                   "caller": {"number": "anna", "name": ""}, "connected": {"number": "", "name": ""},
                   "dialplan": {"context": "hotline-agents", "exten": "s", "priority": 1},
                   "creationtime": "2026-12-03T12:00:00.000+0000", "language": "en"}
    held = parse_event({"type": "ChannelHold", "application": APP, "channel": raw_channel,
                        "musicclass": "default", "timestamp": "2026-12-03T12:00:01.000+0000"})
    assert isinstance(held, ChannelHold) and (held.channel.id, held.musicclass) == ("1733.5", "default")
    back = parse_event({"type": "ChannelUnhold", "application": APP, "channel": raw_channel})
    assert isinstance(back, ChannelUnhold) and back.channel.id == "1733.5"
