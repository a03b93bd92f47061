"""Supervision on the engine with a recording ARI: who is rung, what is snooped or bridged, what
is refused, and the rows each request leaves (the lab proves who hears whom:
tests/e2e/test_supervision_calls.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from test_transfers import talking_with_anna, two_queues

from hotline.asterisk.ari_events import ChannelUserevent
from hotline.engine.supervision import SUPERVISE_EVENT, SuperviseAsked, Talk, refusal, supervise_asked
from hotline.provision import export, parse
from hotline.provision.model import Agent, Provisioning
from hotline.store.case_timeline import SupervisionRow

from support.engine import APP, NOW, Engine, channel

CASE = 101  # the stand-in store's first case


class StandInSupervisions:
    """The rows of supervisions as the daemon writes them (hotline.store.supervisions)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, object]] = {}

    async def ringing(self, ids: Mapping[str, object], channel_id: str) -> None:
        self.rows[str(ids["request"])] = {**ids, "channel_id": channel_id, "outcome": "ringing", "detail": ""}

    async def refused(self, ids: Mapping[str, object], detail: str) -> None:
        self.rows[str(ids["request"])] = {**ids, "outcome": "refused", "detail": detail}

    async def started(self, request: str) -> None:
        self.rows[request] |= {"outcome": "supervising", "started": True}

    async def ended(self, request: str, outcome: str, detail: str) -> None:
        self.rows[request] |= {"outcome": outcome, "detail": detail, "ended": True}

    async def close_unowned(self, node: str, running: Collection[str]) -> int:
        """Open rows of another daemon's run (none here runs them): ended."""
        gone = [r for key, r in self.rows.items() if key not in running and r["outcome"] in ("ringing",
                                                                                           "supervising")]
        for row in gone:
            row |= {"outcome": "ended", "detail": "the daemon restarted"}
        return len(gone)


def with_sara(prov: Provisioning, supervisor: bool = True) -> Provisioning:
    agents = {**prov.agents, "sara": Agent("sara", "sara", supervisor=supervisor)}
    return dataclasses.replace(prov, agents=agents)


def asked(mode: str, supervisor: str = "sara", request: str = "r1", case: int = CASE) -> ChannelUserevent:
    return ChannelUserevent("ChannelUserevent", APP, NOW, channel=channel("c1", state="Up"),
                            eventname=SUPERVISE_EVENT,
                            variables={"case": str(case), "mode": mode, "supervisor": supervisor,
                                       "asked_by": "cli", "request": request})


async def supervised_engine(**sara: bool) -> tuple[Engine, StandInSupervisions, str]:
    engine = Engine(with_sara(two_queues(), **sara), logged_in=("anna", "boris"))
    store = StandInSupervisions()
    engine.router.supervision_store = store  # type: ignore[assignment]
    return engine, store, await talking_with_anna(engine)


async def sara_answers(engine: Engine) -> str:
    placed = await engine.ari.wait_for("originate", 2)
    assert placed.args[0] == "PJSIP/sara"
    leg = str(placed.args[2])
    engine.ari.answer_leg(leg, "supervise")
    return leg


async def test_listen_snoops_both_directions_of_the_agents_leg_and_bridges_it_with_the_supervisor() -> None:
    engine, store, anna_leg = await supervised_engine()
    engine.ari.send(asked("listen"))
    sara_leg = await sara_answers(engine)
    snoop = await engine.ari.wait_for("snoop")
    assert snoop.args[0] == anna_leg and snoop.args[2:] == ("both", "none")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    bridge = next(b for b, members in engine.ari.bridge_members.items() if sara_leg in members)
    assert bridge.startswith("supervise-")
    assert set(engine.ari.bridge_members[bridge]) == {sara_leg, snoop.args[1]}
    assert sara_leg not in engine.ari.bridge_members[f"case-{CASE}"]
    assert store.rows["r1"]["outcome"] == "supervising" and store.rows["r1"]["supervisor"] == "sara"
    assert store.rows["r1"]["mode"] == "listen" and store.rows["r1"]["asked_by"] == "cli"


