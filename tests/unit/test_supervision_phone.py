"""Supervision dialled from the supervisor's own phone (`*51anna` and the like), on the engine with
a recording ARI: the call itself is answered as the supervisor's leg (nobody is rung), what is
snooped or bridged, the SIP answer of each refusal (the ARI hangup reason, before any answer),
and the rows. The lab proves the SIP codes and who hears whom
(tests/e2e/test_supervision_phone_calls.py)."""

from __future__ import annotations

from test_supervision import CASE, StandInSupervisions, supervised_engine, with_sara
from test_transfers import two_queues

from hotline.engine.stasis_entry import parse_entry
from hotline.engine.supervision import Talk
from hotline.engine.supervision_phone import Dialled, phone_refusal
from hotline.provision.model import Agent
from hotline.store.case_timeline import SupervisionRow

from support.engine import NOW, Engine, channel, stasis_start

SARA_CALL = "1733140000.91"  # the id Asterisk gives the INVITE of sara's phone


def dials(engine: Engine, mode: str, target: str = "anna", by: str = "sara", channel_id: str = SARA_CALL,
          context: str = "hotline-agents") -> str:
    """The phone of endpoint `by` dials a feature code and `target`: the agents' context hands it
    to Stasis as `supervise,TARGET,mode=MODE,by=BY`, unanswered."""
    engine.ari.live.add(channel_id)
    engine.ari.send(stasis_start(channel(channel_id, by, name=f"PJSIP/{by}-00000009", context=context),
                                 "supervise", target, f"mode={mode}", f"by={by}"))
    return channel_id


def refused_with(engine: Engine) -> list[tuple[object, ...]]:
    return [r.args for r in engine.ari.of("hangup") if r.args[0] == SARA_CALL]


def test_the_supervise_entry_names_the_agent_the_mode_and_the_phone_that_dialled() -> None:
    entry = parse_entry(["supervise", "anna", "mode=whisper", "by=sara"], "hotline-agents")
    assert entry is not None and (entry.kind, entry.dialled, entry.mode, entry.by) == (
        "supervise", "anna", "whisper", "sara")


async def test_listen_dialled_answers_the_supervisors_own_call_and_snoops_the_agents_leg() -> None:
    engine, store, anna_leg = await supervised_engine()
    dials(engine, "listen")
    snoop = await engine.ari.wait_for("snoop")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert engine.ari.of("answer")[-1].args == (SARA_CALL,)
    assert len(engine.ari.of("originate")) == 1  # anna's ring only: sara's phone is not rung back
    assert snoop.args[0] == anna_leg and snoop.args[2:] == ("both", "none")
    assert "-sup-" in str(snoop.args[1])  # a restarted daemon hangs it up
    bridge = next(b for b, members in engine.ari.bridge_members.items() if SARA_CALL in members)
    assert bridge.startswith("supervise-")
    assert set(engine.ari.bridge_members[bridge]) == {SARA_CALL, snoop.args[1]}
    [row] = store.rows.values()
    assert (row["outcome"], row["mode"], row["supervisor"], row["asked_by"]) == (
        "supervising", "listen", "sara", "phone:sara")
    assert (row["channel_id"], row["case_id"]) == (SARA_CALL, CASE)


async def test_whisper_dialled_speaks_toward_the_agents_phone_only() -> None:
    engine, _, anna_leg = await supervised_engine()
    dials(engine, "whisper")
    snoop = await engine.ari.wait_for("snoop")
    assert snoop.args[0] == anna_leg and snoop.args[2:] == ("both", "out")


async def test_barge_dialled_joins_the_talks_bridge_and_the_talks_end_hangs_the_supervisor_up() -> None:
    engine, store, anna_leg = await supervised_engine()
    dials(engine, "barge")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert set(engine.ari.bridge_members[f"case-{CASE}"]) == {"c1", anna_leg, SARA_CALL}
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    await engine.settle()
    assert SARA_CALL not in engine.ari.live
    [row] = store.rows.values()
    assert (row["outcome"], row["detail"]) == ("ended", "the talk ended")


async def test_the_supervisor_hanging_up_ends_it_and_the_talk_goes_on() -> None:
    engine, store, anna_leg = await supervised_engine()
    dials(engine, "listen")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    engine.ari.caller_hangs_up(SARA_CALL)
    await engine.settle(0.1)
    [row] = store.rows.values()
    assert (row["outcome"], row["detail"]) == ("ended", "the supervisor hung up")
    assert not any(b.startswith("supervise-") for b in engine.ari.bridge_members)
    assert engine.call("c1").is_talking and anna_leg in engine.ari.live
    assert engine.router.supervisions == {}


