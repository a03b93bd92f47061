"""Attended transfers from the agent's own phone, in the call's state machine against the
recording fake ARI client: the phone's consult call (a colleague dialled from the agents'
context) begins the consult, its REFER with Replaces naming that call completes it, a REFER naming
anything else is declined with the talk untouched, and the phone hanging up the consult call
cancels it. The lab test (tests/e2e/test_phone_attended_transfer.py) proves the same on Asterisk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_transfers import talking_with_anna, two_queues

from hotline.asterisk.ari_events import ChannelTransfer, parse_event
from hotline.engine.call_state import CallState
from hotline.engine.queueing.agent_state import AgentStatus
from hotline.engine.stasis_entry import parse_entry
from hotline.engine.transfer import transfer_referred

from support.engine import APP, NOW, Engine, channel, destroyed, every_move_allowed, stasis_start  # noqa: F401

TRANSCRIPTS = Path(__file__).parent / "transcripts"
PHONE_LEG = "1733140000.77"  # an id Asterisk gives the agent phone's own INVITE


def dials(engine: Engine, target: str, by: str = "anna", channel_id: str = PHONE_LEG,
          context: str = "hotline-agents") -> str:
    """The agent's phone (endpoint `by`) dials `target`: the agents' context hands it to Stasis."""
    engine.ari.live.add(channel_id)
    engine.ari.send(stasis_start(channel(channel_id, by, name=f"PJSIP/{by}-00000007", context=context),
                                 "consult", target, f"by={by}"))
    return channel_id


def refer_with_replaces(talk_leg: str, replaced: str | None) -> ChannelTransfer:
    """The phone's REFER on the customer's call, its Replaces naming a dialog Asterisk found on
    channel `replaced` (None: a dialog Asterisk does not have)."""
    return ChannelTransfer("ChannelTransfer", APP, NOW, source_channel_id=talk_leg, connected_channel_id="c1",
                           protocol_id="consult-call-id", destination_channel_id=replaced)


def rows(engine: Engine) -> list[tuple[object, ...]]:
    return [(r["asked_by"], r["kind"], r["target"], r["outcome"], r["detail"])
            for r in engine.records.records if r["k"] == "transfer"]


async def consulting_boris_from_the_phone(engine: Engine) -> tuple[str, str]:
    """anna talks with c1; her phone dials boris, who answers: anna's talk leg and boris's."""
    anna_leg = await talking_with_anna(engine)
    dials(engine, "boris")
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    assert engine.ari.of("originate")[1].args[0] == "PJSIP/boris"
    await engine.settle()
    assert engine.ari.of("ring")[-1].args == (PHONE_LEG,)  # the phone hears it ring
    assert engine.ari.bridge_members["case-101"] == [anna_leg]  # the customer out, on hold
    assert engine.ari.of("start_moh")[-1].args[0] == "c1"
    engine.ari.answer_leg(boris_leg, "c1")
    await engine.settle()
    assert engine.ari.of("answer")[-1].args == (PHONE_LEG,)
    assert engine.ari.bridge_members[f"consult-{boris_leg}"] == [PHONE_LEG, boris_leg]
    assert engine.ari.bridge_members["case-101"] == [anna_leg]
    return anna_leg, boris_leg


def test_the_consult_entry_names_the_colleague_and_the_phone_that_dialled() -> None:
    entry = parse_entry(["consult", "boris", "by=anna"], "hotline-agents")
    assert entry is not None and (entry.kind, entry.dialled, entry.by) == ("consult", "boris", "anna")


def test_attended_refers_as_asterisk_22_sends_them_parse_with_the_channel_their_replaces_names() -> None:
    """Recorded on the lab (Asterisk 22.10.1, tests/e2e/test_phone_attended_transfer.py): a REFER
    whose Replaces names the phone's consult call, then one naming a dialog Asterisk does not have.
    Both carry the Refer-To user as `destination` as well as the Call-ID as `protocol_id`: only
    the Call-ID tells an attended REFER from a blind one."""
    found, unknown = (parse_event(json.loads(line)) for line in
                      (TRANSCRIPTS / "ari_attended_refers.jsonl").read_text().splitlines())
    assert isinstance(found, ChannelTransfer) and isinstance(unknown, ChannelTransfer)
    assert (found.source_channel_id, found.destination, found.destination_channel_id) == (
        "1796252766.91-agent-e3f79e9e", "px2-14d888", "1796252768.93")
    asked = transfer_referred(found)
    assert asked is not None
    assert (asked.kind, asked.step, asked.refer_leg, asked.replaces) == (
        "attended", "complete", "1796252766.91-agent-e3f79e9e", "1796252768.93")
    assert unknown.destination == "pb2-989446" and unknown.destination_channel_id is None
    asked = transfer_referred(unknown)
    assert asked is not None and (asked.kind, asked.replaces) == ("attended", "")


async def test_a_refer_with_replaces_naming_the_consult_call_leaves_the_customer_with_the_colleague() -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris_from_the_phone(engine)
    engine.ari.send(refer_with_replaces(anna_leg, PHONE_LEG))
    await engine.ari.wait_for("stop_moh", 1)
    await engine.settle()
    told = engine.ari.names().index("transfer_progress")
    assert engine.ari.requests[told].args == (anna_leg, "channel_answered")  # NOTIFY 200
    hung_up = [i for i, r in enumerate(engine.ari.requests) if r.name == "hangup"]
    assert hung_up and min(hung_up) > told  # the phone hears 200 before its BYEs
    assert anna_leg not in engine.ari.live and PHONE_LEG not in engine.ari.live
    assert engine.ari.bridge_members["case-101"] == [boris_leg, "c1"]
    assert f"consult-{boris_leg}" not in engine.ari.bridge_members
    clock = engine.queues.clock()
    assert engine.queues.agents["anna"].status(clock) is AgentStatus.WRAPUP
    assert engine.queues.agents["boris"].status(clock) is AgentStatus.BUSY
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert rows(engine) == [("phone", "attended", "agent:boris", "consulting", ""),
                            ("phone", "attended", "agent:boris", "transferred", "")]
    assert [r for r in engine.records.summary() if r[0] == "event"][3:] == [
        ("event", 1, "complete"), ("event", 1, "transfer"), ("event", 1, "join"), ("event", 1, "ring"),
        ("event", 1, "answer"), ("event", 1, "complete")]


async def test_a_refer_naming_another_dialog_is_declined_and_hanging_up_the_consult_call_cancels() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris_from_the_phone(engine)
    engine.ari.send(refer_with_replaces(anna_leg, None))
    await engine.ari.wait_for("transfer_progress")
    await engine.settle()
    assert engine.ari.of("transfer_progress")[0].args == (anna_leg, "channel_declined")  # NOTIFY 603
    assert engine.ari.bridge_members[f"consult-{boris_leg}"] == [PHONE_LEG, boris_leg]  # untouched
    assert anna_leg in engine.ari.live and engine.call("c1").state is CallState.TALKING
    engine.ari.live.discard(PHONE_LEG)  # the phone hangs up the consult call: cancelled
    engine.ari.send(destroyed(PHONE_LEG))
    await engine.settle()
    assert boris_leg not in engine.ari.live
    assert engine.ari.bridge_members["case-101"] == [anna_leg, "c1"]
    assert engine.queues.agents["boris"].status(engine.queues.clock()) is AgentStatus.FREE
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert rows(engine) == [
        ("phone", "attended", "agent:boris", "consulting", ""),
        ("phone", "attended", "agent:boris", "refused",
         "its Replaces names a call that is not this talk's consult call"),
        ("phone", "attended", "agent:boris", "cancelled", "the agent's phone hung up the consult call")]


async def test_a_consult_call_from_an_agent_talking_with_nobody_is_refused_forbidden() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    dials(engine, "boris")
    await engine.ari.wait_for("hangup")
    assert engine.ari.of("hangup")[0].args == (PHONE_LEG, "rejected")  # 403
    assert not engine.ari.of("originate")


async def test_a_consult_entry_from_any_other_context_is_refused() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    leg = await talking_with_anna(engine)
    dials(engine, "boris", context="hotline-inbound")
    await engine.ari.wait_for("hangup")
    assert engine.ari.of("hangup")[0].args == (PHONE_LEG, "rejected")
    assert engine.ari.bridge_members["case-101"] == ["c1", leg]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_consult_call_to_a_colleague_who_is_not_free_is_refused_busy_and_the_talk_goes_on() -> None:
    engine = Engine(two_queues(), logged_in=("anna",))  # boris logged out
    leg = await talking_with_anna(engine)
    dials(engine, "boris")
    await engine.ari.wait_for("hangup")
    assert engine.ari.of("hangup")[0].args == (PHONE_LEG, "busy")  # 486
    assert engine.ari.bridge_members["case-101"] == ["c1", leg]
    assert len(engine.ari.of("originate")) == 1  # anna's ring only
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert rows(engine) == [("phone", "attended", "agent:boris", "refused", "agent boris is logged out")]


async def test_a_daemon_restarted_in_a_phone_consult_hangs_up_its_legs_and_gives_the_customer_back() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    answered = datetime.now(UTC) - timedelta(seconds=60)
    hop = engine.hops.leave_open(71, "c5", queue_id=2, agent_id=1, answered_at=answered,
                                 queued_at=answered)  # talking with anna in support
    engine.ari.left_by_last_daemon("c5")
    engine.ari.left_by_last_daemon("c5-agent-1", "agent,c5", name="PJSIP/anna-00000001")
    engine.ari.left_by_last_daemon("c5-agent-2", "agent,c5", name="PJSIP/boris-00000002")
    engine.ari.left_by_last_daemon(PHONE_LEG, "consult,boris,by=anna", name="PJSIP/anna-00000003",
                                   context="hotline-agents")
    engine.ari.bridge_members[f"case-{hop.case_id}"] = ["c5-agent-1"]  # the customer on hold
    engine.ari.bridge_members["consult-c5-agent-2"] = [PHONE_LEG, "c5-agent-2"]
    await engine.router.reconcile()
    await engine.settle()
    assert engine.call("c5").state is CallState.TALKING  # the consult call is no customer adopted
    assert PHONE_LEG not in engine.router.calls
    assert engine.ari.bridge_members[f"case-{hop.case_id}"] == ["c5-agent-1", "c5"]
    assert PHONE_LEG not in engine.ari.live and "c5-agent-2" not in engine.ari.live
    assert "consult-c5-agent-2" not in engine.ari.bridge_members
    engine.ari.caller_hangs_up("c5")
    await engine.ended()


async def test_a_refer_before_the_colleague_answers_is_refused_and_hanging_up_then_cancels() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    anna_leg = await talking_with_anna(engine)
    dials(engine, "boris")
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    await engine.settle()
    engine.ari.send(refer_with_replaces(anna_leg, PHONE_LEG))  # the colleague has not answered
    await engine.ari.wait_for("transfer_progress")
    assert engine.ari.of("transfer_progress")[0].args == (anna_leg, "channel_declined")
    engine.ari.live.discard(PHONE_LEG)
    engine.ari.send(destroyed(PHONE_LEG))
    await engine.settle()
    assert boris_leg not in engine.ari.live  # no longer rung
    assert engine.ari.bridge_members["case-101"] == [anna_leg, "c1"]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert [row[3:] for row in rows(engine)] == [
        ("consulting", ""), ("refused", "agent:boris has not answered yet"),
        ("cancelled", "the agent's phone hung up the consult call")]


async def test_the_colleague_hanging_up_ends_the_phones_consult_call_and_gives_the_customer_back() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris_from_the_phone(engine)
    engine.ari.live.discard(boris_leg)
    engine.ari.send(destroyed(boris_leg))
    await engine.settle()
    assert PHONE_LEG not in engine.ari.live
    assert f"consult-{boris_leg}" not in engine.ari.bridge_members
    assert engine.ari.bridge_members["case-101"] == [anna_leg, "c1"]
    assert engine.call("c1").state is CallState.TALKING
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert rows(engine)[-1][3:] == ("cancelled", "agent:boris hung up")
