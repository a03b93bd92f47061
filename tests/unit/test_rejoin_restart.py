"""A talk waiting for a dropped customer's page (web_rejoin_grace) across a daemon restart: the
note the wait leaves on the agent's leg, what a restarted daemon takes it for, and the rest of the
wait through the real router, calls and queue manager around the recording fake ARI client. The
browser lab test (tests/browser/test_web_call_lab.py) proves the whole path with Chromium."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hotline.engine.call_state import CallState
from hotline.engine.directory import Snapshot
from hotline.engine.rejoin import NOTE_VARIABLE, DropNote, Waiting, adoption
from hotline.provision.model import Agent, Hotline, Number, Provisioning, Queue, Target
from hotline.store.hops import Hop

from support.engine import Engine, channel, every_move_allowed, ids_of, stasis_start  # noqa: F401

CUSTOMER = "c0ffee"
AGENT_LEG = "w1-agent-1"


def centre() -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support", wrapup=30)},
        hotlines={"video": Hotline("video", entry=Target("queue", "support"))},
        numbers={"video-desk": Number("video-desk", "video", "video", 10)},
        agents={"anna": Agent("anna", "anna", capabilities=frozenset({"audio", "video"}),
                              queues=(("support", 0),))})


def snapshot() -> Snapshot:
    return Snapshot(centre(), ids_of(centre()), {})


def web_call(engine: Engine, channel_id: str) -> None:
    """The customer page calls (its browser's own id in a header)."""
    engine.ari.live.add(channel_id)
    engine.ari.headers[channel_id] = {"X-Hotline-Customer": CUSTOMER}
    engine.ari.send(stasis_start(channel(channel_id, caller="", name=f"PJSIP/hotline-web-{channel_id}",
                                         context="hotline-web"), "inbound", "video-desk"))


# -- the note ---------------------------------------------------------------------------------------

def test_the_note_reads_back_what_was_written_and_anything_else_is_no_note() -> None:
    note = DropNote("1733150000.42", 1733150012.5, CUSTOMER)
    assert DropNote.parse(note.text()) == note
    assert [DropNote.parse(t) for t in ("", "a;b", "x;not-a-time;c0ffee", ";1.0;c0ffee")] == [None] * 4


async def test_a_web_leg_that_drops_notes_the_drop_on_the_agents_leg() -> None:
    engine = Engine(centre(), logged_in=("anna",), rejoin_grace_s=60)
    web_call(engine, "w1")
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "w1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    dropped = time.time()
    engine.ari.caller_hangs_up("w1")  # no Hang up button: a drop
    await engine.ari.wait_for("set_channel_variable")
    await engine.settle()

    note = DropNote.parse(engine.ari.variables[leg][NOTE_VARIABLE])
    assert note is not None and (note.dropped_channel, note.customer) == ("w1", CUSTOMER)
    assert abs(note.dropped_at - dropped) < 1
    assert engine.router.dropped_for_agent("anna")


# -- what a restarted daemon takes the note for -----------------------------------------------------

def talk_hop(**fields: object) -> Hop:
    base: dict[str, object] = dict(
        id=60, case_id=160, seq=1, node="test", channel_id="w1", channel_kind="webrtc", dialled="video-desk",
        dialled_e164=None, caller_num="", entered_at=datetime.now(UTC), ended_at=None, end_reason=None,
        hangup_cause=None, queue_id=1, agent_id=1, answered_at=datetime.now(UTC) - timedelta(seconds=30))
    return Hop(**{**base, **fields})  # type: ignore[arg-type]


def test_the_wait_goes_on_until_the_drop_plus_the_grace_not_the_restart_plus_the_grace() -> None:
    note = DropNote("w1", 1000.0, CUSTOMER)
    hop = talk_hop()
    assert adoption(note, hop, {AGENT_LEG}, snapshot(), 60) == Waiting(
        "support", "anna", 1, hop.answered_at.timestamp() if hop.answered_at else 0, 1060.0)


def test_no_wait_when_the_dropped_leg_is_up_its_hop_closed_the_grace_off_or_no_talk_recorded() -> None:
    note = DropNote("w1", 1000.0, CUSTOMER)
    assert adoption(note, talk_hop(), {"w1", AGENT_LEG}, snapshot(), 60) == "the dropped leg is still up"
    closed = talk_hop(ended_at=datetime.now(UTC))  # taken over (switched) before the restart
    assert adoption(note, closed, set(), snapshot(), 60) == "the dropped leg's hop is closed"
    assert adoption(note, None, set(), snapshot(), 60) == "the dropped leg's hop is closed"
    assert adoption(note, talk_hop(), set(), snapshot(), 0) == "web_rejoin_grace is 0"
    assert "no talk" in str(adoption(note, talk_hop(answered_at=None), set(), snapshot(), 60))


# -- the rest of the wait under the restarted daemon ------------------------------------------------

def left_waiting(engine: Engine, dropped_s_ago: float) -> None:
    """What a daemon SIGKILLed during the wait leaves: the agent's leg alone in the case's bridge,
    with its note; the dropped leg's hop open."""
    engine.hops.left_open.append(talk_hop())
    engine.ari.left_by_last_daemon(AGENT_LEG, "agent,w1", name="PJSIP/anna-00000001")
    engine.ari.variables[AGENT_LEG] = {
        NOTE_VARIABLE: DropNote("w1", time.time() - dropped_s_ago, CUSTOMER).text()}
    engine.ari.bridge_members["case-160"] = [AGENT_LEG]


async def test_the_same_page_calling_after_the_restart_takes_the_talk_over() -> None:
    engine = Engine(centre(), logged_in=("anna",), rejoin_grace_s=60)
    left_waiting(engine, dropped_s_ago=10)

    await engine.router.reconcile()
    await engine.settle()
    assert engine.ari.of("hangup") == [] and engine.records.records == []  # the agent waits on
    assert engine.router.dropped_for_agent("anna")  # the agent page's notice
    assert engine.queues.agents["anna"].queue == "support"  # rung for nobody else

    web_call(engine, "w2")  # the page calls again
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    assert engine.call("w2").state is CallState.TALKING
    assert engine.ari.bridge_members["case-160"] == [AGENT_LEG, "w2"]
    assert engine.ari.of("originate") == []  # nobody rung: the same agent
    assert not engine.router.dropped_for_agent("anna")
    w2_hop = engine.hops.opened[0]
    assert w2_hop.case_id == 160
    engine.ari.caller_hangs_up(AGENT_LEG)
    await engine.ended()
    assert engine.records.summary() == [("close", 60, "switched"), ("talk", w2_hop.id, ""),
                                        ("event", 60, "complete"), ("close", w2_hop.id, "completed")]
    complete = engine.records.records[2]
    assert complete["detail"] == "agent hung up" and int(complete["talk_ms"]) >= 30_000  # one talk


async def test_past_the_rest_of_the_grace_the_talk_ends_as_a_hang_up_counting_the_wait() -> None:
    engine = Engine(centre(), logged_in=("anna",), rejoin_grace_s=10.5)
    left_waiting(engine, dropped_s_ago=10)  # half a second left

    await engine.router.reconcile()
    await engine.settle()
    assert engine.router.dropped_call_of(CUSTOMER) is not None
    await engine.ended()

    assert engine.records.summary() == [("event", 60, "complete"), ("close", 60, "completed")]
    complete = engine.records.records[0]
    assert complete["detail"] == "caller hung up" and int(complete["talk_ms"]) >= 30_000
    assert [r.args[0] for r in engine.ari.of("hangup")] == [AGENT_LEG]
    assert "case-160" not in engine.ari.bridge_members
    anna = engine.queues.agents["anna"]
    assert anna.queue is None and anna.wrapup_until is not None  # in wrap-up, as after any talk


async def test_an_agent_leg_without_a_note_is_hung_up_and_its_talk_closed_as_any_ended_unwatched() -> None:
    engine = Engine(centre(), logged_in=("anna",), rejoin_grace_s=60)
    left_waiting(engine, dropped_s_ago=10)
    engine.ari.variables.clear()  # the talk was not waiting when the daemon died

    await engine.router.reconcile()
    await engine.ended()

    assert [r.args[0] for r in engine.ari.of("hangup")] == [AGENT_LEG]
    assert engine.records.summary() == [("event", 60, "complete"), ("close", 60, "completed")]
    assert engine.records.records[-1]["cause_text"] == "ended while no daemon watched"
