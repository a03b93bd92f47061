"""The transferring agent hanging up during an attended transfer hands the customer over, as
Asterisk's own attended transfer does (features.conf atxferdropcall=no), against the recording
fake ARI client: the consulted agent answered (the transfer completes), still ringing (it rings
on, and answering takes the customer; not answering sends the customer back first in line), and a
consult a restarted daemon finds under way gets the row of its end. The lab tests
(tests/e2e/test_transfers_attended.py) prove the same on Asterisk."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from test_transfers import CITY, attended_rows, consult_step, consulting_boris, talking_with_anna, two_queues

from hotline.engine.call_state import CallState
from hotline.engine.queueing.agent_state import AgentStatus
from hotline.engine.transfer import CONSULT_ENDED_BY_RESTART
from hotline.store.transfers import OpenConsult

from support.engine import Engine, destroyed, every_move_allowed  # noqa: F401

FIRST_TALK_PASSED_ON = [("event", 1, "join"), ("event", 1, "ring"), ("event", 1, "answer"),
                        ("transfer", 1, ""), ("event", 1, "complete"), ("event", 1, "transfer"),
                        ("transfer", 1, "")]


async def consult_ringing(engine: Engine) -> tuple[str, str]:
    """anna talks with c1 and consults boris, whose phone rings: anna's leg and boris's."""
    anna_leg = await talking_with_anna(engine)
    engine.ari.send(consult_step("c1", "begin", "agent:boris"))
    boris_leg = str((await engine.ari.wait_for("originate", 2)).args[2])
    await engine.settle()
    assert engine.ari.bridge_members["case-101"] == [anna_leg]  # the customer on hold
    return anna_leg, boris_leg


async def test_the_agent_hanging_up_after_the_consulted_agent_answered_completes_the_transfer() -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris(engine)
    engine.ari.caller_hangs_up(anna_leg)  # anna's phone sends BYE
    await engine.settle()
    assert {"c1", boris_leg} <= set(engine.ari.bridge_members["case-101"])
    assert "c1" in engine.ari.live  # the customer is not hung up
    assert engine.ari.of("stop_moh")[-1].args == ("c1",)
    clock = engine.queues.clock()
    assert engine.queues.agents["anna"].status(clock) is AgentStatus.WRAPUP
    assert engine.queues.agents["boris"].status(clock) is AgentStatus.BUSY
    assert engine.call("c1").state is CallState.TALKING
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert attended_rows(engine) == [
        ("r1", "attended", "agent:boris", "consulting", ""),
        (None, "attended", "agent:boris", "transferred", "anna hung up during the consult")]
    assert engine.records.summary() == [*FIRST_TALK_PASSED_ON, ("event", 1, "join"), ("event", 1, "ring"),
                                        ("event", 1, "answer"), ("event", 1, "complete"),
                                        ("close", 1, "completed")]
    answered = [r for r in engine.records.records if r.get("event") == "answer"]
    assert [r["agent"] for r in answered] == [1, 2]  # anna, then boris


async def test_the_agent_hanging_up_while_the_consulted_agent_rings_lets_its_answer_take_the_customer(
) -> None:
    engine = Engine(two_queues(wrapup=30), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consult_ringing(engine)
    engine.ari.caller_hangs_up(anna_leg)
    await engine.settle()
    assert boris_leg not in [r.args[0] for r in engine.ari.of("hangup")]  # it rings on: not hung up,
    assert len(engine.ari.of("originate")) == 2  # nor dialled again
    assert engine.call("c1").state is CallState.RINGING
    assert engine.queues.agents["anna"].status(engine.queues.clock()) is AgentStatus.WRAPUP
    assert attended_rows(engine)[-1] == (None, "attended", "agent:boris", "transferred",
                                         "anna hung up while agent:boris rang")
    engine.ari.answer_leg(boris_leg, "c1")
    await engine.settle()
    assert sorted(engine.ari.bridge_members["case-101"]) == sorted(["c1", boris_leg])
    assert engine.queues.agents["boris"].status(engine.queues.clock()) is AgentStatus.BUSY
    assert engine.call("c1").state is CallState.TALKING
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert engine.records.summary() == [*FIRST_TALK_PASSED_ON, ("event", 1, "join"), ("event", 1, "ring"),
                                        ("event", 1, "answer"), ("event", 1, "complete"),
                                        ("close", 1, "completed")]
    joined = next(r for r in engine.records.records[7:] if r.get("event") == "join")
    assert joined["queue"] == 2  # support's visit again
    answered = [r for r in engine.records.records if r.get("event") == "answer"]
    assert [r["agent"] for r in answered] == [1, 2]


@pytest.mark.parametrize("no_answer", ["queue", "agent"])
async def test_a_consulted_agent_who_never_answers_after_the_agent_left_sends_the_customer_first_in_line(
        no_answer: str) -> None:
    engine = Engine(two_queues(wrapup=30, transfer_no_answer=no_answer), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consult_ringing(engine)
    engine.call_in("c2", CITY)  # waits: anna talks, boris rings
    await engine.ari.wait_for("start_moh", 2)
    engine.ari.caller_hangs_up(anna_leg)
    await engine.settle()
    assert [w.channel_id for w in engine.queues.waiting["support"]] == ["c1", "c2"]
    engine.ari.live.discard(boris_leg)
    engine.ari.send(destroyed(boris_leg, 19, "No user responding"))  # the ring timeout
    await engine.settle()
    assert engine.call("c1").state is CallState.WAITING
    assert [w.channel_id for w in engine.queues.waiting["support"]] == ["c1", "c2"]  # first in line
    assert len(engine.ari.of("originate")) == 2  # anna, who left, is not rung back
    noanswer = [r for r in engine.records.records if r.get("event") == "ring_noanswer"]
    assert [(r["queue"], r["agent"], r["detail"]) for r in noanswer] == [(2, 2, "cause 19")]
    assert engine.queues.agents["boris"].status(engine.queues.clock()) is AgentStatus.FREE
    for call in ("c1", "c2"):
        engine.ari.caller_hangs_up(call)
    await engine.ended()
    assert [row[3] for row in attended_rows(engine)] == ["consulting", "transferred"]


async def test_the_customer_hanging_up_on_hold_still_ends_everything() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consult_ringing(engine)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert anna_leg not in engine.ari.live and boris_leg not in engine.ari.live
    assert attended_rows(engine)[-1] == (None, "attended", "agent:boris", "cancelled", "caller hung up")


async def test_asterisk_shutting_down_during_a_consult_ends_the_talk_with_no_transfer() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    anna_leg, boris_leg = await consulting_boris(engine)
    engine.ari.asterisk_shuts_down(anna_leg)
    await engine.ended()
    assert "c1" not in engine.ari.live and boris_leg not in engine.ari.live
    assert [row[3] for row in attended_rows(engine)] == ["consulting", "cancelled"]
    assert ("event", 1, "transfer") not in engine.records.summary()


async def test_a_consult_a_restarted_daemon_finds_under_way_is_recorded_cancelled() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    answered = datetime.now(UTC) - timedelta(seconds=60)
    hop = engine.hops.leave_open(71, "c5", queue_id=2, agent_id=1, answered_at=answered, queued_at=answered)
    engine.hops.consults[71] = OpenConsult("agent:boris", "cli", 2, 1)
    engine.ari.left_by_last_daemon("c5")
    engine.ari.left_by_last_daemon("c5-agent-1", "agent,c5", name="PJSIP/anna-00000001")
    engine.ari.left_by_last_daemon("c5-agent-2", "agent,c5", name="PJSIP/boris-00000002")
    engine.ari.bridge_members[f"case-{hop.case_id}"] = ["c5-agent-1", "c5-agent-2"]  # the customer on hold
    await engine.router.reconcile()
    await engine.settle()
    assert engine.ari.bridge_members[f"case-{hop.case_id}"] == ["c5-agent-1", "c5"]
    engine.ari.caller_hangs_up("c5")
    await engine.ended()
    assert attended_rows(engine) == [(None, "attended", "agent:boris", "cancelled", CONSULT_ENDED_BY_RESTART)]
    ended = next(r for r in engine.records.records if r["k"] == "transfer")
    assert (ended["from_queue"], ended["from_agent"]) == (2, 1)
    assert engine.records.summary()[-2:] == [("event", 71, "complete"), ("close", 71, "completed")]


async def test_a_restarted_daemon_finding_no_consult_under_way_records_none() -> None:
    engine = Engine(two_queues(), logged_in=("anna", "boris"))
    answered = datetime.now(UTC) - timedelta(seconds=60)
    hop = engine.hops.leave_open(71, "c5", queue_id=2, agent_id=1, answered_at=answered, queued_at=answered)
    engine.ari.left_by_last_daemon("c5")
    engine.ari.left_by_last_daemon("c5-agent-1", "agent,c5", name="PJSIP/anna-00000001")
    engine.ari.bridge_members[f"case-{hop.case_id}"] = ["c5-agent-1", "c5"]  # talking, not on hold
    await engine.router.reconcile()
    await engine.settle()
    engine.ari.caller_hangs_up("c5")
    await engine.ended()
    assert attended_rows(engine) == []


async def test_the_ring_going_on_after_the_agent_left_ends_at_the_ring_timeout_from_the_consults_start(
) -> None:
    engine = Engine(two_queues(ring_timeout=2), logged_in=("anna", "boris"))  # grace: 0.2 s
    anna_leg, boris_leg = await consult_ringing(engine)
    rang_from = time.monotonic()
    await asyncio.sleep(1.0)
    engine.ari.caller_hangs_up(anna_leg)
    async with asyncio.timeout(3):
        while boris_leg not in [r.args[0] for r in engine.ari.of("hangup")]:  # Asterisk never did
            await asyncio.sleep(0.02)
    assert time.monotonic() - rang_from < 2.9  # 2 s + the grace, not 2 s more after anna left

    def noanswers() -> list[dict[str, object]]:
        return [r for r in engine.records.records if r.get("event") == "ring_noanswer"]
    async with asyncio.timeout(1):  # recorded once the hang-up asked of Asterisk has returned
        while not noanswers():
            await asyncio.sleep(0.02)
    noanswer = noanswers()
    assert [(r["agent"], r["detail"]) for r in noanswer] == [(2, "ring timeout")]
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