async def test_whisper_speaks_toward_the_agents_phone_only() -> None:
    engine, _, anna_leg = await supervised_engine()
    engine.ari.send(asked("whisper"))
    await sara_answers(engine)
    snoop = await engine.ari.wait_for("snoop")
    assert snoop.args[0] == anna_leg and snoop.args[2:] == ("both", "out")


async def test_barge_puts_the_supervisor_into_the_talks_bridge_and_the_talks_end_releases_them() -> None:
    engine, store, anna_leg = await supervised_engine()
    engine.ari.send(asked("barge"))
    sara_leg = await sara_answers(engine)
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    assert set(engine.ari.bridge_members[f"case-{CASE}"]) == {"c1", anna_leg, sara_leg}
    assert not engine.ari.of("snoop")
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert sara_leg not in engine.ari.live
    assert store.rows["r1"]["outcome"] == "ended" and store.rows["r1"]["detail"] == "the talk ended"


async def test_the_supervisor_hanging_up_ends_the_listen_and_tears_the_snoop_down_the_talk_goes_on() -> None:
    engine, store, anna_leg = await supervised_engine()
    engine.ari.send(asked("listen"))
    sara_leg = await sara_answers(engine)
    snoop = await engine.ari.wait_for("snoop")
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    engine.ari.caller_hangs_up(sara_leg)  # the supervisor's BYE
    await engine.settle(0.1)
    assert store.rows["r1"]["outcome"] == "ended" and store.rows["r1"]["detail"] == "the supervisor hung up"
    assert snoop.args[1] not in engine.ari.live
    assert not any(b.startswith("supervise-") for b in engine.ari.bridge_members)
    assert engine.call("c1").is_talking and anna_leg in engine.ari.live


async def test_a_supervisor_who_does_not_answer_leaves_an_unanswered_row() -> None:
    engine, store, _ = await supervised_engine()
    engine.ari.send(asked("listen"))
    placed = await engine.ari.wait_for("originate", 2)
    engine.ari.caller_hangs_up(str(placed.args[2]))  # declined: destroyed before any StasisStart
    await engine.settle(0.1)
    assert store.rows["r1"]["outcome"] == "unanswered"
    assert not engine.ari.of("snoop")


async def test_the_talk_ending_while_the_supervisor_rings_hangs_their_phone_up_unanswered() -> None:
    engine, store, _ = await supervised_engine()
    engine.ari.send(asked("barge"))
    placed = await engine.ari.wait_for("originate", 2)
    engine.ari.live.add(str(placed.args[2]))  # ringing
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert str(placed.args[2]) not in engine.ari.live
    assert store.rows["r1"]["outcome"] == "unanswered"
    assert store.rows["r1"]["detail"] == "the talk ended before the supervisor answered"


async def test_refusals_are_rows_that_say_why_and_ring_nobody() -> None:
    engine, store, _ = await supervised_engine(supervisor=False)
    engine.ari.send(asked("listen", request="flag"))
    engine.ari.send(asked("listen", supervisor="anna", request="self"))
    engine.ari.send(asked("listen", supervisor="nobody", request="unknown"))
    await engine.settle(0.1)
    assert "not a supervisor" in str(store.rows["flag"]["detail"])
    assert "no agent 'nobody'" in str(store.rows["unknown"]["detail"])
    assert {r["outcome"] for r in store.rows.values()} == {"refused"}
    assert len(engine.ari.of("originate")) == 1  # anna's ring only


async def test_a_supervisor_busy_in_a_call_or_supervising_already_is_refused() -> None:
    engine, store, _ = await supervised_engine()
    engine.ari.send(asked("listen", request="first"))
    await sara_answers(engine)
    await engine.ari.wait_for("add_to_bridge", 2)
    await engine.settle()
    engine.ari.send(asked("barge", request="second"))
    await engine.settle(0.1)
    assert store.rows["second"]["outcome"] == "refused"
    assert "already supervising" in str(store.rows["second"]["detail"])
    engine.queues.device("sara", "INUSE")  # and had they been on a call of their own
    store.rows.clear()
    engine.router.supervisions.clear()
    engine.ari.send(asked("listen", request="third"))
    await engine.settle(0.1)
    assert "busy in a call" in str(store.rows["third"]["detail"])


