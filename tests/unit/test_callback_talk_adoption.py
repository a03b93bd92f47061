"""A daemon started after the one that bridged a callback's talk (SIGKILL included) adopts it:
which bridges hold such a talk, what the talk is taken for, and the talk followed to its end
through the real router and queue manager around the recording fake ARI client. The lab test
(tests/e2e/test_callbacks.py) proves the whole path with sipp phones."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hotline.asterisk.ari_events import Bridge
from hotline.engine.callback_talk import Adopt, FoundTalk, adoption, found_talks
from hotline.engine.directory import Snapshot
from hotline.provision.model import Agent, Hotline, Number, Provisioning, Queue, Target
from hotline.store.hops import Hop

from support.engine import Engine, every_move_allowed, ids_of  # noqa: F401

AGENT_LEG = "callback-3-agent-0a1b2c3d"
CUSTOMER_LEG = "callback-3-customer-4e5f6a7b"


def centre() -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support", wrapup=30)},
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", queues=(("support", 0),))})


def snapshot() -> Snapshot:
    return Snapshot(centre(), ids_of(centre()), {})


def hop(**fields: object) -> Hop:
    base: dict[str, object] = dict(
        id=7, case_id=101, seq=2, node="test", channel_id=CUSTOMER_LEG, channel_kind="pstn",
        dialled="+79165551234", dialled_e164="+79165551234", caller_num="+74951234567",
        entered_at=datetime.now(UTC), ended_at=None, end_reason=None, hangup_cause=None, queue_id=1)
    return Hop(**{**base, **fields})  # type: ignore[arg-type]


# -- which bridges hold a callback's talk -----------------------------------------------------------

def test_a_case_bridge_with_one_callbacks_agent_and_customer_legs_is_a_talk() -> None:
    assert found_talks([Bridge("case-101", (CUSTOMER_LEG, AGENT_LEG))]) == [
        FoundTalk("case-101", AGENT_LEG, CUSTOMER_LEG)]


def test_an_agent_alone_hearing_ringback_or_legs_of_two_callbacks_or_a_third_party_are_no_talk() -> None:
    assert found_talks([
        Bridge("case-101", (AGENT_LEG,)),  # the customer not answered yet: placed afresh
        Bridge("case-102", ("callback-4-agent-00000000", "callback-5-customer-00000000")),
        Bridge("case-103", ("callback-6-agent-00000000", "callback-6-customer-00000000", "c9")),
        Bridge("conference-1", ("callback-7-agent-00000000", "callback-7-customer-00000000")),
        Bridge("case-104", ("c1", "c1-agent-00000000")),  # an inbound talk: the call adopts it
    ]) == []


# -- what a found talk is taken for -----------------------------------------------------------------

def test_a_talk_whose_answer_was_written_goes_on_with_the_hops_agent_from_its_answer() -> None:
    answered = datetime.now(UTC) - timedelta(seconds=40)
    decided = adoption(hop(agent_id=1, answered_at=answered), "somebody-else", snapshot(), {})
    assert decided == Adopt("support", 1, "anna", 1, answered.timestamp())


def test_a_talk_bridged_just_before_the_kill_takes_the_agent_whose_phone_the_leg_rings() -> None:
    decided = adoption(hop(), "anna", snapshot(), {"anna": "anna"})
    assert decided == Adopt("support", 1, "anna", 1, None)  # the answer is written on adoption


def test_a_talk_with_no_open_hop_no_queue_or_no_known_agent_is_not_adopted() -> None:
    assert adoption(None, "anna", snapshot(), {"anna": "anna"}) == "no hop for the customer's leg"
    closed = hop(ended_at=datetime.now(UTC))
    assert adoption(closed, "anna", snapshot(), {"anna": "anna"}) == "the customer's hop is closed"
    assert "queue" in str(adoption(hop(queue_id=9), "anna", snapshot(), {"anna": "anna"}))
    assert "'bob'" in str(adoption(hop(), "bob", snapshot(), {"anna": "anna"}))


# -- the talk adopted and followed to its end -------------------------------------------------------

def left_talking(engine: Engine, **fields: object) -> None:
    """What a daemon SIGKILLed during a callback's talk leaves: both legs in the case's bridge,
    the customer leg's hop open."""
    engine.hops.left_open.append(hop(**fields))
    engine.ari.left_by_last_daemon(AGENT_LEG, "agent,callback-3", name="PJSIP/anna-00000001")
    engine.ari.left_by_last_daemon(CUSTOMER_LEG, "callback,3", name="PJSIP/sipp-carrier-00000002")
    engine.ari.bridge_members["case-101"] = [AGENT_LEG, CUSTOMER_LEG]


async def test_an_adopted_callback_talk_goes_on_and_ends_completed_with_talk_time_from_the_answer() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    answered = datetime.now(UTC) - timedelta(seconds=40)
    left_talking(engine, agent_id=1, answered_at=answered)

    await engine.router.reconcile()
    await engine.settle()

    assert engine.ari.of("hangup") == []  # nobody cut
    assert engine.ari.bridge_members["case-101"] == [AGENT_LEG, CUSTOMER_LEG]
    assert engine.records.records == []  # nothing closed as stale
    anna = engine.queues.agents["anna"]
    assert anna.queue == "support"  # busy with the talk: rung for nobody else
    engine.ari.caller_hangs_up(CUSTOMER_LEG)
    await engine.ended()

    assert engine.records.summary() == [("event", 7, "complete"), ("close", 7, "completed")]
    complete, close = engine.records.records
    assert complete["agent"] == 1 and complete["detail"] == "caller hung up"
    assert 40_000 <= int(complete["talk_ms"]) < 45_000  # from the answer, not from the restart
    assert close["cause"] == 16  # the BYE, recorded as Normal Clearing
    assert AGENT_LEG in [r.args[0] for r in engine.ari.of("hangup")] and not engine.ari.live
    assert "case-101" not in engine.ari.bridge_members
    assert anna.queue is None and anna.wrapup_until is not None and anna.wrapup_until > time.time() + 25


async def test_a_callback_talk_bridged_before_its_answer_was_written_records_the_answer_once() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    left_talking(engine)

    await engine.router.reconcile()
    await engine.settle()
    engine.ari.caller_hangs_up(AGENT_LEG)  # the agent hangs up this time
    await engine.ended()

    assert engine.records.summary() == [("talk", 7, ""), ("event", 7, "answer"), ("event", 7, "complete"),
                                        ("close", 7, "completed")]
    assert engine.records.records[2]["detail"] == "agent hung up"
    assert CUSTOMER_LEG in [r.args[0] for r in engine.ari.of("hangup")] and not engine.ari.live


async def test_an_agent_left_alone_in_the_bridge_is_hung_up_as_before() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    engine.ari.left_by_last_daemon(AGENT_LEG, "agent,callback-3", name="PJSIP/anna-00000001")
    engine.ari.bridge_members["case-101"] = [AGENT_LEG]

    await engine.router.reconcile()
    await engine.ended()

    assert [r.args[0] for r in engine.ari.of("hangup")] == [AGENT_LEG]


async def test_a_talk_not_adopted_is_hung_up_and_its_hop_closed_failed_once() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    left_talking(engine, queue_id=9)  # a queue removed since

    await engine.router.reconcile()
    await engine.ended()

    assert sorted(r.args[0] for r in engine.ari.of("hangup")) == sorted([AGENT_LEG, CUSTOMER_LEG])
    assert engine.records.summary() == [("close", 7, "failed")]
