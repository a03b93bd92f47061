"""The post-call survey (issue 19): the caller's call after its agent hung up, against the
recording fake ARI client and the record sink: questions, keys, timeouts, hangups, a flood of keys,
a daemon restart during it, and what each records. The lab test (tests/e2e/test_survey_calls.py)
proves the same with sipp on Asterisk."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from hotline.engine.call_state import ALLOWED, CallState
from hotline.errors import ProvisionError
from hotline.provision import parse
from hotline.provision.model import Agent, Hotline, Number, Provisioning, Queue, Target
from hotline.provision.validate import validate

from support.engine import (  # noqa: F401
    Engine,
    channel,
    dtmf,
    every_move_allowed,
    stasis_end,
    stasis_start,
)

CITY = "84951234567"
Q1, Q2, THANKS = "sound:hotline/q1", "sound:hotline/q2", "sound:auth-thankyou"


def centre(**queue: object) -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support", **queue)},  # type: ignore[arg-type]
        hotlines={"city": Hotline("city", entry=Target("queue", "support"))},
        numbers={"+74951234567": Number("+74951234567", "city")},
        agents={"anna": Agent("anna", "anna", queues=(("support", 0),))})


def surveyed(questions: tuple[str, ...] = ("hotline/q1", "hotline/q2"), **queue: object) -> Engine:
    engine = Engine(centre(survey=questions, survey_thanks="auth-thankyou", **queue), logged_in=("anna",))
    engine.ctx = dataclasses.replace(engine.ctx, survey_key_timeout_s=0.15)
    engine.router.ctx = engine.ctx
    return engine


async def agent_hangs_up(engine: Engine, caller: str = "c1") -> str:
    engine.call_in(caller, CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, caller)
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    engine.ari.send(stasis_end(leg))
    return leg


async def key_after_play(engine: Engine, play_no: int, digit: str, caller: str = "c1") -> None:
    await engine.ari.wait_for("play", play_no)
    engine.ari.send(dtmf(caller, digit))


def plays(engine: Engine) -> list[object]:
    return [r.args[1] for r in engine.ari.of("play")]


def survey_rows(engine: Engine) -> list[tuple[object, ...]]:
    return [(r["k"], r.get("question") or r.get("queue"), r.get("score") or r.get("agent"))
            for r in engine.records.records if str(r["k"]).startswith("survey")]


def test_a_talk_goes_on_to_the_survey_and_the_survey_only_to_its_end() -> None:
    assert CallState.SURVEY in ALLOWED[CallState.TALKING]
    assert ALLOWED[CallState.SURVEY] == {CallState.SURVEY, CallState.LEAVING}


async def test_the_agent_hanging_up_the_caller_answers_both_questions_hears_thanks_and_is_hung_up() -> None:
    engine = surveyed()
    await agent_hangs_up(engine)
    await key_after_play(engine, 1, "4")
    await engine.settle()
    assert engine.call("c1").state is CallState.SURVEY
    assert engine.call("c1").talking_with is None  # the talk is over: the agent's phone is not its
    assert engine.queues.agents["anna"].calls_completed("support") == 1  # free before the survey
    await key_after_play(engine, 2, "2")
    await engine.ended()
    assert plays(engine) == [Q1, Q2, THANKS]
    assert survey_rows(engine) == [("survey", 1, 1), ("survey_answer", 1, 4), ("survey_answer", 2, 2)]
    summary = engine.records.summary()
    assert summary[-5:] == [("event", 1, "complete"), ("survey", 1, ""), ("survey_answer", 1, ""),
                            ("survey_answer", 1, ""), ("close", 1, "completed")]
    complete = next(r for r in engine.records.records if r.get("event") == "complete")
    assert complete["detail"] == "agent hung up" and int(complete["talk_ms"]) < 1000  # not the survey's time
    assert [r.args for r in engine.ari.of("hangup")][-1] == ("c1", "normal")
    # the caller left the case's bridge before the first question
    assert engine.ari.names().index("destroy_bridge") < engine.ari.names().index("play")


async def test_a_key_that_is_no_score_asks_the_question_again_and_the_next_key_counts() -> None:
    engine = surveyed(("hotline/q1",))
    await agent_hangs_up(engine)
    await key_after_play(engine, 1, "9")
    await key_after_play(engine, 2, "3")
    await engine.ended()
    assert plays(engine) == [Q1, Q1, THANKS]
    assert survey_rows(engine) == [("survey", 1, 1), ("survey_answer", 1, 3)]


async def test_no_key_in_time_twice_skips_the_question_and_records_no_answer() -> None:
    engine = surveyed()
    await agent_hangs_up(engine)
    await key_after_play(engine, 3, "5")  # q1 twice unanswered, then q2
    await engine.ended()
    assert plays(engine) == [Q1, Q1, Q2, THANKS]
    assert survey_rows(engine) == [("survey", 1, 1), ("survey_answer", 2, 5)]


async def test_a_caller_hanging_up_during_the_survey_keeps_the_answers_given_and_ends_completed() -> None:
    engine = surveyed()
    await agent_hangs_up(engine)
    await key_after_play(engine, 1, "1")
    await engine.ari.wait_for("play", 2)
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert plays(engine) == [Q1, Q2]
    assert survey_rows(engine) == [("survey", 1, 1), ("survey_answer", 1, 1)]
    assert engine.records.summary()[-1] == ("close", 1, "completed")


async def test_a_recorded_talk_stops_recording_before_the_first_question() -> None:
    engine = surveyed(("hotline/q1",), record="always")
    await agent_hangs_up(engine)
    await key_after_play(engine, 1, "5")
    await engine.ended()
    kinds = [r["k"] for r in engine.records.records]
    assert kinds.index("rec_end") < kinds.index("survey_answer")
    names = engine.ari.names()
    assert names.index("stop_recording") < names.index("play")


async def test_a_caller_hanging_up_first_gets_no_survey() -> None:
    engine = surveyed()
    engine.call_in("c1", CITY)
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "c1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    engine.ari.caller_hangs_up("c1")
    await engine.ended()
    assert plays(engine) == [] and survey_rows(engine) == []
    assert engine.records.summary()[-2:] == [("event", 1, "complete"), ("close", 1, "completed")]


async def test_a_customers_browser_gets_no_phone_survey() -> None:
    engine = surveyed()
    engine.ari.live.add("w1")
    engine.ari.headers["w1"] = {"X-Hotline-Customer": "c0ffee"}
    engine.ari.send(stasis_start(channel("w1", caller="", name="PJSIP/hotline-web-w1", context="hotline-web"),
                                 "inbound", CITY))
    leg = str((await engine.ari.wait_for("originate")).args[2])
    engine.ari.answer_leg(leg, "w1")
    await engine.ari.wait_for("add_to_bridge")
    await engine.settle()
    engine.ari.send(stasis_end(leg))
    await engine.ended()
    assert plays(engine) == [] and survey_rows(engine) == []
    assert [r.args for r in engine.ari.of("hangup")][-1] == ("w1", "normal")


async def test_a_queue_without_a_survey_hangs_the_caller_up_when_the_agent_does() -> None:
    engine = Engine(centre(), logged_in=("anna",))
    await agent_hangs_up(engine)
    await engine.ended()
    assert plays(engine) == [] and survey_rows(engine) == []


async def test_a_flood_of_keys_that_are_no_scores_ends_the_survey_with_each_question_asked_twice() -> None:
    engine = surveyed()
    await agent_hangs_up(engine)
    await engine.ari.wait_for("play")
    for _ in range(500):
        engine.ari.send(dtmf("c1", "0"))
    await engine.ended()
    assert plays(engine) == [Q1, Q1, Q2, Q2, THANKS]
    assert survey_rows(engine) == [("survey", 1, 1)]
    assert engine.records.summary()[-1] == ("close", 1, "completed")


async def test_a_caller_left_in_a_survey_by_a_restart_is_hung_up_and_its_hop_closed_completed() -> None:
    """The hop says answered by anna, but no bridge holds the caller (the survey had destroyed it):
    the next daemon does not resume the survey, it ends the call."""
    engine = surveyed()
    since = datetime.now(UTC) - timedelta(seconds=30)
    engine.hops.leave_open(70, "c7", queue_id=1, agent_id=1, queued_at=since, answered_at=since)
    engine.ari.left_by_last_daemon("c7")

    await engine.router.reconcile()
    await engine.ended()

    assert [r.args for r in engine.ari.of("hangup")] == [("c7", "normal")]
    assert plays(engine) == [] and survey_rows(engine) == []
    assert engine.records.summary() == [("close", 70, "completed")]  # its complete was written already


def test_a_queue_takes_one_or_two_question_sounds_and_refuses_anything_else() -> None:
    q = parse.queue("support", {"survey": ["hotline/q1", "hotline/q2"], "survey_thanks": "auth-thankyou"})
    assert q.survey == ("hotline/q1", "hotline/q2") and q.survey_thanks == "auth-thankyou"
    assert parse.queue("support", {"survey": "none"}).survey == ()
    assert parse.queue("support", {}).survey == ()  # off by default
    for bad, why in ((["a", "b", "c"], "must hold 1 to 2 questions"), ([], "must hold 1 to 2 questions"),
                     (["../etc/passwd"], "is not an Asterisk sound name"), ([""], "is not an Asterisk sound"),
                     ("hotline/q1", "is not a list of question sounds"), ([5], "is not an Asterisk sound")):
        with pytest.raises(ProvisionError, match=why):
            parse.queue("support", {"survey": bad})
    with pytest.raises(ProvisionError, match=r"queues.support.survey_thanks: 'x y'"):
        parse.queue("support", {"survey": ["q1"], "survey_thanks": "x y"})


def test_thanks_without_a_survey_is_refused_as_never_played() -> None:
    with pytest.raises(ProvisionError, match="survey_thanks: the queue has no survey"):
        validate(centre(survey_thanks="auth-thankyou"))
    validate(centre(survey=("hotline/q1",)))