async def test_a_restarted_daemon_hangs_up_a_supervisors_leg_and_snoop_and_ends_their_row() -> None:
    engine = Engine(with_sara(two_queues()), logged_in=("anna",))
    store = StandInSupervisions()
    store.rows["old"] = {"request": "old", "outcome": "supervising"}
    engine.router.supervision_store = store  # type: ignore[assignment]
    engine.ari.left_by_last_daemon("case-7-sup-1", "supervise,7,listen", name="PJSIP/sara-00000001")
    engine.ari.left_by_last_daemon("case-7-sup-1-snoop", "supervise-snoop,7", name="Snoop/x-00000002")
    await engine.router.reconcile()
    assert {r.args[0] for r in engine.ari.of("hangup")} == {"case-7-sup-1", "case-7-sup-1-snoop"}
    assert store.rows["old"]["detail"] == "the daemon restarted"
    assert engine.router.calls == {}  # neither was taken for a customer's call


def test_a_request_needs_a_case_a_known_mode_and_a_request_id() -> None:
    good = supervise_asked(asked("whisper"))
    assert good == SuperviseAsked(CASE, "whisper", "sara", "cli", "r1")
    bad_mode = dataclasses.replace(asked("x"))
    assert supervise_asked(bad_mode) is None
    other = dataclasses.replace(asked("listen"), eventname="hotline-transfer")
    assert supervise_asked(other) is None


def test_a_page_asking_keeps_its_longest_agent_name_whole() -> None:
    """The agent page asks as agent:NAME, and an agent's name may be 63 characters."""
    name = "s" * 63
    event = asked("listen", supervisor=name)
    event = dataclasses.replace(event, variables={**event.variables, "asked_by": f"agent:{name}"})
    got = supervise_asked(event)
    assert got is not None and (got.supervisor, got.asked_by) == (name, f"agent:{name}")


def test_no_live_talk_and_the_talks_own_agent_are_refused() -> None:
    prov = with_sara(two_queues())
    request = SuperviseAsked(CASE, "listen", "sara", "cli", "r")
    assert refusal(request, None, prov, None, (), False, 0.0) == f"case {CASE} has no live talk with an agent"
    talk = Talk(CASE, 1, "sara", "leg")
    assert refusal(request, talk, prov, None, (), False, 0.0) == "sara is the agent of this talk"
    with_anna = Talk(CASE, 1, "anna", "leg")
    assert refusal(request, with_anna, prov, None, (), False, 0.0) is None
    assert refusal(request, with_anna, prov, None, (), True, 0.0) == "sara is busy in a call"


def test_the_supervisor_flag_is_provisioned_and_exported() -> None:
    sara = parse.agent("sara", {"supervisor": True})
    assert sara.supervisor
    assert export.agent_table(sara)["supervisor"] is True
    assert "supervisor" not in export.agent_table(parse.agent("anna", {}))
    assert not parse.agent("anna", {}).supervisor


def test_case_show_tells_a_supervision_step_by_step_and_a_refusal_in_one_line() -> None:
    at = NOW
    done = SupervisionRow(5, "whisper", "sara", "anna", "cli", "ended", "the talk ended", at, at, at)
    assert [m.what for m in done.moments(1, "sip/audio")] == [
        "whisper of the talk with agent anna by supervisor sara, asked by cli: their phone rang",
        "supervisor sara in (whisper)", "supervisor sara: whisper ended (the talk ended)"]
    refused = SupervisionRow(5, "barge", "sara", None, "cli", "refused", "sara is busy in a call", at,
                             None, None)
    assert [m.what for m in refused.moments(1, "sip/audio")] == [
        "barge of the talk by supervisor sara, asked by cli: refused (sara is busy in a call)"]