async def test_a_supervisor_hanging_up_before_the_answer_leaves_an_unanswered_row() -> None:
    engine, store, _ = await supervised_engine()
    engine.ari.send(stasis_start(channel(SARA_CALL, "sara", context="hotline-agents"),
                                 "supervise", "anna", "mode=listen", "by=sara"))  # gone already
    await engine.settle(0.1)
    [row] = store.rows.values()
    assert row["outcome"] == "unanswered" and not engine.ari.of("snoop")


async def test_a_caller_who_is_no_supervisor_is_refused_403_before_answer_with_a_row() -> None:
    engine, store, _ = await supervised_engine(supervisor=False)
    dials(engine, "listen")
    await engine.settle(0.1)
    assert refused_with(engine) == [(SARA_CALL, "rejected")]
    assert not any(r.args == (SARA_CALL,) for r in engine.ari.of("answer"))
    [row] = store.rows.values()
    assert (row["outcome"], row["asked_by"], row["detail"]) == (
        "refused", "phone:sara", "agent 'sara' is not a supervisor")


async def test_an_agent_in_no_talk_is_refused_480_and_leaves_no_row() -> None:
    engine, store, _ = await supervised_engine()
    dials(engine, "listen", target="boris")
    await engine.settle(0.1)
    assert refused_with(engine) == [(SARA_CALL, "no_answer")]
    assert store.rows == {}


async def test_an_endpoint_no_agent_has_is_refused_404() -> None:
    engine, _, _ = await supervised_engine()
    dials(engine, "barge", target="gone")  # removed from provisioning since the dialplan was written
    await engine.settle(0.1)
    assert refused_with(engine) == [(SARA_CALL, "unallocated")]


async def test_a_supervisor_supervising_already_is_refused_486() -> None:
    engine, store, _ = await supervised_engine()
    dials(engine, "listen")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    dials(engine, "barge", channel_id="1733140000.95")
    await engine.settle(0.1)
    assert [r.args for r in engine.ari.of("hangup") if r.args[0] == "1733140000.95"] == [
        ("1733140000.95", "busy")]
    refused = [r for r in store.rows.values() if r["outcome"] == "refused"]
    assert [r["detail"] for r in refused] == ["sara is already supervising a talk"]


async def test_a_call_from_outside_the_agents_context_is_refused_403() -> None:
    engine, store, _ = await supervised_engine()
    dials(engine, "listen", context="hotline-inbound")
    await engine.settle(0.1)
    assert refused_with(engine) == [(SARA_CALL, "rejected")]


def test_refusals_in_order_each_with_its_sip_answer() -> None:
    prov = with_sara(two_queues())
    sara, anna = prov.agents["sara"], prov.agents["anna"]
    talk = Talk(CASE, 1, "anna", "leg")
    listen = Dialled("listen", "anna", "sara", True)

    def reason(dialled: Dialled = listen, caller: Agent | None = sara, target: Agent | None = anna,
               found: Talk | None = talk, supervising: tuple[str, ...] = (), in_a_talk: bool = False) -> str:
        why = phone_refusal(dialled, caller, target, found, None, supervising, in_a_talk, 0.0)
        return f"{why.reason}: {why.why}" if why else "taken"

    assert reason() == "taken"
    assert reason(caller=None) == "rejected: endpoint 'sara' is no agent's"
    assert reason(caller=anna) == "rejected: agent 'anna' is not a supervisor"
    assert reason(target=None) == "unallocated: no agent has endpoint 'anna'"
    assert reason(target=sara) == "rejected: sara cannot listen their own talk"
    assert reason(found=None) == "no_answer: agent anna is in no live talk here"
    assert reason(supervising=("sara",)) == "busy: sara is already supervising a talk"
    assert reason(in_a_talk=True) == "busy: sara is busy in a call"
    assert reason(Dialled("spy", "anna", "sara", True)).startswith("rejected")


def test_case_show_says_the_supervisor_dialled_in() -> None:
    row = SupervisionRow(5, "listen", "sara", "anna", "phone:sara", "ended", "the supervisor hung up",
                         NOW, NOW, NOW)
    assert row.moments(1, "sip/audio")[0].what == (
        "listen of the talk with agent anna by supervisor sara, asked by phone:sara: they dialled in")


async def test_a_restarted_daemon_hangs_up_a_dialled_in_supervisors_leg_and_snoop() -> None:
    engine = Engine(with_sara(two_queues()), logged_in=("anna",))
    store = StandInSupervisions()
    engine.router.supervision_store = store  # type: ignore[assignment]
    engine.ari.left_by_last_daemon(SARA_CALL, "supervise,anna,mode=listen,by=sara",
                                   name="PJSIP/sara-00000001", context="hotline-agents")
    engine.ari.left_by_last_daemon("case-7-sup-1-snoop", "supervise-snoop,7", name="Snoop/x-00000002")
    await engine.router.reconcile()
    assert {r.args[0] for r in engine.ari.of("hangup")} == {SARA_CALL, "case-7-sup-1-snoop"}
    assert engine.router.calls == {}
